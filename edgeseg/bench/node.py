"""DICOM node under load and faults: concurrent storescu senders, forward peer down then up, kill -9 mid-series.

Everything on 127.0.0.1 with DCMTK peers (storescu sends, storescp receives the SEGs) and `edgeseg serve`
in its own process; every wait is bounded. Latency is last instance received -> SEG acknowledged by the
peer, from the node's JSON log. Lost: a series whose SEG never arrived (or, after the kill, an
acknowledged instance the SEG does not reference); duplicated: Store requests beyond one per SEG.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgeseg.bench.report import machine_line, write_section
from edgeseg.node.peer import dcmtk

HOST = "127.0.0.1"
SAMPLE = Path("data/sample-mr-brain")


def add_arguments(p) -> None:
    p.add_argument("--model", default="export/unet-s2-brain-nano/unet-s2-brain-nano.int8.onnx")
    p.add_argument("--series", type=int, default=20, help="series pushed in the load scenario (default 20)")
    p.add_argument("--senders", type=int, default=4, help="concurrent storescu processes (default 4)")
    p.add_argument("--series-timeout", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1, help="inference threads of the node")
    p.add_argument("--down-s", type=float, default=8.0, help="how long the forward peer stays down")
    p.add_argument("--time-limit", type=float, default=300.0, help="give up a scenario after this many seconds")
    p.add_argument("--out", default="runs/bench-node")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")
    p.add_argument("--only", choices=["chaos"], help="run only the chaos scenarios (issue #20; a few minutes less) "
                   "and write their own section")




def _port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait(pred, limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return bool(pred())


def _echo(port: int, ae: str) -> bool:
    """One C-ECHO (the node's own health check, pynetdicom): the chaos scenarios need no DCMTK."""
    from edgeseg.node.health import echo

    return echo(HOST, port, ae, timeout=2)[0]


def _make_series(src: Path, n: int) -> list[tuple[Path, str, set]]:
    """n copies of the sample series with fresh deterministic series/instance UIDs: (folder, series, sops)."""
    import pydicom

    from edgeseg.data.copy_series import write_series_copy

    out = []
    for i in range(n):
        paths = write_series_copy(sorted(SAMPLE.glob("*.dcm")), src / f"s{i:02d}", f"bench-node-{i}")
        heads = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
        out.append((src / f"s{i:02d}", str(heads[0].SeriesInstanceUID), {str(h.SOPInstanceUID) for h in heads}))
    return out


class Peer:
    """storescp receiving the SEGs."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port, self.proc = folder, port, None
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder.parent / f"{folder.name}.log"

    def start(self, limit: float = 20) -> "Peer":
        self.proc = subprocess.Popen([dcmtk("storescp"), "-v", "-aet", "FWD", "-od", str(self.folder), str(self.port)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        _wait(lambda: _echo(self.port, "FWD"), limit)
        return self

    def stores(self) -> int:
        return self.log.read_text(errors="replace").count("Received Store Request") if self.log.exists() else 0

    def refs(self) -> dict[str, set]:
        """SEG SOP UID -> referenced source SOP UIDs, for every SEG received."""
        import pydicom

        out = {}
        for p in self.folder.iterdir():
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            out[str(ds.SOPInstanceUID)] = {str(i.ReferencedSOPInstanceUID) for s in ds.ReferencedSeriesSequence
                                           for i in s.ReferencedInstanceSequence}
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class NodeProc:
    """`edgeseg serve` in its own process. Its memory (/proc/PID/status) is read when it has started (idle RSS)
    and before every stop (peak RSS over all its runs); `NodeProc.made` lists every node, for the table."""
    made: list = []

    def __init__(self, args, work: Path, port: int, forward_port: int, *extra, spool: Path | None = None,
                 host: str = HOST):
        work.mkdir(parents=True, exist_ok=True)
        self.port, self.log = port, work / "node.log"
        self.cmd = [sys.executable, "-m", "edgeseg", "serve", args.model, "--bind", HOST, "--port", str(port),
                    "--spool", str(spool or work / "spool"), "--forward", f"FWD@{host}:{forward_port}", "--series-timeout",
                    str(args.series_timeout), "--threads", str(args.threads), *map(str, extra)]
        self.proc = None
        self.idle_mb = self.peak_mb = None
        NodeProc.made.append(self)

    def start(self, limit: float = 60) -> "NodeProc":
        from edgeseg.node.memory import memory

        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        if not _wait(lambda: self.proc.poll() is not None or _echo(self.port, "EDGESEG"), limit) or self.proc.poll():
            raise RuntimeError(f"node did not start: {self.log.read_text()[-800:]}")
        if self.idle_mb is None:
            self.idle_mb = memory(self.proc.pid)["rss_mb"]
        return self

    def memory(self) -> dict:
        from edgeseg.node.memory import memory

        return memory(self.proc.pid) if self.proc and self.proc.poll() is None else {"rss_mb": None, "peak_mb": None}

    def _note_peak(self) -> None:
        peak = self.memory()["peak_mb"]
        if peak is not None:
            self.peak_mb = max(self.peak_mb or 0.0, peak)

    def events(self, name: str) -> list[dict]:
        rows = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                rec = json.loads(line)
                if rec.get("event") == name:
                    rows.append(rec)
        return rows

    def stop(self, kill: bool = False) -> None:
        self._note_peak()
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(30)


def _pct(values, q):
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def load(args, work: Path, series) -> dict:
    peer = Peer(work / "rx", _port()).start()
    node = NodeProc(args, work, _port(), peer.port).start()
    try:
        t0 = time.time()

        def push(item):
            r = subprocess.run([dcmtk("storescu"), "-aec", "EDGESEG", HOST, str(node.port), *map(str, sorted(item[0].glob("*.dcm")))],
                               capture_output=True, timeout=args.time_limit)
            return r.returncode
        with ThreadPoolExecutor(args.senders) as pool:
            codes = list(pool.map(push, series))
        _wait(lambda: len(node.events("forwarded")) >= len(series), args.time_limit)
        fwd = node.events("forwarded")
        total = (max(e["ts"] for e in fwd) - t0) if fwd else float("nan")
        time.sleep(2 * args.series_timeout)  # anything late would be a duplicate
        refs = peer.refs()
        delivered = {sid for _, sid, sops in series if any(r == sops for r in refs.values())}
        lat = [e["latency_s"] for e in fwd]
        return {"series": len(series), "instances": sum(len(s[2]) for s in series), "senders": args.senders,
                "storescu_failed": sum(c != 0 for c in codes), "total_s": total, "p50": _pct(lat, 50),
                "p95": _pct(lat, 95), "lost": len(series) - len(delivered), "duplicated": peer.stores() - len(refs)}
    finally:
        node.stop()
        peer.stop()


def down_up(args, work: Path, series) -> dict:
    port = _port()
    node = NodeProc(args, work, _port(), port, "--retry-max", "2").start()
    peer = Peer(work / "rx", port)
    try:
        for folder, _, _ in series:
            subprocess.run([dcmtk("storescu"), "-aec", "EDGESEG", HOST, str(node.port), *map(str, sorted(folder.glob("*.dcm")))],
                           capture_output=True, timeout=args.time_limit)
        time.sleep(args.down_s)
        t_up = time.time()
        peer.start()
        _wait(lambda: len(node.events("forwarded")) >= len(series), args.time_limit)
        fwd = node.events("forwarded")
        time.sleep(2)
        refs = peer.refs()
        delivered = sum(any(r == sops for r in refs.values()) for _, _, sops in series)
        return {"series": len(series), "down_s": args.down_s, "failed_attempts": len(node.events("forward_failed")),
                "up_to_all_s": (max(e["ts"] for e in fwd) - t_up) if fwd else float("nan"),
                "lost": len(series) - delivered, "duplicated": peer.stores() - len(refs)}
    finally:
        node.stop()
        peer.stop()


def kill_mid_series(args, work: Path, item, after: int = 12) -> dict:
    import pydicom
    from pynetdicom import AE

    peer = Peer(work / "rx", _port()).start()
    node = NodeProc(args, work, _port(), peer.port).start()
    acked = set()
    try:
        ae = AE(ae_title="BENCHSCU")
        files = sorted(item[0].glob("*.dcm"))
        ds0 = pydicom.dcmread(files[0])
        ae.add_requested_context(ds0.SOPClassUID, str(ds0.file_meta.TransferSyntaxUID))
        assoc = ae.associate(HOST, node.port, ae_title="EDGESEG")
        for i, f in enumerate(files):
            if i == after:
                node.stop(kill=True)           # SIGKILL in the middle of the association
            try:
                status = assoc.send_c_store(pydicom.dcmread(f)) if assoc.is_established else None
            except RuntimeError:  # the association died between the check and the send
                status = None
            if getattr(status, "Status", None) == 0x0000:
                acked.add(str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID))
        if assoc.is_established:
            assoc.abort()
        spooled = sum(1 for _ in (work / "spool" / "incoming").rglob("*.dcm"))
        node.start()
        _wait(lambda: node.events("forwarded"), args.time_limit)
        time.sleep(2 * args.series_timeout)
        refs = peer.refs()
        covered = set().union(*refs.values()) if refs else set()
        return {"acked": len(acked), "spooled_after_kill": spooled, "lost": len(acked - covered),
                "segs": len(refs), "duplicated": peer.stores() - len(refs)}
    finally:
        node.stop()
        peer.stop()


def _measured(fn, *a):
    """Run one scenario; its result gains `rss`: the node's idle RSS (just started) and peak RSS (all its
    runs) in MB, over every node the scenario started."""
    n0 = len(NodeProc.made)
    r = fn(*a)
    nodes = NodeProc.made[n0:]
    if r is not None:
        idle = [n.idle_mb for n in nodes if n.idle_mb is not None]
        peak = [n.peak_mb for n in nodes if n.peak_mb is not None]
        r["rss"] = f"{min(idle):.0f} / {max(peak):.0f}" if idle and peak else "n/a"
    return r


def work_folder(root: Path, name: str) -> Path:
    """A scenario's own folder under `root`: its name in lower case, every run of other characters one '-'
    (distinct names give distinct folders: no scenario starts in another's spool)."""
    return root / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _scenarios(args, root: Path, scenarios: dict) -> dict:
    results = {}
    for name, scenario in scenarios.items():
        results[name] = _measured(scenario, args, work_folder(root, name))
        print(f"{name}:", results[name], file=sys.stderr)
    return results


def _chaos(args, root: Path) -> tuple[dict, str]:
    from edgeseg.bench.node_chaos import SCENARIOS, describe

    results = _scenarios(args, root, SCENARIOS)
    return results, "\n".join(_with_rss(describe(n, r), r) for n, r in results.items())


def _with_rss(row: str, r: dict | None) -> str:
    return f"{row} {r.get('rss', 'n/a') if r else 'n/a'} |"


def _ok(results) -> bool:
    return all(r is None or r["lost"] == r["duplicated"] == 0 for r in results)


RSS_NOTE = ("Node RSS: resident memory of the `edgeseg serve` process (/proc/PID/status) just after it started "
            "(idle) and its peak (VmHWM) over the scenario, in MB.")


def _chaos_section(cmd: str, model: str, rows: str, load_avg: float) -> str:
    return f"""## DICOM node: chaos (`edgeseg serve`, issue #20)

`{cmd}` — the node in its own process, model `{Path(model).name}`, pynetdicom senders and peers on
127.0.0.1 (edgeseg/bench/node_chaos.py); series of 6 MR slices (4 in the 20-sender scenario).

| scenario | result | node RSS idle / peak (MB) |
|---|---|---|
{rows}

{RSS_NOTE} Lost: acknowledged instances no delivered SEG references; duplicated: Store requests beyond one per
SEG (beyond two after a kill before the peer's Success reached the node, where the same SEG is resent).

{machine_line()} 1-minute load average when the bench started: {load_avg:.1f} (other work on the machine counts).
"""


def run(args) -> int:
    """The whole bench writes two sections, `node` (load and faults) and `node-chaos` (one table each: no
    scenario shown twice); `--only chaos` runs and writes the second alone."""
    if args.only != "chaos" and not all(dcmtk(t) for t in ("storescu", "storescp", "echoscu")):
        print("bench node: needs DCMTK (storescu, storescp, echoscu): apt-get install dcmtk", file=sys.stderr)
        return 2
    load_avg = os.getloadavg()[0]
    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    if args.only == "chaos":
        chaos, rows = _chaos(args, root)
        cmd = (f"edgeseg bench node --only chaos --model {args.model} --series-timeout {args.series_timeout:g} "
               f"--threads {args.threads}")
        md = _chaos_section(cmd, args.model, rows, load_avg)
        write_section("node-chaos", md, args.docs)
        print(md)
        return 0 if _ok(chaos.values()) else 1
    series = _make_series(root / "src", args.series)
    a = _measured(load, args, root / "load", series)
    print("load:", a, file=sys.stderr)
    b = _measured(down_up, args, root / "down-up", series[:3])
    print("down-up:", b, file=sys.stderr)
    c = _measured(kill_mid_series, args, root / "kill", series[0])
    print("kill:", c, file=sys.stderr)
    from edgeseg.bench.node_faults import SCENARIOS, describe

    faults = _scenarios(args, root, SCENARIOS)
    chaos, chaos_rows = _chaos(args, root / "chaos")
    cmd = (f"edgeseg bench node --model {args.model} --series {args.series} --senders {args.senders} "
           f"--series-timeout {args.series_timeout:g} --threads {args.threads} --down-s {args.down_s:g}")
    md = f"""## DICOM node: load and faults (`edgeseg serve`)

`{cmd}` — everything on 127.0.0.1, DCMTK `storescu` senders and a `storescp` receiving the SEGs,
the node in its own process (`--threads {args.threads}`), model `{Path(args.model).name}`, series of {len(series[0][2])} MR slices.

| scenario | result | node RSS idle / peak (MB) |
|---|---|---|
| {a['series']} series ({a['instances']} instances) from {a['senders']} concurrent storescu | total {a['total_s']:.1f} s (first send to last SEG acknowledged); last instance -> SEG forwarded p50 {a['p50']:.2f} s, p95 {a['p95']:.2f} s (includes the {args.series_timeout:g} s series timeout); lost {a['lost']}, duplicated {a['duplicated']}, storescu failures {a['storescu_failed']} | {a['rss']} |
| forward peer down {b['down_s']:g} s, then up ({b['series']} series) | {b['failed_attempts']} failed attempts while down; all delivered {b['up_to_all_s']:.1f} s after the peer came up; lost {b['lost']}, duplicated {b['duplicated']} | {b['rss']} |
| kill -9 after {c['acked']} acknowledged instances, restart | {c['spooled_after_kill']} instances in the spool after the kill; {c['segs']} SEG after restart; acknowledged instances missing from it: {c['lost']}; duplicated {c['duplicated']} | {c['rss']} |
{chr(10).join(_with_rss(describe(name, r), r) for name, r in faults.items())}

Fault scenarios (edgeseg/bench/node_faults.py) use pynetdicom senders and a pynetdicom peer that misbehaves on
purpose; series of 6 slices. This run's chaos scenarios are in their own table ("DICOM node: chaos").
Lost: acknowledged instances no delivered SEG references (or a refused SEG not kept in dead-letter/);
duplicated: Store requests beyond one per SEG.
{RSS_NOTE}

{machine_line()} 1-minute load average when the bench started: {load_avg:.1f} (other work on the machine counts).
"""
    write_section("node", md, args.docs)
    write_section("node-chaos", _chaos_section(cmd, args.model, chaos_rows, load_avg), args.docs)
    print(md)
    ok = a["lost"] == a["duplicated"] == b["lost"] == b["duplicated"] == c["lost"] == c["duplicated"] == 0
    return 0 if ok and _ok(faults.values()) and _ok(chaos.values()) else 1
