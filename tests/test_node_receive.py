"""node/receive.py without a network: the EVT_PDU_RECV guard's counting (data-set fragments only, per
association, from 0 again after a last fragment; over the cap received on, aborted once past the ceiling or
when the quota/floor leave no room; one abort; PDUs over the advertised size) and the sweep of
what aborted associations leave in spool/receiving/."""
from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("pynetdicom")

from edgeseg.node import log  # noqa: E402
from edgeseg.node.receive import ReceiveGuard, receive_done, receive_to_disk, sweep  # noqa: E402


class Assoc:
    def __init__(self):
        self.aborted = threading.Event()
        self.requestor = SimpleNamespace(ae_title="SCU", address="127.0.0.1", port=1)

    def abort(self):
        self.aborted.set()


def _pdu(assoc, *fragments):
    """An EVT_PDU_RECV event for a P-DATA-TF holding (control header, payload size) fragments."""
    items = [SimpleNamespace(presentation_data_value=bytes([h]) + b"x" * n) for h, n in fragments]
    return SimpleNamespace(assoc=assoc, pdu=SimpleNamespace(presentation_data_value_items=items))


DATA, LAST, CMD = 0x00, 0x02, 0x03


def test_guard_counts_data_set_fragments_per_association_and_aborts_once_past_the_ceiling():
    guard = ReceiveGuard(max_bytes=1000, ceiling=3000)
    a, b = Assoc(), Assoc()
    before = log.counts["receive_aborted"]
    guard.on_pdu(_pdu(a, (CMD, 5000)))                     # a command set never counts
    guard.on_pdu(_pdu(a, (DATA, 600)))
    guard.on_pdu(_pdu(b, (DATA, 600)))                     # another association has its own count
    assert not a.aborted.is_set() and not b.aborted.is_set()
    guard.on_pdu(_pdu(a, (LAST, 300)))                     # 900: a whole data set under the cap
    guard.on_pdu(_pdu(a, (DATA, 900)))                     # the next data set starts from 0
    guard.on_pdu(_pdu(a, (DATA, 200)))                     # 1100: over the cap, received on (answered 0xA700)
    assert not a.aborted.wait(0.3)
    guard.on_pdu(_pdu(a, (DATA, 2000)))                    # 3100 > the 3000 ceiling
    assert a.aborted.wait(5)
    guard.on_pdu(_pdu(a, (DATA, 5000)))                    # already aborted: no second line
    assert log.counts["receive_aborted"] == before + 1
    assert not b.aborted.is_set()


def test_guard_asks_for_room_only_past_the_cap_with_every_association_in_progress():
    asked = []

    def room(in_progress):
        asked.append(in_progress)
        return "the spool would pass its quota" if in_progress > 2500 else ""
    guard = ReceiveGuard(max_bytes=1000, room=room)        # no ceiling: quota/floor only
    a, b = Assoc(), Assoc()
    guard.on_pdu(_pdu(b, (DATA, 900)))                     # under the cap: never asks
    guard.on_pdu(_pdu(a, (DATA, 1100)))                    # over the cap: 1100 + b's 900 in progress
    guard.on_pdu(_pdu(a, (LAST, 100)))                     # whole now: the handler refuses it, nothing to ask
    guard.on_pdu(_pdu(a, (DATA, 1200)))                    # a second over-cap data set: 1200 + 900
    assert asked == [2000, 2100] and not a.aborted.wait(0.3)
    guard.on_pdu(_pdu(a, (DATA, 500)))                     # 1700 + 900 > 2500: no room
    assert asked[-1] == 2600 and a.aborted.wait(5)
    assert not b.aborted.is_set()


def test_guard_aborts_a_pdu_over_the_advertised_size_and_ignores_other_pdus():
    guard = ReceiveGuard(max_bytes=0, max_pdu=1000)        # no data-set cap, a PDU limit
    a = Assoc()
    guard.on_pdu(SimpleNamespace(assoc=a, pdu=SimpleNamespace()))   # not a P-DATA-TF
    guard.on_pdu(_pdu(a, (DATA, 990)))                     # 990 + 1 control byte + 5 of item header: fits
    assert not a.aborted.wait(0.3)
    guard.on_pdu(_pdu(a, (DATA, 1000)))
    assert a.aborted.wait(5)


def test_sweep_removes_only_what_nobody_writes(tmp_path):
    old = time.time() - 60
    done, held, fresh, other = (tmp_path / n for n in ("tmp1.dcm", "tmp2.dcm", "tmp3.dcm", "notes.txt"))
    for p in (done, held, fresh, other):
        p.write_bytes(b"partial")
    for p in (done, held, other):
        os.utime(p, (old, old))
    with open(held, "ab"):                                 # still open: an association is writing it
        if not os.path.isdir("/proc/self/fd"):
            pytest.skip("no /proc/self/fd: open files cannot be told apart here")
        assert sweep(tmp_path, min_age_s=2.0) == 1
    assert not done.exists() and held.exists() and fresh.exists() and other.exists()
    assert sweep(tmp_path, everything=True) == 2 and other.exists()


def test_receive_to_disk_is_undone_by_the_last_node(tmp_path):
    import tempfile

    from pynetdicom import _config

    before = (tempfile.tempdir, _config.STORE_RECV_CHUNKED_DATASET)
    assert receive_to_disk(tmp_path / "a") and receive_to_disk(tmp_path / "b")
    assert _config.STORE_RECV_CHUNKED_DATASET and tempfile.gettempdir() == str(tmp_path / "b")
    receive_done(tmp_path / "b")
    assert tempfile.gettempdir() == str(tmp_path / "a")
    receive_done(tmp_path / "a")
    assert (tempfile.tempdir, _config.STORE_RECV_CHUNKED_DATASET) == before


def test_guard_keeps_concurrent_under_cap_data_sets_within_one_cap_of_the_quota():
    """Each data set under the cap is refused (0xA700) only once whole; several at once are bounded together:
    with more than one cap in progress the guard asks for room with one cap of slack, and aborts the one that
    passes it (within one room_step)."""
    asked = []

    def room(bytes_beyond_one_cap):
        asked.append(bytes_beyond_one_cap)
        return "the spool would pass its quota" if bytes_beyond_one_cap > 1500 else ""
    guard = ReceiveGuard(max_bytes=1000, room=room, room_step=100)
    a, b, c = Assoc(), Assoc(), Assoc()
    guard.on_pdu(_pdu(a, (DATA, 900)))                     # one data set in progress: the handler's business
    guard.on_pdu(_pdu(b, (DATA, 900)))                     # 1800 in progress: 800 beyond one cap, room left
    assert asked == [800] and not b.aborted.wait(0.2)
    guard.on_pdu(_pdu(c, (DATA, 50)))                      # 1850: under room_step of growth, not asked again
    assert asked == [800]
    guard.on_pdu(_pdu(c, (DATA, 800)))                     # 2650: 1650 beyond one cap: no room, c aborted
    assert asked == [800, 1650] and c.aborted.wait(5)
    assert not a.aborted.is_set() and not b.aborted.is_set()
