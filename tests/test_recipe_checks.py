"""Training recipes are checked across fields when loaded: a bad value names the file, table and key before any
data is read (issue #15 item 5)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeseg.errors import EdgesegError
from edgeseg.train.recipe import load_recipe

RECIPE = Path("recipes/unet-s2-brain.toml")


def variant(tmp_path, pattern, replacement):
    text = RECIPE.read_text()
    new, n = re.subn(pattern, replacement, text, count=1, flags=re.M)
    assert n == 1, pattern
    path = tmp_path / "r.toml"
    path.write_text(new)
    return path


def test_released_recipe_passes():
    assert load_recipe(RECIPE).model.scale in (1, 2, 4, 8)


@pytest.mark.parametrize("pattern, replacement, words", [
    (r"^scale = .*$", "scale = 3", r"\[model\] scale = 3: must be one of 1, 2, 4, 8"),
    (r"^canvas = .*$", "canvas = [225, 192]", r"\[data.slices\] canvas = \[225, 192\]: each size must be a multiple"),
    (r"^canvas = .*$", "canvas = [0, 192]", r"canvas = \[0, 192\]: must be two positive sizes"),
    (r"^name = .*$", 'name = "unett"', r"\[model\] name = 'unett': unknown backbone \(did you mean 'unet'\?\)"),
    (r"^epochs = .*$", "epochs = 0", r"\[train\] epochs = 0: must be at least 1"),
    (r"^fit = .*$", 'fit = "foreground_box"\nlowres_method = "nearst"',
     r"\[data.slices\] lowres_method = 'nearst': unknown \(did you mean 'nearest'\?\); known: area_average, nearest"),
])
def test_bad_values_name_file_table_and_key(tmp_path, pattern, replacement, words):
    path = variant(tmp_path, pattern, replacement)
    with pytest.raises(EdgesegError) as info:
        load_recipe(path)
    assert str(path) in str(info.value)
    assert re.search(words, str(info.value)), str(info.value)


def test_train_cli_refuses_scale_3_in_one_line_before_reading_data(tmp_path):
    path = variant(tmp_path, r"^scale = .*$", "scale = 3")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "edgeseg", "train", str(path), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(path) in r.stderr and "[model] scale = 3" in r.stderr
    assert not out.exists()
