"""Rerunning `edgeseg run` resumes from OUT/manifest.csv: done series are skipped, changed ones redone,
failed ones retried only with --retry-failed; one manifest row per result."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from edgeseg.cli import main
from runtime_fixtures import export_threshold_model, make_contract, new_series, sample_datasets, write_series


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_threshold_model(tmp_path_factory.mktemp("resume-model") / "threshold.onnx")


def _folder(tmp_path):
    inputs = tmp_path / "in"
    for tag in ("a", "b", "c"):
        write_series(inputs / tag, new_series(sample_datasets(2, step=8), f"resume-{tag}"))
    bad = new_series(sample_datasets(2, step=8), "resume-bad")
    bad[1].Rows, bad[1].Columns = 128, 128
    bad[1].PixelData = np.zeros((128, 128), "<u2").tobytes()
    write_series(inputs / "bad", bad)
    return inputs


def _statuses(out):
    return sorted(i["status"] for i in json.loads((out / "run_report.json").read_text())["items"])


def _manifest(out):
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_rerun_resumes_and_redoes_only_what_changed(model, tmp_path):
    inputs, out = _folder(tmp_path), tmp_path / "out"
    args = ["run", str(model), str(inputs), "--out", str(out), "--quiet", "--no-overlay"]
    assert main(args) == 1 and _statuses(out) == ["failed", "ok", "ok", "ok"]
    segs = {p: p.stat().st_mtime_ns for p in out.rglob("seg.dcm")}
    assert len(_manifest(out)) == 4
    assert main(args) == 1 and _statuses(out) == ["done", "done", "done", "failed"]   # nothing recomputed
    assert {p: p.stat().st_mtime_ns for p in out.rglob("seg.dcm")} == segs
    assert "failed before" in next(i["reason"] for i in json.loads((out / "run_report.json").read_text())["items"]
                                   if i["status"] == "failed")
    assert len(_manifest(out)) == 4                                  # no new rows for what was not run
    touched = next((inputs / "b").glob("*.dcm"))
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert main(args + ["--retry-failed"]) == 1 and _statuses(out) == ["done", "done", "failed", "ok"]
    rows = _manifest(out)
    assert len(rows) == 6 and [r["status"] for r in rows[-2:]] in (["ok", "failed"], ["failed", "ok"])


def test_another_model_redoes_everything_and_torn_lines_are_ignored(model, tmp_path):
    inputs, out = _folder(tmp_path), tmp_path / "out"
    args = ["run", str(model), str(inputs / "a"), str(inputs / "c"), "--out", str(out), "--quiet", "--no-overlay"]
    assert main(args) == 0
    with open(out / "manifest.csv", "a") as f:
        f.write("1.2.3,1.2,abc,ok,,/nowhere")                         # a kill mid-write: no end, no newline
    other = export_threshold_model(tmp_path / "other.onnx", make_contract(model_name="other"))
    assert main(["run", str(other), *args[2:]]) == 0 and _statuses(out) == ["ok", "ok"]
    assert main(args) == 0 and _statuses(out) == ["ok", "ok"]        # back to the first model: due again
