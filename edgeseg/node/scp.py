"""The listening side: a pynetdicom AE answering C-ECHO and C-STORE for the image classes the model uses.

A C-STORE is answered Success only after the instance is durably in the spool; anything that cannot be
decoded or stored gets a failure status and a log line, never an exception through pynetdicom.
"""
from __future__ import annotations

import time

from edgeseg.node import log, require_pynetdicom
from edgeseg.node.config import NodeConfig
from edgeseg.node.receive import ReceiveGuard
from edgeseg.node.spool import over_dataset_cap

# C-STORE failure statuses (PS3.4 B.2.3)
CANNOT_UNDERSTAND = 0xC210
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900

STORAGE = {
    "MR": ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"),   # MR, Enhanced MR
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"),   # CT, Enhanced CT
}
UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2")


def storage_classes(modality: str) -> tuple[str, ...]:
    """The image storage SOP classes for the model's modality (all known ones when it names none)."""
    if modality and modality.upper() in STORAGE:
        return STORAGE[modality.upper()]
    return tuple(uid for pair in STORAGE.values() for uid in pair)


def transfer_syntaxes() -> list[str]:
    """Uncompressed syntaxes, plus every compressed one this pydicom install can decode."""
    out = list(UNCOMPRESSED)
    try:
        from pydicom.pixels import get_decoder
        from pynetdicom import ALL_TRANSFER_SYNTAXES

        for uid in ALL_TRANSFER_SYNTAXES:
            if uid not in out:
                try:
                    if get_decoder(uid).is_available:
                        out.append(uid)
                except (NotImplementedError, ValueError, KeyError):
                    pass
    except ImportError:
        pass
    return out


def _peer(event) -> dict:
    a = event.assoc
    return {"calling_ae": str(a.requestor.ae_title).strip(), "peer": f"{a.requestor.address}:{a.requestor.port}"}


def unprocessable(ds, file_meta, sop: str) -> str:
    """Why the runner could never segment this instance ('' when it can): checked before the instance is
    acknowledged, so the sender keeps what we cannot use (colour, truncated or undecodable pixel data)."""
    from pathlib import Path

    from edgeseg.errors import EdgesegError
    from edgeseg.runtime.pixels import decode_pixels

    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        return f"colour image ({samples} samples per pixel); the model expects greyscale"
    ds.file_meta = file_meta
    try:
        decode_pixels(ds, Path(sop or "instance"))
    except EdgesegError as exc:
        return str(exc)
    return ""


def _received_file(event):
    """The file pynetdicom wrote the data set to (node/receive.py), or None when it kept it in memory."""
    try:
        return event.dataset_path
    except AttributeError:
        return None


def over_the_cap(src, sop: str, cfg: NodeConfig, event) -> bool:
    """A received file over --max-dataset-mb: removed at once, never read, a `dataset_refused` line (the
    handler answers 0xA700, so the sender keeps it)."""
    size = src.stat().st_size
    reason = over_dataset_cap(size, cfg)
    if not reason:
        return False
    src.unlink(missing_ok=True)
    log.event("dataset_refused", level="warning", sop=sop, bytes=size, max_dataset_mb=cfg.max_dataset_mb,
              reason=reason, **_peer(event))
    return True


def make_store_handler(spool, on_stored, cfg=None):
    """C-STORE handler: check and decode the instance, put it durably in the spool, then call on_stored(key, t).
    The data set arrives as a file (receive_to_disk) that is moved into the spool, or in memory."""
    def handle_store(event):
        import pydicom

        sop = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
        src = _received_file(event)
        if src is not None and cfg is not None and over_the_cap(src, sop, cfg, event):
            return OUT_OF_RESOURCES
        try:
            ds = pydicom.dcmread(src) if src is not None else event.dataset
            file_meta = ds.file_meta if src is not None else event.file_meta
            for _ in ds:   # parse every top-level element now: a broken dataset fails here, not later
                pass
            series = str(ds.get("SeriesInstanceUID", "") or "")
            if not series or "Rows" not in ds or "PixelData" not in ds and "FloatPixelData" not in ds:
                log.event("rejected_instance", level="warning", sop=sop, reason="no SeriesInstanceUID or no pixels",
                          **_peer(event))
                return DATASET_MISMATCH
            if str(ds.get("SOPInstanceUID", sop)) != sop:
                log.event("rejected_instance", level="warning", sop=sop, reason="SOPInstanceUID differs from request",
                          **_peer(event))
                return DATASET_MISMATCH
            problem = unprocessable(ds, file_meta, sop)
            if problem:
                log.event("rejected_instance", level="warning", sop=sop, reason=problem, **_peer(event))
                return CANNOT_UNDERSTAND
            del ds
            data = event.encoded_dataset(include_meta=True) if src is None else None
        except Exception as exc:
            log.event("rejected_instance", level="warning", sop=sop, reason=f"cannot decode: {type(exc).__name__}: "
                      f"{str(exc)[:160]}", **_peer(event))
            return CANNOT_UNDERSTAND
        nbytes = src.stat().st_size if src is not None else len(data)
        refusal = spool.admission(series, nbytes, cfg) if cfg is not None else ""
        if refusal:
            log.event("refused_instance", level="warning", sop=sop, series=series, reason=refusal, **_peer(event))
            return OUT_OF_RESOURCES
        try:
            path = spool.store_file(series, sop, src) if src is not None else spool.store(series, sop, data)
        except Exception as exc:  # disk full, permissions...: the sender keeps the image and retries
            log.event("store_failed", level="error", sop=sop, reason=f"{type(exc).__name__}: {str(exc)[:160]}")
            return OUT_OF_RESOURCES
        on_stored(path.parent.name, time.time())
        log.event("received", series=series, sop=sop, bytes=nbytes, **_peer(event))
        return 0x0000
    return handle_store


# A-ASSOCIATE-RJ of a storage association while the spool is full (PS3.8 9.3.4): rejected-transient, by the
# service provider (presentation related function), local limit exceeded: the sender may try again later
FULL_REJECT = (0x02, 0x03, 0x02)


def connection_handlers(guard, full=None) -> list:
    """EVT_CONN_OPEN/EVT_CONN_CLOSE: a connection that closes without ever having an association accepted or
    rejected (garbage bytes, an invalid PDU, no A-ASSOCIATE-RQ in time) gets a `connection_dropped` line.
    EVT_REQUESTED: while `full()` gives a reason (spool over its quota, disk under its floor), an association
    that proposes a storage context is rejected before any data set is sent (FULL_REJECT, documented
    `ACSE.send_reject`; pynetdicom skips its own negotiation then); Verification-only ones (C-ECHO, --health) go on."""
    from pynetdicom import evt
    from pynetdicom.sop_class import Verification

    seen: dict[int, str] = {}

    def opened(event):
        seen[id(event.assoc)] = f"{event.address[0]}:{event.address[1]}" if getattr(event, "address", None) else ""

    def settled(event):
        seen.pop(id(event.assoc), None)

    def requested(event):
        if full is None or all(cx.abstract_syntax == Verification for cx in event.assoc.requestor.requested_contexts):
            return
        why = full()
        if why:
            settled(event)
            calling = str(event.assoc.requestor.primitive.calling_ae_title).strip()   # not negotiated yet
            log.event("association_rejected", level="warning", reason=f"spool full: {why}",
                      **{**_peer(event), "calling_ae": calling})
            event.assoc.acse.send_reject(*FULL_REJECT)
            event.assoc.kill()   # as pynetdicom after its own rejections: waits until the A-ASSOCIATE-RJ is sent

    def closed(event):
        guard.forget(event)
        if id(event.assoc) in seen:
            log.event("connection_dropped", level="warning", peer=seen.pop(id(event.assoc)),
                      reason="closed before any association (not DICOM, an invalid PDU, or no A-ASSOCIATE-RQ "
                             "within --acse-timeout)")
    return [(evt.EVT_CONN_OPEN, opened), (evt.EVT_REQUESTED, requested), (evt.EVT_ACCEPTED, settled),
            (evt.EVT_REJECTED, settled), (evt.EVT_CONN_CLOSE, closed)]


def start_server(cfg: NodeConfig, modality: str, spool, on_stored):
    """Start the AE in background threads; returns (ae, server)."""
    pnd = require_pynetdicom()
    from pynetdicom import evt
    from pynetdicom.sop_class import Verification

    ae = pnd.AE(ae_title=cfg.ae_title)
    ae.maximum_associations = cfg.max_associations
    ae.maximum_pdu_size = cfg.max_pdu
    ae.network_timeout = cfg.network_timeout
    ae.acse_timeout = cfg.acse_timeout
    ae.dimse_timeout = cfg.dimse_timeout
    ae.require_called_aet = True   # an association addressed to another AE title is rejected
    if cfg.allow_ae:
        ae.require_calling_aet = list(cfg.allow_ae)
    ae.add_supported_context(Verification)
    syntaxes = transfer_syntaxes()
    for uid in storage_classes(modality):
        ae.add_supported_context(uid, syntaxes)

    def on_echo(event):
        log.event("echo", **_peer(event))
        return 0x0000

    def on_assoc(name, level="info"):
        return lambda event: log.event(name, level=level, **_peer(event))

    mb = 1024 * 1024
    guard = ReceiveGuard(int(cfg.max_dataset_mb * mb), cfg.max_pdu, int(cfg.max_receive_mb * mb),
                         room=lambda in_progress: spool.receiving_refusal(in_progress, cfg))

    handlers = [
        (evt.EVT_C_ECHO, on_echo), (evt.EVT_C_STORE, make_store_handler(spool, on_stored, cfg)),
        (evt.EVT_ACCEPTED, on_assoc("association_accepted")),
        (evt.EVT_REJECTED, on_assoc("association_rejected", "warning")),
        (evt.EVT_ABORTED, on_assoc("association_aborted", "warning")),
        (evt.EVT_RELEASED, on_assoc("association_released")),
        (evt.EVT_PDU_RECV, guard.on_pdu),
        *connection_handlers(guard, full=lambda: spool.receiving_refusal(0, cfg)),
    ]
    ssl_context = None
    if cfg.tls_cert:
        from edgeseg.node.tls import server_context

        ssl_context = server_context(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca)
    server = ae.start_server((cfg.bind, cfg.port), block=False, evt_handlers=handlers, ssl_context=ssl_context)
    return ae, server
