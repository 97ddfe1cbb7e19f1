"""The examples of docs/api.md run as written (on the bundled series and the released model)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom

REPO = Path(__file__).resolve().parents[1]


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)


def test_array_example_runs_and_segments(monkeypatch):
    monkeypatch.chdir(REPO)
    files = sorted((REPO / "data" / "sample-mr-brain").glob("*.dcm"))[10:16]
    datasets = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]))
    volume = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in datasets])
    scope = {"volume": volume}
    exec(_blocks()[0], scope)
    mask = scope["mask"]
    assert mask.shape == volume.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1, 2} and (mask > 0).mean() > 0.05  # brain found on mid-brain slices


def test_folder_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    code = _blocks()[1].replace('"runs/api-demo"', repr(str(tmp_path / "out")))
    scope = {}
    exec(code, scope)
    assert [r.status for r in scope["rows"]] == ["ok"]
    assert (Path(scope["rows"][0].out) / "seg.dcm").is_file() or (Path(scope["rows"][0].out) / "mask.nii.gz").is_file()


def test_readme_study_folder_example_exits_0(tmp_path, monkeypatch):
    """The README's real-study-folder example: T1 segmented, T2w / localizer / earlier SEG skipped, exit 0."""
    import importlib.util
    import json

    from edgeseg.cli import main

    monkeypatch.chdir(REPO)
    readme = (REPO / "README.md").read_text()
    assert "python scripts/make_study_folder.py runs/study" in readme and "--select 'SeriesDescription~T1'" in readme
    spec = importlib.util.spec_from_file_location("make_study_folder", REPO / "scripts" / "make_study_folder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parts = module.make_study(tmp_path / "study")
    rc = main(["run", "export/unet-s2-brain-nano/unet-s2-brain-nano.int8.onnx", str(tmp_path / "study"), "--out",
               str(tmp_path / "out"), "--select", "SeriesDescription~T1", "--quiet"])
    assert rc == 0
    statuses = sorted(i["status"] for i in json.loads((tmp_path / "out" / "run_report.json").read_text())["items"])
    assert statuses == ["ok"] + ["skipped"] * (2 + parts["earlier SEG"])
