"""`edgeseg serve --health`: exit 0 when the node answers C-ECHO on its port, 1 otherwise (Docker/systemd)."""
from __future__ import annotations

from edgeseg.node import require_pynetdicom


def echo(host: str, port: int, called_ae: str, calling_ae: str = "EDGESEG-HEALTH", timeout: float = 5.0) -> tuple[bool, str]:
    """One C-ECHO. Returns (answered with Success, reason)."""
    pnd = require_pynetdicom()
    from pynetdicom.sop_class import Verification

    ae = pnd.AE(ae_title=calling_ae)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        return False, f"no association with {called_ae}@{host}:{port}"
    try:
        status = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    code = getattr(status, "Status", None)
    return code == 0x0000, "C-ECHO ok" if code == 0x0000 else f"C-ECHO status {code}"
