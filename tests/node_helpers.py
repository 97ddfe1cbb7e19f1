"""Helpers for the DICOM node tests: free loopback ports, DCMTK peers, bounded waits (127.0.0.1 only)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeseg.node.peer import dcmtk

HOST = "127.0.0.1"
TOOLS = {t: dcmtk(t) for t in ("echoscu", "storescu", "storescp")}  # DCMTK's, not pynetdicom's same-named apps
DCMTK = all(TOOLS.values())
needs_dcmtk = pytest.mark.skipif(not DCMTK, reason="DCMTK (echoscu/storescu/storescp) not installed: apt-get install dcmtk")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def published_segs(out: Path) -> list[Path] | None:
    """seg.dcm files published under `out`, none from a result folder still being written (its name starts with
    a dot: the runner writes to a temp name, then renames); None while a folder is renamed under the walk."""
    out = Path(out)
    try:
        return [p for p in out.rglob("seg.dcm") if not any(part.startswith(".") for part in p.relative_to(out).parts)]
    except FileNotFoundError:
        return None


class StoreSCP:
    """A DCMTK storescp receiving forwarded results into `folder`; counts Store requests from its log."""

    def __init__(self, folder: Path, port: int, ae: str = "FWD"):
        self.folder, self.port, self.ae = Path(folder), port, ae
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = self.folder.parent / f"storescp-{port}.log"
        self.proc = None

    def start(self) -> "StoreSCP":
        self.proc = subprocess.Popen([TOOLS["storescp"], "-v", "-aet", self.ae, "-od", str(self.folder), "-ta", "5",
                                      "-ts", "10", str(self.port)], stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        assert wait_for(lambda: echo(self.port, self.ae), 10), "storescp did not start"
        return self

    def received(self) -> int:
        return self.log.read_text(errors="replace").count("Received Store Request") if self.log.exists() else 0

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def echo(port: int, called: str, calling: str = "ECHOSCU") -> bool:
    r = subprocess.run([TOOLS["echoscu"], "-to", "2", "-ta", "2", "-aet", calling, "-aec", called, HOST, str(port)],
                       capture_output=True, timeout=10)
    return r.returncode == 0


def storescu(port: int, files, called: str = "EDGESEG", calling: str = "STORESCU", timeout: float = 60):
    return subprocess.run([TOOLS["storescu"], "-to", "5", "-ta", "5", "-aet", calling, "-aec", called, HOST, str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=timeout)


def node_process(model: Path, spool: Path, port: int, *extra, log: Path) -> subprocess.Popen:
    """`edgeseg serve` in its own process (so it can be killed with SIGKILL), listening on loopback."""
    cmd = [sys.executable, "-m", "edgeseg", "serve", str(model), "--bind", HOST, "--port", str(port),
           "--spool", str(spool), "--threads", "1", *map(str, extra)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env=env, cwd=REPO)


def kill9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def seg_references(path: Path) -> set[str]:
    """SOP Instance UIDs a DICOM SEG references (ReferencedSeriesSequence)."""
    import pydicom

    ds = pydicom.dcmread(path)
    return {str(i.ReferencedSOPInstanceUID) for s in ds.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}


def spool_files(spool: Path, state: str) -> list[Path]:
    return sorted(p for p in (spool / state).rglob("*") if p.is_file())
