"""A C-STORE peer (pynetdicom) that can misbehave on purpose, for fault drills of a node before it goes
next to a PACS — `edgeseg bench node`, the node's tests: a chosen C-STORE status, a slow A-RELEASE, a slow
C-STORE answer, no SEG support, a calling-AE check, TLS, accepting an association then aborting it in the
middle of the data set. It counts every Store request it received. Loopback by default.
Misbehaving senders too: garbage PDUs (`send_garbage`) and a data set far over a node's cap, written as a
sparse file so it costs no time or memory to make (`write_oversized`, `store_file`).
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
                 ssl_context=None, drop_first: int = 0, store_delay: float = 0.0):
        """`drop_first`: abort the first N associations once their data set starts arriving (accepted, then
        dropped mid-transfer); `store_delay`: hold back the first C-STORE answer this many seconds."""
        self.status, self.accept_seg, self.release_delay = status, accept_seg, release_delay
        self.drop_first, self.store_delay = drop_first, store_delay
        self.dropped = 0                         # associations aborted mid-transfer
        self.store_requested = threading.Event()
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
            if self.store_delay and not self.store_requested.is_set():
                self.store_requested.set()
                time.sleep(self.store_delay)
            return self.status

        dropping: set = set()

        def on_pdu(event):  # runs in the DUL thread: sleeping here holds back the A-RELEASE-RP
            name = type(event.pdu).__name__
            if name == "A_RELEASE_RQ":
                self.release_requested.set()
                if self.release_delay:
                    time.sleep(self.release_delay)
            elif name == "P_DATA_TF" and self.dropped < self.drop_first and id(event.assoc) not in dropping and \
                    any(v.presentation_data_value[:1] and not v.presentation_data_value[0] & 1
                        for v in event.pdu.presentation_data_value_items):
                dropping.add(id(event.assoc))
                self.dropped += 1
                # Association.abort() waits for this thread to stop: call it from another one
                threading.Thread(target=event.assoc.abort, daemon=True).start()

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


# misbehaving senders ------------------------------------------------------------------------------------------
GARBAGE = {
    "unknown PDU type": b"\x47\x00\x00\x00\x00\x10" + b"\xab" * 16,
    "HTTP request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "P-DATA before any association": b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x04\x01\x03\x00\x00",
    "A-ASSOCIATE-RQ with a garbage body": b"\x01\x00\x00\x00\x00\x40" + bytes(range(64)),
    "A-ASSOCIATE-RQ claiming 4 GB, then hang-up": b"\x01\x00\xff\xff\xff\xff" + b"A" * 4000,
}


# sent after a valid A-ASSOCIATE-RQ was accepted, in the association
GARBAGE_IN_ASSOCIATION = {
    "unknown PDU type": b"\x47\x00\x00\x00\x00\x04abcd",
    "P-DATA-TF whose item overruns the PDU": b"\x04\x00\x00\x00\x00\x0a\x00\x00\xff\xff\x01\x00abcd",
}


def _associate_rq(called: str, calling: str = "GARBAGE", sop_class: str = "1.2.840.10008.5.1.4.1.1.4") -> bytes:
    """An A-ASSOCIATE-RQ PDU, encoded by pynetdicom's own PDU classes (MR storage, explicit VR little endian)."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import A_ASSOCIATE, ImplementationClassUIDNotification, MaximumLengthNotification
    from pynetdicom.presentation import build_context

    prim = A_ASSOCIATE()
    prim.application_context_name = "1.2.840.10008.3.1.1.1"
    prim.calling_ae_title, prim.called_ae_title = calling, called
    cx = build_context(sop_class, "1.2.840.10008.1.2.1")
    cx.context_id = 1
    prim.presentation_context_definition_list = [cx]
    length, impl = MaximumLengthNotification(), ImplementationClassUIDNotification()
    length.maximum_length_received, impl.implementation_class_uid = 16382, "1.2.826.0.1.3680043.9.7433.1"
    prim.user_information = [length, impl]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(prim)
    return pdu.encode()


def send_garbage(port: int, host: str = HOST, called: str = "EDGESEG", timeout: float = 5.0) -> dict:
    """One connection per GARBAGE payload (sent, then hang up), and one per GARBAGE_IN_ASSOCIATION payload
    (sent once the association is accepted); returns how many of each were sent, and how many association
    requests were rejected instead."""
    import socket

    sent = {"before_association": 0, "in_association": 0, "rejected": 0}
    jobs = [(None, p) for p in GARBAGE.values()] + [(_associate_rq(called), p) for p in GARBAGE_IN_ASSOCIATION.values()]
    for rq, payload in jobs:
        try:
            with socket.create_connection((host, port), timeout=timeout) as s:
                if rq is not None:
                    s.sendall(rq)
                    first = s.recv(1)
                    if first != b"\x02":           # not an A-ASSOCIATE-AC: no garbage sent
                        sent["rejected"] += first == b"\x03"   # A-ASSOCIATE-RJ
                        continue
                s.sendall(payload)
                s.settimeout(0.5)
                try:
                    s.recv(64)          # an A-ABORT or nothing; either way we go
                except OSError:
                    pass
            sent["in_association" if rq is not None else "before_association"] += 1
        except OSError:
            pass
    return sent


def write_oversized(path, nbytes: int, like) -> "object":
    """A valid-looking MR image file of about `nbytes` pixel bytes, made from the header of the DICOM file
    `like` (new UIDs): the pixel data is a sparse hole, so a 200 MB file costs no time, memory or disk.
    Returns its (pixel-less) dataset."""
    import math
    import struct
    from pathlib import Path

    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(like)
    del ds.PixelData
    side = math.isqrt(max(1, nbytes // 2)) + 1
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.SamplesPerPixel = 16, 16, 15, 1
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["edgeseg-oversized", str(nbytes)])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["edgeseg-oversized-i", str(nbytes)])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    path = Path(path)
    try:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        pydicom.dcmwrite(path, ds, write_like_original=False)
    length = side * side * 2
    with open(path, "r+b") as f:    # (7FE0,0010) OW, explicit VR little endian, then a hole of `length` bytes
        f.seek(0, 2)
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))
        f.truncate(f.tell() + length)
    return ds


def store_file(port: int, path, called: str = "EDGESEG", calling: str = "BIGSCU", host: str = HOST,
               timeout: float = 30.0):
    """C-STORE one file (pynetdicom reads it in chunks: the sender's memory stays small); the status code,
    or None when the association was refused or aborted."""
    import pydicom
    from pynetdicom import AE

    head = pydicom.dcmread(path, stop_before_pixels=True)
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(head.SOPClassUID, str(head.file_meta.TransferSyntaxUID))
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        return None
    try:
        return getattr(assoc.send_c_store(str(path)), "Status", None)
    except Exception:       # the association died under the send
        return None
    finally:
        if assoc.is_established:
            assoc.release()


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
