"""`edgeseg run` itself on the board floor: Python 3.8 with onnxruntime 1.11 (JetPack 4.6.x's cp38 wheel)
and 1.16, numpy 1.24, pydicom 2.4, highdicom 0.22 — the released models on the sample series, masks
compared with this interpreter's. The interpreters come from EDGESEG_FLOOR_PYTHONS (.ci/run makes them
where a Python 3.8 exists); skipped, with the reason, otherwise."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = [p for p in sorted((REPO / "export").glob("*/*.onnx")) if ".int8." in p.name or ".fp16." in p.name]
FLOOR = [p for p in os.environ.get("EDGESEG_FLOOR_PYTHONS", "").split(os.pathsep) if p]


def _run(python: str, model: Path, out: Path) -> np.ndarray:
    r = subprocess.run([python, "-m", "edgeseg", "run", str(model), str(REPO / "data" / "sample-mr-brain"), "--out",
                        str(out), "--quiet", "--also", "npy", "--no-overlay", "--threads", "1"],
                       capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, (python, r.stderr[-2000:])
    (mask,) = out.rglob("mask.npy")
    assert (mask.parent / "seg.dcm").is_file()
    return np.load(mask)


@pytest.mark.skipif(not FLOOR, reason="EDGESEG_FLOOR_PYTHONS not set (Python 3.8 venvs with onnxruntime 1.11 / 1.16)")
@pytest.mark.parametrize("python", FLOOR or ["-"])
@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_released_model_segments_the_sample_on_the_floor(python, model, tmp_path):
    version = subprocess.run([python, "-c", "import sys, onnxruntime; print(sys.version.split()[0], onnxruntime.__version__)"],
                             capture_output=True, text=True).stdout.split()
    assert version and version[0].startswith("3.8"), version
    floor = _run(python, model, tmp_path / "floor")
    here = _run(sys.executable, model, tmp_path / "here")
    # the same graph on two onnxruntime builds: a few voxels on class borders may differ
    assert floor.shape == here.shape and (floor == here).mean() >= 0.998, (version, (floor == here).mean())
