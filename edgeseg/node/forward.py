"""C-STORE SCU for results: each outbox entry is sent until the peer says Success, with back-off.

The SEG's UIDs are deterministic, so a re-send after a crash is the same object (the receiver can
deduplicate); `sent` is written right after Success, then the entry is removed.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from edgeseg.node import log, require_pynetdicom
from edgeseg.node.config import Destination, NodeConfig
from edgeseg.node.spool import Spool

OK_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}  # success and the storage warnings (stored anyway)


def send_file(path: Path, dest: Destination, calling_ae: str, timeout: float = 30.0) -> tuple[bool, str]:
    """One association, one C-STORE. Returns (stored, reason)."""
    pnd = require_pynetdicom()
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ae = pnd.AE(ae_title=calling_ae)
    ae.connection_timeout = min(timeout, 10.0)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(ds.SOPClassUID, [str(ds.file_meta.TransferSyntaxUID)])
    assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "no answer"
        return False, f"association {why}"
    try:
        status = assoc.send_c_store(str(path))
    finally:
        if assoc.is_established:
            assoc.release()
    code = getattr(status, "Status", None)
    if code in OK_STATUSES:
        return True, f"status 0x{code:04X}"
    return False, "no response" if code is None else f"status 0x{code:04X}"


class Forwarder(threading.Thread):
    def __init__(self, cfg: NodeConfig, spool: Spool, stop: threading.Event):
        super().__init__(name="edgeseg-forwarder", daemon=True)
        self.cfg, self.spool, self.stop = cfg, spool, stop
        self.attempts: dict[str, int] = {}
        self.next_try: dict[str, float] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in self.spool.outbox_entries(sendable=True):
                if self.stop.is_set():
                    break
                if self.next_try.get(entry.name, 0.0) <= time.time():
                    self.forward(entry)
            self.stop.wait(0.2)

    def forward(self, entry: Path) -> bool:
        dest, meta = self.cfg.forward, {}
        try:
            meta = json.loads((entry / "meta.json").read_text())
            ok, why = send_file(entry / "seg.dcm", dest, self.cfg.ae_title)
        except Exception as exc:  # unreachable host, refused, broken file...: retried with back-off
            ok, why = False, f"{type(exc).__name__}: {str(exc)[:160]}"
        if ok:
            self.spool.mark_sent(entry)
            self.spool.discard(entry)
            self.attempts.pop(entry.name, None)
            self.next_try.pop(entry.name, None)
            log.event("forwarded", series=meta.get("series_uid"), seg_uid=meta.get("seg_uid"), dest=str(dest),
                      latency_s=round(time.time() - float(meta.get("last_rx", time.time())), 3), result=why)
            return True
        n = self.attempts[entry.name] = self.attempts.get(entry.name, 0) + 1
        delay = min(self.cfg.retry_max, self.cfg.retry_base * 2 ** (n - 1))
        self.next_try[entry.name] = time.time() + delay
        log.event("forward_failed", level="warning", seg_uid=meta.get("seg_uid"), dest=str(dest), attempt=n,
                  retry_in_s=round(delay, 2), reason=why)
        return False
