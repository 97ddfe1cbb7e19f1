"""`edgeseg run --engine ray` on a local Ray with 2 workers: the same SEGs as the local engine, resumable,
a killed worker loses nothing and duplicates nothing, bad files get their reasons. Skipped without ray."""
from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

from edgeseg.runtime.pipeline import Options  # noqa: E402
from edgeseg.runtime.pipeline import run as run_local  # noqa: E402
from edgeseg.scale.ray_engine import run as run_ray  # noqa: E402
from runtime_fixtures import export_threshold_model, new_series, sample_datasets, write_series  # noqa: E402


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    for i in range(12):
        write_series(root / "in" / f"s{i:02d}", new_series(sample_datasets(2, step=8), f"archive-{i}"))
    (root / "in" / "s00" / "notes.txt").write_text("not dicom")
    (root / "in" / "s01" / "IM0001.dcm").write_bytes((root / "in" / "s01" / "IM0001.dcm").read_bytes()[:1300])
    model = export_threshold_model(root / "threshold.onnx")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield root, model
    ray.shutdown()


def _segs(out: Path) -> dict[str, tuple]:
    """series UID -> (pixel data, referenced instances) of every SEG under `out`."""
    found = {}
    for p in out.rglob("seg.dcm"):
        ds = pydicom.dcmread(p)
        refs = frozenset(str(i.ReferencedSOPInstanceUID) for s in ds.ReferencedSeriesSequence
                         for i in s.ReferencedInstanceSequence)
        found[str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID)] = (bytes(ds.PixelData), refs)
    return found


def _manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_ray_gives_the_local_engine_segs_and_resumes(archive, tmp_path):
    root, model = archive
    opts = Options(provider="cpu", threads=1, overlay=False)
    rows_local, _ = run_local(model, root / "in", tmp_path / "local", opts, show_progress=False)
    rows_ray, info = run_ray(model, root / "in", tmp_path / "ray", opts, workers=2, show_progress=False)
    assert info["workers"] == 2
    local, remote = _segs(tmp_path / "local"), _segs(tmp_path / "ray")
    assert len(local) == 12 and local == remote                         # identical pixels and references
    status = sorted((r.status, Path(r.name).name if "/" in r.name else "series") for r in rows_ray)
    assert ("ignored", "notes.txt") in status and ("failed", "IM0001.dcm") in status
    truncated = next(r for r in rows_ray if r.name.endswith("IM0001.dcm"))
    assert truncated.reason.startswith("truncated")                     # the same one-line reason as local
    assert sorted(r["status"] for r in _manifest(tmp_path / "ray")) == ["ok"] * 12
    again, _ = run_ray(model, root / "in", tmp_path / "ray", opts, workers=2, show_progress=False)
    assert sum(r.status == "done" for r in again) == 12 and len(_manifest(tmp_path / "ray")) == 12


def test_a_killed_worker_loses_nothing(archive, tmp_path):
    root, model = archive
    killed = []

    def kill_one(actors):
        pid = ray.get(actors[0].pid.remote())
        os.kill(pid, signal.SIGKILL)                                    # dies with its first task(s) queued
        killed.append(pid)

    rows, _ = run_ray(model, root / "in", tmp_path / "out", Options(provider="cpu", threads=1, overlay=False),
                      workers=2, show_progress=False, on_started=kill_one)
    assert killed
    manifest = _manifest(tmp_path / "out")
    assert sorted(r["series_uid"] for r in manifest) == sorted(set(r["series_uid"] for r in manifest))  # one row each
    assert len(manifest) == 12 and all(r["status"] == "ok" for r in manifest)
    assert len(_segs(tmp_path / "out")) == 12
    assert not [p for p in (tmp_path / "out").rglob(".*")]             # no temporary folder left behind
    assert all(np.isfinite(r.seconds) for r in rows)
    report = json.loads((tmp_path / "out" / "run_report.json").read_text())
    assert report["engine"] == "ray"
