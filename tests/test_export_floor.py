"""Every released model loads and runs on the runtime's floor interpreters (issue #19).

The floor is Python 3.8 with onnxruntime 1.11 (JetPack 4.6.x, the Jetson Zoo cp38 wheel) and 1.16. Give the
interpreters, each with its onnxruntime installed, in EDGESEG_FLOOR_PYTHONS (os.pathsep-separated), e.g. a
venv made with `python3.8 -m venv` and `pip install onnxruntime==1.11.1 numpy==1.24.4`. Skipped, with the
reason, where none is given: this machine's Python is newer. The static half (opset imports within what
onnxruntime 1.11 knows) runs everywhere: `edgeseg check --backend ort-cpu` on every released file.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RELEASED = sorted((REPO / "export").glob("*/*.onnx"))
PROBE = """
import sys, numpy as np, onnxruntime as ort
for path in sys.argv[1:]:
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    out = s.run(None, {i.name: np.zeros(shape, np.float32)})[0]
    assert np.isfinite(out).all(), path
print(ort.__version__, sys.version.split()[0], len(sys.argv) - 1)
"""


def _floor_pythons() -> list[str]:
    return [p for p in os.environ.get("EDGESEG_FLOOR_PYTHONS", "").split(os.pathsep) if p]


@pytest.mark.skipif(not RELEASED, reason="no released model in export/")
def test_released_models_pass_the_ort_floor_check():
    from edgeseg.export.check import check_file, errors

    for path in RELEASED:
        _, found = check_file(path, "jetson-nano", "ort-cpu")
        assert not errors(found), f"{path.name}: {[str(f) for f in errors(found)]}"
        assert not [f for f in found if "opset import" in f.problem], f"{path.name} carries unused opset imports"


@pytest.mark.skipif(not _floor_pythons(), reason="EDGESEG_FLOOR_PYTHONS not set (needs Python 3.8 venvs with onnxruntime 1.11 / 1.16)")
@pytest.mark.parametrize("python", _floor_pythons() or ["-"])
def test_released_models_run_on_a_floor_interpreter(python):
    r = subprocess.run([python, "-c", PROBE, *map(str, RELEASED)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == str(len(RELEASED))
