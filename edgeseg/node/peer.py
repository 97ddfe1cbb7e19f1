"""A C-STORE peer (pynetdicom) that can misbehave on purpose, for fault drills of a node before it goes
next to a PACS — `edgeseg bench node`, the node's tests: a chosen C-STORE status, a slow A-RELEASE, no
SEG support, a calling-AE check, TLS. It counts every Store request it received. Loopback by default.
Also here: `dcmtk(tool)`, the DCMTK peers the benchmarks and tests use when installed."""
from __future__ import annotations

import functools
import os
import subprocess
import threading
import time

HOST = "127.0.0.1"


@functools.lru_cache(maxsize=None)
def dcmtk(tool: str) -> str | None:
    """Full path of the DCMTK `tool` on PATH, skipping same-named scripts (pynetdicom installs a `storescu`)."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(folder, tool)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            try:
                r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if "dcmtk" in (r.stdout + r.stderr).lower():
                return path
    return None


SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class StorePeer:
    def __init__(self, status: int = 0x0000, accept_seg: bool = True, release_delay: float = 0.0,
                 require_calling: str | None = None, ae_title: str = "FWD", port: int | None = None,
                 ssl_context=None):
        self.status, self.accept_seg, self.release_delay = status, accept_seg, release_delay
        self.require_calling, self.ae_title, self.ssl_context = require_calling, ae_title, ssl_context
        self.port = port or _free_port()
        self.received: list[str] = []            # SOP Instance UIDs, one per C-STORE request
        self.datasets: list = []                 # what was stored (when the status is a success)
        self.release_requested = threading.Event()
        self.server = None

    def start(self) -> "StorePeer":
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
        ae.add_supported_context(Verification)
        ae.add_supported_context(SEG_STORAGE if self.accept_seg else "1.2.840.10008.5.1.4.1.1.4")
        if self.require_calling:
            ae.require_calling_aet = [self.require_calling]

        def on_store(event):
            self.received.append(str(event.request.AffectedSOPInstanceUID))
            if self.status == 0x0000:
                self.datasets.append(event.dataset)
            return self.status

        def on_pdu(event):  # runs in the DUL thread: sleeping here holds back the A-RELEASE-RP
            if type(event.pdu).__name__ == "A_RELEASE_RQ":
                self.release_requested.set()
                if self.release_delay:
                    time.sleep(self.release_delay)

        self.server = ae.start_server((HOST, self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_PDU_RECV, on_pdu)],
                                      ssl_context=self.ssl_context)
        return self

    def references(self) -> list[set]:
        """Per SEG received: the source SOP Instance UIDs it references."""
        return [{str(i.ReferencedSOPInstanceUID) for s in ds.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
                for ds in self.datasets]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None


def fill_disk(folder, chunk: int = 65536) -> list:
    """Write files into `folder` until its file system says no (bytes or inodes): a disk-full drill.
    Returns the files written (delete them to give the space back)."""
    from pathlib import Path

    made = []
    for i in range(10_000_000):
        p = Path(folder) / f"filler-{i}"
        try:
            with open(p, "wb") as f:
                f.write(b"\0" * chunk)
        except OSError:
            return made + ([p] if p.exists() else [])
        made.append(p)
    return made
