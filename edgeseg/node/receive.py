"""What a dataset may cost while it is being received, not only once it is kept.

Two documented pynetdicom means, no change to pynetdicom itself:

* `receive_to_disk(folder)`: pynetdicom's `_config.STORE_RECV_CHUNKED_DATASET` (pynetdicom >= 2.0)
  writes each received C-STORE data set fragment by fragment to a temporary file (in Python's
  `tempfile.tempdir`, which the node points at `SPOOL/receiving/`) and hands the handler its path
  (`event.dataset_path`), so a data set never sits in memory while it arrives.
* `ReceiveGuard`, an `evt.EVT_PDU_RECV` handler: counts the data-set bytes of the message each
  association is receiving. A data set over `--max-dataset-mb` is still received (to disk: it costs disk, not
  memory) so that the C-STORE handler can answer it 0xA700; the guard aborts the association (A-ABORT, a
  `receive_aborted` log line) only once such a data set passes the hard ceiling `--max-receive-mb`, or once
  continuing would put the spool over its quota or the disk under its free-space floor (`room`). A P-DATA PDU
  longer than the `--max-pdu` we advertised is aborted too (pynetdicom has read that one PDU into memory by
  then: a peer that ignores the advertised PDU size is bounded only by the process' memory limit, e.g.
  systemd's MemoryMax).

`sweep(folder)` removes what an aborted association left in the receiving folder.
"""
from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from pathlib import Path

from edgeseg.node import log

_active: list[tuple[str, object, bool]] = []   # (folder, tempdir before, chunked flag before), one per running node
_lock = threading.Lock()


def receive_to_disk(folder: Path) -> bool:
    """Received data sets go to files in `folder` from now on (process-wide: pynetdicom's switch and Python's
    temporary folder are both global). False when this pynetdicom has no such switch (< 2.0)."""
    from pynetdicom import _config

    if not hasattr(_config, "STORE_RECV_CHUNKED_DATASET"):
        return False
    Path(folder).mkdir(parents=True, exist_ok=True)
    with _lock:
        _active.append((str(folder), tempfile.tempdir, _config.STORE_RECV_CHUNKED_DATASET))
        _config.STORE_RECV_CHUNKED_DATASET = True
        tempfile.tempdir = str(folder)
    return True


def receive_done(folder: Path) -> None:
    """Undo `receive_to_disk(folder)` (a stopped node); the last node to stop restores the old settings."""
    from pynetdicom import _config

    with _lock:
        for i, (name, tmp, flag) in enumerate(_active):
            if name == str(folder):
                del _active[i]
                if not _active:
                    tempfile.tempdir, _config.STORE_RECV_CHUNKED_DATASET = tmp, flag
                elif tempfile.tempdir == name:
                    tempfile.tempdir = _active[-1][0]
                break


def _open_files() -> set[str] | None:
    """Paths this process holds open (Linux /proc); None where that cannot be known."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = set()
    for fd in fds:
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return found


def sweep(folder: Path, min_age_s: float = 2.0, stale_s: float = 120.0, everything: bool = False) -> int:
    """Delete pynetdicom's files (*.dcm) in `folder` that no association is writing any more: not modified for `min_age_s` and not
    held open by this process (Linux), or not modified for `stale_s` (elsewhere, or an open file an aborted
    association never closed). `everything` at start, when nothing can be receiving. Returns how many."""
    folder = Path(folder)
    try:
        files = [p for p in folder.glob("*.dcm") if p.is_file()]   # pynetdicom's temporary files end in .dcm
    except OSError:
        return 0
    if not files:
        return 0
    now = time.time()
    if not everything:
        files = [p for p in files if now - _mtime(p) >= min_age_s]
        if not files:
            return 0
        held = _open_files()
        if held is not None and any(str(p) in held for p in files):
            gc.collect()   # an aborted association's file object is freed with its association (a cycle)
            held = _open_files()
        files = [p for p in files if now - _mtime(p) >= stale_s or (held is not None and str(p) not in held)]
    removed = 0
    for p in files:
        try:
            p.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return time.time()


def _peer(assoc) -> dict:
    try:
        return {"calling_ae": str(assoc.requestor.ae_title).strip(), "peer": f"{assoc.requestor.address}:{assoc.requestor.port}"}
    except Exception:
        return {}


class ReceiveGuard:
    """EVT_PDU_RECV handler (runs in each association's own network thread). A data set past `max_bytes` (the
    cap; 0: none) aborts its association when it passes `ceiling` (0: none) or when `room(bytes)` — called with
    the bytes all associations have received of their data sets in progress — gives a reason; a PDU longer
    than `max_pdu` (0: no check) aborts it at once. Data sets under the cap are refused by the C-STORE handler
    (0xA700) once whole, so several arriving at once could pass the quota by one cap each: while more than one
    cap is in progress, `room(in progress - cap)` is asked every `room_step` bytes of growth, keeping the spool
    within one data set of its quota across all associations."""

    def __init__(self, max_bytes: int, max_pdu: int = 0, ceiling: int = 0, room=None, room_step: int = 4 << 20):
        self.max_bytes, self.max_pdu, self.ceiling, self.room = int(max_bytes), int(max_pdu), int(ceiling), room
        self.room_step = int(room_step)
        self._asked_at = 0                   # bytes in progress when room was last asked for the shared slack
        self._sizes: dict[int, int] = {}     # id(association) -> data-set bytes of the message in progress
        self._aborted: set[int] = set()
        self._lock = threading.Lock()

    def on_pdu(self, event) -> None:
        items = getattr(event.pdu, "presentation_data_value_items", None)
        if items is None:
            return
        key = id(event.assoc)
        with self._lock:
            if key in self._aborted:
                return
            n = self._sizes.get(key, 0)
            length = sum(len(item.presentation_data_value) + 5 for item in items)  # item length, context ID, value
            reason, over_cap = "", False
            if self.max_pdu and length > self.max_pdu:
                reason = f"P-DATA PDU of {length} bytes, over the maximum of {self.max_pdu} we advertised (--max-pdu)"
            for item in items:
                value = item.presentation_data_value
                if not value or value[0] & 1:      # a command fragment
                    continue
                n += len(value) - 1
                if value[0] & 2:                   # its last fragment: received whole, the handler answers it
                    n = 0
                elif self.max_bytes and n > self.max_bytes:
                    over_cap = True
            self._sizes[key] = n
            in_progress = sum(self._sizes.values())
            shared = (not over_cap and self.room is not None and self.max_bytes and in_progress > self.max_bytes
                      and abs(in_progress - self._asked_at) >= self.room_step)
            if shared:
                self._asked_at = in_progress
        mb = 1024 * 1024
        if not reason and shared:
            why = self.room(in_progress - self.max_bytes)
            if why:
                reason = (f"{in_progress / mb:.1f} MB of data sets in progress on all associations, more than one "
                          f"--max-dataset-mb {self.max_bytes / mb:.4g} beyond the limit: {why}")
        if not reason and over_cap:
            if self.ceiling and n > self.ceiling:
                reason = f"data set over --max-receive-mb {self.ceiling / mb:.4g} while being received ({n / mb:.1f} MB so far)"
            elif self.room is not None:
                why = self.room(in_progress)
                if why:
                    reason = (f"data set over --max-dataset-mb {self.max_bytes / mb:.4g} ({n / mb:.1f} MB so far) and "
                              f"{why}")
        if not reason:
            return
        with self._lock:
            if key in self._aborted:
                return
            self._aborted.add(key)
            self._sizes.pop(key, None)
        log.event("receive_aborted", level="warning", reason=reason, bytes=n, **_peer(event.assoc))
        # abort from another thread: Association.abort() waits for this (the network) thread to stop
        threading.Thread(target=event.assoc.abort, name="edgeseg-abort", daemon=True).start()

    def forget(self, event) -> None:
        """EVT_CONN_CLOSE: drop the association's counters (an aborted one stays aborted until then)."""
        key = id(event.assoc)
        with self._lock:
            self._sizes.pop(key, None)
            self._aborted.discard(key)
