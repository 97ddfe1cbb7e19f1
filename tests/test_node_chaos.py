"""Chaos on loopback, every wait bounded: a data set 200 MB over the node's cap (received to disk and answered
0xA700 within the spool quota, aborted with a logged reason when it would pass the quota; its memory stays
bounded, other senders are unaffected, nothing half-written stays),
20 concurrent senders with one sending garbage PDUs, a forward peer that accepts and then drops the
association in the middle of the data set, kill -9 of the node while it forwards over TLS."""
from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from edgeseg.node import log  # noqa: E402
from edgeseg.node.config import Destination  # noqa: E402
from edgeseg.node.health import echo  # noqa: E402
from edgeseg.node.memory import memory, reset_peak  # noqa: E402
from edgeseg.node.peer import (GARBAGE, GARBAGE_IN_ASSOCIATION, send_garbage, store_file,  # noqa: E402
                               write_oversized)
from node_helpers import HOST, free_port, kill9, node_process, published_segs, spool_files, wait_for  # noqa: E402
from runtime_fixtures import SAMPLE, write_series  # noqa: E402
from test_node_dicom import _send, make_node, model  # noqa: E402,F401  (shared fixtures)
from test_node_faults import _datasets, peers  # noqa: E402,F401
from test_node_limits import pki  # noqa: E402,F401

MB = 1024 * 1024
CAP_MB = 16
MARGIN_MB = 100          # the bound on the node's peak RSS above its idle RSS: cap + this


def _node_log(path):
    return [json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]


def _segs(out) -> int:
    """How many results are published under `out`; -1 while a result folder is being renamed."""
    paths = published_segs(out)
    return -1 if paths is None else len(paths)


def _start(model, spool, port, *args, log):  # noqa: F811
    proc = node_process(model, spool, port, *args, log=log)
    assert wait_for(lambda: proc.poll() is not None or echo(HOST, port, "EDGESEG", timeout=2)[0], 60), \
        log.read_text()[-2000:]
    assert proc.poll() is None, log.read_text()[-2000:]
    return proc


@pytest.mark.parametrize("quota_mb", [0, 64], ids=["within the quota", "over the quota"])
def test_dataset_200mb_over_the_cap_keeps_memory_bounded(model, tmp_path, quota_mb):  # noqa: F811
    """Within the spool quota the 216 MB data set is received to disk and answered 0xA700; with a 64 MB quota it
    is aborted once receiving more would pass it. Either way: memory bounded, nothing left, others served."""
    port, spool, node_log, out = free_port(), tmp_path / "spool", tmp_path / "node.log", tmp_path / "out"
    big = tmp_path / "big.dcm"
    write_oversized(big, (CAP_MB + 200) * MB, next(SAMPLE.glob("*.dcm")))          # a sparse file: no cost
    warm = write_series(tmp_path / "warm", _datasets("chaos-warm", n=2))
    other = write_series(tmp_path / "other", _datasets("chaos-other", n=3))
    after = write_series(tmp_path / "after", _datasets(f"chaos-after-{quota_mb}", n=1))
    proc = _start(model, spool, port, "--out", out, "--series-timeout", "0.5", "--max-dataset-mb", CAP_MB,
                  "--spool-quota-mb", quota_mb, log=node_log)
    try:
        assert [store_file(port, f) for f in warm] == [0, 0]
        assert wait_for(lambda: _segs(out) == 1, 40), node_log.read_text()[-3000:]
        idle = memory(proc.pid)["rss_mb"]
        if not reset_peak(proc.pid):
            pytest.skip("cannot reset the node's peak RSS (/proc/PID/clear_refs)")
        codes = {}

        def other_sender():
            codes["other"] = [store_file(port, f) for f in other]
        t = threading.Thread(target=other_sender)
        t.start()
        t0 = time.monotonic()
        codes["big"] = store_file(port, big, timeout=60)
        big_s = time.monotonic() - t0
        left = spool_files(spool, "receiving")
        t.join(60)
        assert wait_for(lambda: _segs(out) == 2, 40), "other series not segmented"
        peak = memory(proc.pid)["peak_mb"]
        print(f"quota {quota_mb}: status {codes['big']}, idle RSS {idle} MB, peak {peak} MB (+{peak - idle:.1f}), "
              f"big sender done after {big_s:.2f} s")
        assert peak - idle < CAP_MB + MARGIN_MB, (idle, peak)
        assert codes["other"] == [0, 0, 0]                            # the other sender is unaffected
        assert big_s < 45, big_s
        records = _node_log(node_log)
        aborted = [r for r in records if r["event"] == "receive_aborted"]
        refused = [r for r in records if r["event"] == "dataset_refused"]
        if quota_mb:   # aborted once the spool would pass its quota: within one PDU of 64 MB
            assert codes["big"] is None
            assert len(aborted) == 1 and "--spool-quota-mb 64" in aborted[0]["reason"] and not refused, aborted
            assert CAP_MB * MB < aborted[0]["bytes"] <= quota_mb * MB + 65536, aborted   # + one PDU (--max-pdu)
            assert wait_for(lambda: spool_files(spool, "receiving") == [], 15), spool_files(spool, "receiving")
        else:          # received whole, then refused: the sender keeps it; its file is gone with the answer
            assert codes["big"] == 0xA700
            assert left == [] and not aborted, (left, aborted)
            assert [(r["bytes"] > (CAP_MB + 200) * MB, r["max_dataset_mb"]) for r in refused] == [(True, CAP_MB)]
        assert all(spool_files(spool, s) == [] for s in ("incoming", "ready", "failed"))
        assert [store_file(port, f) for f in after] == [0]             # the next association works
    finally:
        kill9(proc)


def test_twenty_senders_one_sending_garbage(make_node, tmp_path):
    out = tmp_path / "out"
    node = make_node(out=out, series_timeout=1.0, max_associations=24)
    series = [_datasets(f"chaos-20-{i}", n=2) for i in range(19)]
    dropped_before, aborted_before = log.counts["connection_dropped"], log.counts["association_aborted"]
    codes, garbage = {}, {}

    def good(i):
        codes[i] = _send(node.port, series[i], calling=f"SCU{i:02d}")

    def bad():
        garbage["sent"] = send_garbage(node.port)
    threads = [threading.Thread(target=good, args=(i,)) for i in range(19)] + [threading.Thread(target=bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == {i: [0, 0] for i in range(19)}, codes
    assert garbage["sent"] == {"before_association": len(GARBAGE), "in_association": len(GARBAGE_IN_ASSOCIATION),
                               "rejected": 0}
    assert wait_for(lambda: _segs(out) == 19, 90), "not every series was segmented"
    import pydicom

    refs = {frozenset(str(i.ReferencedSOPInstanceUID) for s in pydicom.dcmread(p).ReferencedSeriesSequence
                      for i in s.ReferencedInstanceSequence) for p in published_segs(out)}
    assert refs == {frozenset(str(d.SOPInstanceUID) for d in s) for s in series}
    assert spool_files(tmp_path / "spool", "failed") == []
    # each garbage connection is dropped with a log line (the 4 GB claim waits for its --acse-timeout); the
    # garbage sent inside an accepted association aborts it (`association_aborted`, its calling AE named)
    assert wait_for(lambda: log.counts["connection_dropped"] - dropped_before >= len(GARBAGE), 15), \
        log.counts["connection_dropped"] - dropped_before
    assert log.counts["association_aborted"] - aborted_before == len(GARBAGE_IN_ASSOCIATION)
    assert echo(HOST, node.port, "EDGESEG", timeout=5)[0]


def test_peer_accepts_then_drops_the_association(make_node, peers, tmp_path):  # noqa: F811
    peer = peers(drop_first=2)
    spool = tmp_path / "spool"
    node = make_node(series_timeout=0.5, forward=Destination("FWD", HOST, peer.port))
    sent = _datasets("chaos-drop", n=2)
    assert _send(node.port, sent) == [0, 0]
    assert wait_for(lambda: len(peer.datasets) == 1, 40), f"not delivered after {peer.dropped} drops"
    assert wait_for(lambda: not spool_files(spool, "outbox"), 10)
    time.sleep(1.5)                                               # anything more would be a duplicate
    assert peer.dropped == 2 and len(peer.received) == 1          # retried, delivered once
    assert peer.references() == [{str(d.SOPInstanceUID) for d in sent}]
    assert not list((spool / "dead-letter").iterdir())
    records = node.metrics()["counters"]
    assert records.get("forward_failed", 0) >= 2 and records.get("dead_lettered", 0) == 0, records


@pytest.mark.parametrize("moment", ["C-STORE answer held back", "A-RELEASE held back"])
def test_kill9_while_forwarding_over_tls(model, peers, pki, tmp_path, moment):  # noqa: F811
    from edgeseg.node.tls import server_context

    during_store = moment.startswith("C-STORE")
    peer = peers(ssl_context=server_context(pki / "server.pem", pki / "server.key"),
                 store_delay=8.0 if during_store else 0.0, release_delay=0.0 if during_store else 8.0)
    port, spool, node_log = free_port(), tmp_path / "spool", tmp_path / "node.log"
    args = ("--forward", f"FWD@localhost:{peer.port}", "--forward-tls", "--forward-ca", pki / "ca.pem",
            "--series-timeout", "0.5")
    procs = [_start(model, spool, port, *args, log=node_log)]
    try:
        sent = _datasets(f"chaos-tls-{during_store}", n=2)
        assert _send(port, sent) == [0, 0]
        event = peer.store_requested if during_store else peer.release_requested
        assert wait_for(event.is_set, 40), "no forward over TLS"
        kill9(procs[0])
        assert len(peer.received) == 1
        procs.append(_start(model, spool, port, *args, log=node_log))
        assert wait_for(lambda: not spool_files(spool, "outbox"), 40), "outbox not emptied after the restart"
        time.sleep(2.0)                                           # anything more would be a duplicate
        # no Success reached the node before the kill: one resend of the same SEG (same SOP Instance UID,
        # the receiver deduplicates); Success reached it: the `sent` marker forbids any resend
        assert len(peer.received) == (2 if during_store else 1), peer.received
        assert len(set(peer.received)) == 1
        assert all(r == {str(d.SOPInstanceUID) for d in sent} for r in peer.references())
        assert all(spool_files(spool, s) == [] for s in ("incoming", "ready", "outbox", "failed", "receiving"))
    finally:
        for p in procs:
            kill9(p)


def test_every_bench_scenario_has_its_own_work_folder(tmp_path):
    """`edgeseg bench node` runs each scenario in its own folder (the two over-the-cap scenarios once shared one,
    so the second started in the first's spool)."""
    from edgeseg.bench import node_chaos, node_faults
    from edgeseg.bench.node import work_folder

    top = [work_folder(tmp_path, n) for n in (*node_faults.SCENARIOS, "load", "down-up", "kill", "src", "chaos")]
    chaos = [work_folder(tmp_path / "chaos", n) for n in node_chaos.SCENARIOS]
    for folders in (top, chaos):
        assert len(set(folders)) == len(folders), folders
        assert all(f.parent.name in (tmp_path.name, "chaos") and f.name.strip("-") == f.name for f in folders)
    assert work_folder(tmp_path, "200 MB over the cap, over the quota").name == "200-mb-over-the-cap-over-the-quota"
