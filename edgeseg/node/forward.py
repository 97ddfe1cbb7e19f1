"""C-STORE SCU for results: each outbox entry is sent until the peer says Success, with bounded retries.

The SEG's UIDs are deterministic, so a re-send after a crash is the same object (the receiver can
deduplicate). Every destination (--forward, repeatable) has its own markers in the entry. `sent` is written the moment the peer answers Success, before A-RELEASE, so a kill
during the release never sends the result twice. A failure the peer will give again (refused data set,
cannot understand, SOP class not accepted, association rejected for good) moves the result to
dead-letter/ at once; a transient one (refused connection, time-out, out of resources, rejected for
now) is retried with capped exponential back-off and jitter until --max-attempts, counted on disk so a
restart does not reset it.
"""
from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edgeseg.node import log, require_pynetdicom
from edgeseg.node.config import Destination, NodeConfig
from edgeseg.node.spool import Spool

OK_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}  # success and the storage warnings (stored anyway)
# C-STORE failures the peer gives again for the same object (PS3.4 B.2.3, PS3.7 C): data set does not match
# the SOP class (A9xx), cannot understand (Cxxx), SOP class not supported, not authorised, invalid or
# duplicate instance, unrecognised operation. Out of resources (A7xx) is transient: the PACS frees space.
PERMANENT_CODES = {0x0122, 0x0124, 0x0117, 0x0111, 0x0210, 0x0211, 0x0212}


def permanent_status(code: int) -> bool:
    return code in PERMANENT_CODES or code & 0xFF00 == 0xA900 or code & 0xF000 == 0xC000


@dataclass
class SendResult:
    stored: bool
    reason: str
    permanent: bool = False
    status: int | None = None


def _connect_error(dest: Destination, timeout: float) -> str:
    """Why pynetdicom got no association at all: ask the TCP stack (refused, unreachable, time-out)."""
    try:
        with socket.create_connection((dest.host, dest.port), timeout=min(timeout, 5.0)):
            return "association aborted by the peer"
    except OSError as exc:
        return f"cannot connect to {dest.host}:{dest.port} ({exc.strerror or type(exc).__name__})"


def _not_established(assoc, dest: Destination, sop_class: str, ts: str, timeout: float) -> SendResult:
    import pydicom

    rsp = getattr(assoc.acceptor, "primitive", None)
    if assoc.is_rejected and rsp is not None:
        permanent = getattr(rsp, "result", None) == 0x01
        return SendResult(False, f"association rejected ({rsp.result_str}, {rsp.source_str}: {rsp.reason_str})",
                          permanent)
    if rsp is not None and getattr(rsp, "result", None) == 0x00 and not assoc.accepted_contexts:
        name = getattr(pydicom.uid.UID(sop_class), "name", sop_class)
        return SendResult(False, f"no accepted presentation context: {dest.ae_title} does not accept {name} "
                                 f"in {getattr(pydicom.uid.UID(ts), 'name', ts)}", True)
    if rsp is None and assoc.is_aborted:
        return SendResult(False, _connect_error(dest, timeout))
    return SendResult(False, "association aborted" if assoc.is_aborted else "no answer to the association request")


def send_file(path: Path, dest: Destination, calling_ae: str, timeout: float = 30.0, on_stored=None,
              tls_args=None) -> SendResult:
    """One association, one C-STORE. `on_stored()` runs on Success, before the association is released;
    `tls_args` (ssl context, server host name) for DICOM over TLS."""
    pnd = require_pynetdicom()
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    sop_class, ts = str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)
    ae = pnd.AE(ae_title=calling_ae)
    ae.connection_timeout = min(timeout, 10.0)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(sop_class, [ts])
    assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title, tls_args=tls_args)
    if not assoc.is_established:
        return _not_established(assoc, dest, sop_class, ts, timeout)
    try:
        status = assoc.send_c_store(str(path))
        code = getattr(status, "Status", None)
        if code in OK_STATUSES:
            if on_stored is not None:
                on_stored()
            return SendResult(True, f"status 0x{code:04X}", status=code)
        if code is None:
            return SendResult(False, "association aborted during the C-STORE" if assoc.is_aborted
                              else "no response to the C-STORE")
        return SendResult(False, f"status 0x{code:04X}", permanent_status(code), code)
    finally:
        if assoc.is_established:
            assoc.release()


class Forwarder(threading.Thread):
    """Sends every outbox entry to each of its destinations (fan-out), each with its own markers,
    attempt count and dead letter; an entry is discarded once every destination has it or gave up."""

    def __init__(self, cfg: NodeConfig, spool: Spool, stop: threading.Event):
        super().__init__(name="edgeseg-forwarder", daemon=True)
        self.cfg, self.spool, self.stop = cfg, spool, stop
        self.next_try: dict[tuple[str, str], float] = {}
        self.by_name = {str(d): d for d in cfg.forward}
        self.context = None
        if cfg.forward_tls:
            from edgeseg.node.tls import client_context

            self.context = client_context(cfg.forward_ca, cfg.forward_cert, cfg.forward_key)
        self._unknown_logged: set = set()

    def targets(self, entry: Path) -> tuple[list[Destination], bool]:
        """(the entry's destinations that this node is configured for, whether that is all of them);
        an entry without a list (older spools) is for every configured destination."""
        names = self.spool.destinations(entry) or list(self.by_name)
        found = [self.by_name[n] for n in names if n in self.by_name]
        for n in names:
            if n not in self.by_name and (entry.name, n) not in self._unknown_logged:
                self._unknown_logged.add((entry.name, n))
                log.event("forward_unknown_destination", level="warning", seg_uid=entry.name, dest=n,
                          reason="no longer configured: kept in the outbox until it is again, or requeued")
        return found, len(found) == len(names)

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in self.spool.outbox_entries(sendable=True):
                if self.stop.is_set():
                    break
                dests, all_known = self.targets(entry)
                for dest in dests:
                    if not self.spool.delivered(entry, dest.key) and \
                            self.next_try.get((entry.name, dest.key), 0.0) <= time.time():
                        self.forward(entry, dest)
                if dests and all_known and self.spool.finished(entry, [d.key for d in dests]):
                    self.spool.discard(entry)
            self.stop.wait(0.2)

    def forward(self, entry: Path, dest: Destination | None = None) -> bool:
        dest = dest or self.cfg.forward[0]
        meta = {}
        tls_args = (self.context, dest.host) if self.context is not None else None
        try:
            meta = json.loads((entry / "meta.json").read_text())
            result = send_file(entry / "seg.dcm", dest, self.cfg.ae_title,
                               on_stored=lambda: self.spool.mark_sent(entry, dest.key), tls_args=tls_args)
        except Exception as exc:  # broken file, local I/O error...: retried with back-off, bounded
            result = SendResult(False, f"{type(exc).__name__}: {str(exc)[:160]}")
        slot = (entry.name, dest.key)
        if result.stored:
            self.next_try.pop(slot, None)
            log.event("forwarded", series=meta.get("series_uid"), seg_uid=meta.get("seg_uid"), dest=str(dest),
                      latency_s=round(time.time() - float(meta.get("last_rx", time.time())), 3), result=result.reason)
            return True
        record = self.spool.record_attempt(entry, result.reason, dest.key)
        n = int(record["attempts"])
        age = time.time() - float(record.get("first_failure", time.time()))
        too_old = bool(self.cfg.retry_max_age) and age >= self.cfg.retry_max_age
        if result.permanent or n >= self.cfg.max_attempts or too_old:
            why = ("permanent failure" if result.permanent else f"{n} attempts (--max-attempts)"
                   if n >= self.cfg.max_attempts else f"failing for {age:.0f} s (--retry-max-age)")
            kept = self.spool.to_dead_letter(entry, {**record, "dest": str(dest), "dest_key": dest.key,
                                                     "status": result.status, "permanent": result.permanent,
                                                     "why": why}, dest.key)
            self.next_try.pop(slot, None)
            log.event("dead_lettered", level="error", seg_uid=meta.get("seg_uid"), series=meta.get("series_uid"),
                      dest=str(dest), attempts=n, reason=result.reason, why=why, kept=f"dead-letter/{kept.name}")
            return False
        delay = min(self.cfg.retry_max, self.cfg.retry_base * 2 ** (n - 1)) * random.uniform(0.75, 1.0)
        self.next_try[slot] = time.time() + delay
        log.event("forward_failed", level="warning", seg_uid=meta.get("seg_uid"), dest=str(dest), attempt=n,
                  max_attempts=self.cfg.max_attempts, retry_in_s=round(delay, 2), reason=result.reason)
        return False
