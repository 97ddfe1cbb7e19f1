"""`edgeseg serve` on the board floor (Python 3.8, pynetdicom 2.0.2, pydicom 2.4, highdicom 0.22): instances
are received to files and acknowledged, a data set over the cap is received to disk and refused with 0xA700,
one past the hard ceiling is aborted while it arrives, the series is segmented. The interpreters come from EDGESEG_FLOOR_PYTHONS (.ci/run makes them where a Python 3.8 exists);
skipped, with the reason, otherwise. Senders are this interpreter's pynetdicom, on loopback."""
from __future__ import annotations

import os
import subprocess

import pytest

pytest.importorskip("pynetdicom")

from edgeseg.node.peer import store_file, write_oversized  # noqa: E402
from node_helpers import REPO, free_port, kill9, published_segs, spool_files, wait_for  # noqa: E402
from runtime_fixtures import SAMPLE, export_threshold_model, write_series  # noqa: E402
from test_node_faults import _datasets  # noqa: E402

FLOOR = [p for p in os.environ.get("EDGESEG_FLOOR_PYTHONS", "").split(os.pathsep) if p]


@pytest.mark.skipif(not FLOOR, reason="EDGESEG_FLOOR_PYTHONS not set (Python 3.8 venvs with pynetdicom 2.0.2)")
@pytest.mark.parametrize("python", FLOOR[:1] or ["-"])
def test_serve_on_the_floor_receives_to_disk_refuses_over_the_cap_aborts_past_the_ceiling(python, tmp_path):
    from edgeseg.node.health import echo

    version = subprocess.run([python, "-c", "import pynetdicom; print(pynetdicom.__version__)"], capture_output=True,
                             text=True, timeout=60).stdout.strip()
    model = export_threshold_model(tmp_path / "threshold.onnx")
    port, spool, out, log = free_port(), tmp_path / "spool", tmp_path / "out", tmp_path / "node.log"
    files = write_series(tmp_path / "series", _datasets("floor", n=2))
    over, big = tmp_path / "over.dcm", tmp_path / "big.dcm"
    write_oversized(over, 3 * 1024 * 1024, next(SAMPLE.glob("*.dcm")))
    write_oversized(big, 8 * 1024 * 1024, next(SAMPLE.glob("*.dcm")))
    proc = subprocess.Popen([python, "-m", "edgeseg", "serve", str(model), "--bind", "127.0.0.1", "--port", str(port),
                             "--spool", str(spool), "--out", str(out), "--threads", "1", "--series-timeout", "0.5",
                             "--max-dataset-mb", "1", "--max-receive-mb", "4"], stdout=subprocess.DEVNULL, stderr=open(log, "ab"), cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert wait_for(lambda: proc.poll() is not None or echo("127.0.0.1", port, "EDGESEG", timeout=2)[0], 90), \
            log.read_text()[-2000:]
        assert proc.poll() is None, log.read_text()[-2000:]
        assert [store_file(port, f) for f in files] == [0, 0], (version, log.read_text()[-2000:])
        assert store_file(port, over) == 0xA700                            # over the 1 MB cap: received, refused
        assert spool_files(spool, "receiving") == []                       # its file removed with the answer
        assert store_file(port, big) is None                               # aborted past the 4 MB ceiling
        assert wait_for(lambda: published_segs(out), 60), log.read_text()[-2000:]
        assert wait_for(lambda: spool_files(spool, "receiving") == [], 15)
        text = log.read_text()
        assert '"receive_to_disk": true' in text and '"dataset_refused"' in text, text[-2000:]
        assert '"receive_aborted"' in text and "--max-receive-mb 4" in text, text[-2000:]
    finally:
        kill9(proc)
