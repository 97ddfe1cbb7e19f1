"""kill -9 the node (its own process) at the risky moments; after a restart nothing acknowledged is lost
and the SEG reaches the destination exactly once."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from node_helpers import (StoreSCP, echo, free_port, kill9, needs_dcmtk, node_process, seg_references,  # noqa: E402
                          spool_files, storescu, wait_for)
from runtime_fixtures import SAMPLE, export_threshold_model  # noqa: E402

pytestmark = needs_dcmtk


@pytest.fixture
def setup(tmp_path):
    rx = StoreSCP(tmp_path / "rx", free_port())
    procs = []

    def start(*extra, port):
        procs.append(node_process(model, tmp_path / "spool", port, *extra, log=tmp_path / "node.log"))
        assert wait_for(lambda: echo(port, "EDGESEG") or procs[-1].poll() is not None, 40), "node did not start"
        assert procs[-1].poll() is None, (tmp_path / "node.log").read_text()[-2000:]
        return procs[-1]

    model = export_threshold_model(tmp_path / "threshold.onnx")
    yield start, rx, tmp_path / "spool"
    for p in procs:
        kill9(p)
    rx.stop()


def _source_uids():
    import pydicom

    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sorted(SAMPLE.glob("*.dcm"))}


def test_kill9_before_series_complete_then_restart(setup):
    start, rx, spool = setup
    rx.start()
    port = free_port()
    args = ("--forward", f"FWD@127.0.0.1:{rx.port}", "--series-timeout", "4")
    node = start(*args, port=port)
    assert storescu(port, sorted(SAMPLE.glob("*.dcm"))).returncode == 0
    kill9(node)                                   # acknowledged, not yet complete
    assert len(spool_files(spool, "incoming")) == 32
    start(*args[:-1], "1", port=port)
    assert wait_for(lambda: rx.files() and not spool_files(spool, "outbox"), 40), "no SEG after restart"
    time.sleep(1.5)                               # anything more would be a duplicate
    assert rx.received() == 1 and seg_references(rx.files()[0]) == _source_uids()
    assert all(spool_files(spool, s) == [] for s in ("incoming", "ready", "outbox"))


def test_kill9_after_segmentation_before_forward_then_restart(setup):
    start, rx, spool = setup
    port = free_port()
    args = ("--forward", f"FWD@127.0.0.1:{rx.port}", "--series-timeout", "1")
    node = start(*args, port=port)                # destination down: the SEG waits in the outbox
    assert storescu(port, sorted(SAMPLE.glob("*.dcm"))).returncode == 0
    assert wait_for(lambda: any(p.name == "seg.dcm" for p in spool_files(spool, "outbox")), 40)
    kill9(node)
    rx.start()
    start(*args, port=port)
    assert wait_for(lambda: rx.files() and not spool_files(spool, "outbox"), 40), "outbox not forwarded after restart"
    time.sleep(1.5)                               # anything more would be a duplicate
    assert rx.received() == 1 and seg_references(rx.files()[0]) == _source_uids()
