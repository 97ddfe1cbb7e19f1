"""`edgeseg serve --health`: exit 0 when the node answers C-ECHO on its port, 1 otherwise (Docker/systemd)."""
from __future__ import annotations

from edgeseg.node import require_pynetdicom


def echo(host: str, port: int, called_ae: str, calling_ae: str = "EDGESEG-HEALTH", timeout: float = 5.0,
         tls_args=None) -> tuple[bool, str]:
    """One C-ECHO (over TLS with `tls_args`). Returns (answered with Success, reason)."""
    pnd = require_pynetdicom()
    from pynetdicom.sop_class import Verification

    ae = pnd.AE(ae_title=calling_ae)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title=called_ae, tls_args=tls_args)
    if not assoc.is_established:
        return False, f"no association with {called_ae}@{host}:{port}"
    try:
        status = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    code = getattr(status, "Status", None)
    return code == 0x0000, "C-ECHO ok" if code == 0x0000 else f"C-ECHO status {code}"


def spool_health(spool, max_pending_age: float | None, stale_s: float = 30.0) -> tuple[bool, str]:
    """From the node's SPOOL/metrics.json: fresh (the node is writing it) and, with `max_pending_age`,
    nothing waiting longer than that. Returns (healthy, one-line summary with the counters)."""
    import json
    import time
    from pathlib import Path

    path = Path(spool) / "metrics.json"
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return False, f"{path}: no metrics ({getattr(exc, 'strerror', None) or exc})"
    age = time.time() - float(m.get("ts", 0))
    counters = ", ".join(f"{k} {v}" for k, v in sorted(m.get("counters", {}).items()))
    summary = (f"oldest pending {m.get('oldest_pending_s', 0):.0f} s, spool {m.get('spool_bytes', 0) / 2**20:.1f} MB, "
               f"dead letters {m.get('dead_letter', 0)}; {counters}")
    if age > stale_s:
        return False, f"metrics {age:.0f} s old (the node stopped updating them); {summary}"
    if max_pending_age is not None and m.get("oldest_pending_s", 0) > max_pending_age:
        return False, f"an item waits longer than --max-pending-age {max_pending_age:g} s; {summary}"
    return True, summary
