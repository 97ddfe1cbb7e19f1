"""[model.options]: backbone keyword arguments in the recipe, checked at load time and kept in the checkpoint
(issue #13: unet's top_width widens the last decoder block so ONNX Runtime's fast U8S8 conv kernel applies)."""
import re
from pathlib import Path

import pytest
import torch

from edgeseg.errors import EdgesegError
from edgeseg.models import create_model
from edgeseg.train.recipe import load_recipe

RECIPE = Path("recipes/unet-s2-brain.toml")


def recipe_with_options(tmp_path, options: str) -> Path:
    text = re.sub(r"^\[model\.options\]\n(?:[^\[\n].*\n)*", "", RECIPE.read_text(), flags=re.M)  # drop any options table
    text = text.replace("[data]\n", f"[model.options]\n{options}\n\n[data]\n", 1)
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_top_width_widens_only_the_last_decoder_block_and_the_classifier():
    torch.manual_seed(0)
    base, wide = create_model("unet", 1, 3, 2), create_model("unet", 1, 3, 2, top_width=16)
    assert wide.backbone.dec[2][0][0].out_channels == 16 and wide.backbone.dec[2][1][0].in_channels == 16
    assert wide.backbone.classifier.in_channels == 16 and base.backbone.classifier.in_channels == 8
    assert [m.out_channels for m in wide.backbone.enc[0].modules() if isinstance(m, torch.nn.Conv2d)] == [8, 8]
    assert wide(torch.zeros(1, 1, 112, 96)).shape == (1, 3, 224, 192)
    assert create_model("unet", 1, 3, 2, top_width=0).state_dict().keys() == base.state_dict().keys()


def test_options_reach_the_model_and_survive_the_checkpoint(tmp_path):
    from edgeseg.train.checkpoint import build_model, load_checkpoint, save_checkpoint

    recipe = load_recipe(recipe_with_options(tmp_path, "top_width = 16"))
    assert recipe.model.options == {"top_width": 16}
    model = build_model(recipe, 3)
    assert model.backbone.classifier.in_channels == 16
    save_checkpoint(tmp_path / "model.pt", model, recipe, ["bg", "gm", "wm"], "test", {})
    loaded, loaded_recipe, _ = load_checkpoint(tmp_path / "model.pt")
    assert loaded_recipe.model.options == {"top_width": 16} and loaded.backbone.classifier.in_channels == 16


@pytest.mark.parametrize("options, words", [
    ("top_widht = 16", r"\[model.options\] top_widht = 16: not an option of backbone 'unet' \(did you mean 'top_width'\?\)"),
    ('top_width = "16"', r"\[model.options\] top_width = '16': must be a non-negative integer"),
    ("top_width = -1", r"top_width = -1: must be a non-negative integer"),
])
def test_bad_options_name_file_table_and_key(tmp_path, options, words):
    path = recipe_with_options(tmp_path, options)
    with pytest.raises(EdgesegError) as info:
        load_recipe(path)
    assert str(path) in str(info.value) and re.search(words, str(info.value)), str(info.value)


def test_another_width_drops_the_options_chosen_for_the_recipes_width(tmp_path):
    from edgeseg.compress.scratch import scratch_recipe
    from edgeseg.train.recipe import with_width

    recipe = load_recipe(recipe_with_options(tmp_path, "top_width = 16"))
    assert with_width(recipe, 0) is recipe and with_width(recipe, recipe.model.width) is recipe
    assert with_width(recipe, 32).model.options == {} and with_width(recipe, 32).model.width == 32
    assert scratch_recipe(recipe, 16, 4).model.options == {} and scratch_recipe(recipe, 0, 4).model.options == {"top_width": 16}


def test_avg_pool_option_changes_the_pooling_only():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 112, 96)
    maxed, avged = create_model("unet", 1, 3, 2).eval(), create_model("unet", 1, 3, 2, pool="avg").eval()
    avged.load_state_dict(maxed.state_dict())  # same parameters: pooling has none
    assert not torch.allclose(maxed(x), avged(x), atol=1e-4)
    with pytest.raises(ValueError, match="pool"):
        create_model("unet", 1, 3, 2, pool="mean")


@pytest.mark.parametrize("options, words", [
    ('pool = "mean"', r"\[model.options\] pool = 'mean': must be one of 'max', 'avg'"),
    ("pool = 2", r"\[model.options\] pool = 2: must be one of"),
])
def test_bad_pool_option_names_the_choices(tmp_path, options, words):
    path = recipe_with_options(tmp_path, options)
    with pytest.raises(EdgesegError, match=words):
        load_recipe(path)


def test_scratch_options_reach_the_scratch_architecture_and_are_checked(tmp_path):
    from edgeseg.compress.recipe import load_compress_recipe
    from edgeseg.compress.scratch import scratch_recipe

    recipe = load_recipe(RECIPE)
    compress = load_compress_recipe("recipes/compress-ternarynet-avgpool.toml")
    assert compress.scratch.options == {"pool": "avg"}
    assert scratch_recipe(recipe, 16, 4, compress.scratch.options).model.options == {"pool": "avg"}
    with pytest.raises(EdgesegError, match=r"\[scratch.options\] pool = 'mean'"):
        scratch_recipe(recipe, 16, 4, {"pool": "mean"})


def test_bad_scratch_option_fails_at_compression_recipe_load_naming_the_file(tmp_path):
    from edgeseg.compress.recipe import load_compress_recipe

    text = Path("recipes/compress-ternarynet-avgpool.toml").read_text().replace('pool = "avg"', 'pool = "mean"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EdgesegError, match=rf"{re.escape(str(path))}: \[scratch.options\] pool = 'mean': must be one of"):
        load_compress_recipe(path)
