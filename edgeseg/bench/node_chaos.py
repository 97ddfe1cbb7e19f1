"""Chaos scenarios of `edgeseg bench node` (issue #20): a data set 200 MB over the node's cap (within the spool
quota: refused 0xA700; over it: aborted), the largest data set the default cap allows (peak RSS), 20 concurrent
senders with one sending garbage PDUs, a forward peer that accepts and then drops the association in the
middle of the data set, kill -9 while forwarding over TLS (at the C-STORE and at the A-RELEASE). Lost and
duplicated are counted as in node_faults.py; each row also gets the node's idle and peak RSS (bench/node.py).
The node runs in its own process; senders and peers are pynetdicom on 127.0.0.1.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

from edgeseg.bench.node import SAMPLE, NodeProc, _port, _wait
from edgeseg.bench.node_faults import _acked, _lost, _send, _series
from edgeseg.node.config import NodeConfig
from edgeseg.node.memory import reset_peak
from edgeseg.node.peer import GARBAGE, StorePeer, send_garbage, store_file, write_oversized

MB = 1024 * 1024
CAP_MB = 16
QUOTA_MB = 64
DEFAULT_CAP_MB = NodeConfig.max_dataset_mb
LARGEST_MB = int(DEFAULT_CAP_MB) - 1   # pixel bytes of the largest-allowed scenario's data set: just under the cap


def over_the_cap(args, work: Path, quota_mb: float = 0) -> dict:
    """--max-dataset-mb 16; one sender pushes a data set of 216 MB while another sends an ordinary series. With the
    spool quota's default it is received to disk and answered 0xA700; with `quota_mb` (64) it is aborted once
    receiving more would pass the quota."""
    peer = StorePeer().start()
    quota = ("--spool-quota-mb", quota_mb) if quota_mb else ()
    node = NodeProc(args, work, _port(), peer.port, "--max-dataset-mb", CAP_MB, *quota).start()
    try:
        big = work / "big.dcm"
        write_oversized(big, (CAP_MB + 200) * MB, next(SAMPLE.glob("*.dcm")))   # sparse: costs nothing to make
        warm = _series("cap-warm")
        _acked(warm, _send(node.port, warm))
        _wait(lambda: peer.datasets, args.time_limit)               # the model has run once: warm
        idle = node.memory()["rss_mb"]
        reset = reset_peak(node.proc.pid)
        other, got = _series(f"cap-other-{quota_mb:g}"), {}
        t = threading.Thread(target=lambda: got.update(codes=_send(node.port, other)))
        t.start()
        t0 = time.monotonic()
        status = store_file(node.port, big, timeout=args.time_limit)
        big_s = time.monotonic() - t0
        receiving = work / "spool" / "receiving"
        left_at_answer = sum(1 for _ in receiving.glob("*"))
        t.join(args.time_limit)
        acked = _acked(other, got.get("codes", []))
        _wait(lambda: len(peer.datasets) >= 2, args.time_limit)
        peak = node.memory()["peak_mb"]
        _wait(lambda: not any(receiving.glob("*")), 15)
        aborted = node.events("receive_aborted")
        return {"quota_mb": quota_mb, "status": status, "big_s": big_s, "aborted": len(aborted),
                "aborted_mb": aborted[0]["bytes"] / MB if aborted else None,
                "refused": len(node.events("dataset_refused")), "left_at_answer": left_at_answer,
                "acked": len(acked), "segs": len(peer.datasets) - 1, "idle_warm_mb": idle,
                "peak_above_idle_mb": (peak - idle) if reset and peak and idle else None,
                "left_in_receiving": sum(1 for _ in receiving.glob("*")),
                "lost": _lost([acked], peer) + (status == 0x0000), "duplicated": len(peer.received) - len(peer.datasets)}
    finally:
        node.stop()
        peer.stop()


def over_the_quota(args, work: Path) -> dict:
    return over_the_cap(args, work, quota_mb=QUOTA_MB)


def largest_allowed(args, work: Path) -> dict:
    """The default --max-dataset-mb (512): one data set of 511 MB of pixel data, received, decoded and acknowledged;
    the node's peak RSS against the target 2 x (idle + 512 MB). Not segmented (a series timeout of an hour: the
    figure is for receiving and decoding, what the node does before it answers)."""
    peer = StorePeer().start()
    node = NodeProc(args, work, _port(), peer.port, "--series-timeout", 3600).start()
    try:
        big = work / "largest.dcm"
        write_oversized(big, LARGEST_MB * MB, next(SAMPLE.glob("*.dcm")))
        idle = node.idle_mb
        reset = reset_peak(node.proc.pid)
        t0 = time.monotonic()
        status = store_file(node.port, big, timeout=args.time_limit)
        took = time.monotonic() - t0
        peak = node.memory()["peak_mb"]
        bound = 2 * (idle + DEFAULT_CAP_MB)
        kept = sum(1 for _ in (work / "spool" / "incoming").rglob("*.dcm"))    # acknowledged means on disk
        return {"status": status, "file_mb": big.stat().st_size / MB, "took_s": took, "idle_mb": idle,
                "peak_mb": peak if reset else None, "bound_mb": bound, "met": bool(reset and peak and peak <= bound),
                "lost": int(status == 0x0000 and kept != 1), "duplicated": 0}
    finally:
        node.stop()
        peer.stop()
        shutil.rmtree(work / "spool", ignore_errors=True)   # half a gigabyte acknowledged into incoming/
        (work / "largest.dcm").unlink(missing_ok=True)


def garbage_among_twenty(args, work: Path) -> dict:
    """20 concurrent senders: 19 send a series each on their own association, one sends garbage PDUs."""
    peer = StorePeer().start()
    node = NodeProc(args, work, _port(), peer.port, "--max-associations", 24).start()
    try:
        series = [_series(f"twenty-{i}", n=4) for i in range(19)]
        codes, garbage = {}, {}
        threads = [threading.Thread(target=lambda i=i: codes.update({i: _send(node.port, series[i])})) for i in range(19)]
        threads.append(threading.Thread(target=lambda: garbage.update(sent=send_garbage(node.port))))
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.time_limit)
        acked = [_acked(s, codes.get(i, [])) for i, s in enumerate(series)]
        _wait(lambda: len(peer.datasets) >= 19, args.time_limit)
        _wait(lambda: len(node.events("connection_dropped")) >= len(GARBAGE), 15)
        aborted = [e for e in node.events("association_aborted") if e.get("calling_ae") == "GARBAGE"]
        time.sleep(2 * args.series_timeout)
        return {"acked": sum(map(len, acked)), "sent": 4 * 19, "segs": len(peer.datasets),
                "garbage": garbage.get("sent", {}), "dropped": len(node.events("connection_dropped")),
                "garbage_aborted": len(aborted),
                "lost": _lost(acked, peer), "duplicated": len(peer.received) - len(peer.datasets)}
    finally:
        node.stop()
        peer.stop()


def peer_drops(args, work: Path) -> dict:
    """The forward peer accepts the association, then aborts it as the SEG's data set arrives (twice)."""
    peer = StorePeer(drop_first=2).start()
    node = NodeProc(args, work, _port(), peer.port, "--retry-max", 2).start()
    try:
        series = _series("drops")
        acked = _acked(series, _send(node.port, series))
        _wait(lambda: peer.datasets, args.time_limit)
        time.sleep(2 + 2 * args.series_timeout)
        return {"acked": len(acked), "drops": peer.dropped, "failed_attempts": len(node.events("forward_failed")),
                "segs": len(peer.datasets), "lost": _lost([acked], peer),
                "duplicated": len(peer.received) - len(peer.datasets)}
    finally:
        node.stop()
        peer.stop()


def throwaway_pki(folder: Path) -> Path | None:
    """A throw-away CA and a server certificate for localhost/127.0.0.1 (openssl); None without openssl."""
    if not shutil.which("openssl"):
        return None
    folder.mkdir(parents=True, exist_ok=True)

    def ssl(*a):
        subprocess.run(["openssl", *a], cwd=folder, check=True, capture_output=True, timeout=60)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=edgeseg bench CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server")
    (folder / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "server.pem", "-days", "2", "-extfile", "server.ext")
    return folder


def kill_tls(args, work: Path) -> dict | None:
    """Forwarding over TLS: the node is killed while the peer holds back its C-STORE answer (no Success yet: one
    resend of the same SEG is what the markers allow), then while it holds back A-RELEASE-RP (no resend)."""
    from edgeseg.node.tls import server_context

    pki = throwaway_pki(work / "pki")
    if pki is None:
        return None
    out = {"lost": 0, "duplicated": 0}
    for moment in ("store", "release"):
        ctx = server_context(pki / "server.pem", pki / "server.key")
        peer = StorePeer(ssl_context=ctx, store_delay=6.0 if moment == "store" else 0.0,
                         release_delay=6.0 if moment == "release" else 0.0).start()
        node = NodeProc(args, work / moment, _port(), peer.port, "--forward-tls", "--forward-ca", pki / "ca.pem",
                        host="localhost").start()
        try:
            series = _series(f"tls-{moment}")
            acked = _acked(series, _send(node.port, series))
            _wait((peer.store_requested if moment == "store" else peer.release_requested).is_set, args.time_limit)
            node.stop(kill=True)
            node.start()
            _wait(lambda: not any((work / moment / "spool" / "outbox").iterdir()), args.time_limit)
            time.sleep(2 + 2 * args.series_timeout)
            allowed = 2 if moment == "store" else 1          # Store requests of the one SEG the markers allow
            out[f"{moment}_requests"] = len(peer.received)
            out["lost"] += _lost([acked], peer)
            out["duplicated"] += max(0, len(peer.received) - allowed) + (len(set(peer.received)) - 1)
        finally:
            node.stop()
            peer.stop()
    return out


SCENARIOS = {"200 MB over the cap": over_the_cap, "200 MB over the cap, over the quota": over_the_quota,
             "largest allowed data set": largest_allowed, "20 senders, one sending garbage": garbage_among_twenty,
             "peer accepts then drops": peer_drops, "kill -9 while forwarding over TLS": kill_tls}


def _status(code) -> str:
    return "none" if code is None else f"0x{code:04X}"


def _common(r: dict) -> str:
    peak = (f"{r['peak_above_idle_mb']:.0f} MB above the warm idle {r['idle_warm_mb']:.0f} MB"
            if r['peak_above_idle_mb'] is not None else "not measurable here")
    return (f"the other sender: {r['acked']} of 6 acknowledged, {r['segs']} SEG; peak RSS {peak} (bound: cap + 100 MB); "
            f"files left in receiving/: {r['left_in_receiving']}")


def describe(name: str, r: dict | None) -> str:
    if r is None:
        return f"| {name} | not run: needs openssl |"
    details = {
        "200 MB over the cap": lambda: (
            f"--max-dataset-mb {CAP_MB}, a {CAP_MB + 200} MB data set within the spool quota: received to disk and "
            f"answered {_status(r['status'])} after {r['big_s']:.1f} s ({r['refused']} `dataset_refused` line, "
            f"{r['aborted']} aborted; files in receiving/ at the answer: {r['left_at_answer']}); " + _common(r)),
        "200 MB over the cap, over the quota": lambda: (
            f"--max-dataset-mb {CAP_MB} --spool-quota-mb {r['quota_mb']:g}, a {CAP_MB + 200} MB data set: association "
            f"aborted (A-ABORT) after {r['big_s']:.1f} s at " + (f"{r['aborted_mb']:.1f} MB" if r['aborted_mb'] else "?")
            + f" ({r['aborted']} `receive_aborted` line; C-STORE status {_status(r['status'])}: the request carries no "
            "size, a status can only follow the whole data set, docs/node.md); " + _common(r)),
        "largest allowed data set": lambda: (
            f"default --max-dataset-mb {DEFAULT_CAP_MB:g}, a {r['file_mb']:.0f} MB data set ({LARGEST_MB} MB of pixel "
            f"data): answered {_status(r['status'])} after {r['took_s']:.1f} s (received to disk, read and decoded "
            f"before the answer; not segmented); peak RSS " + (f"{r['peak_mb']:.0f} MB" if r['peak_mb'] else "n/a")
            + f" vs the target 2 x (idle {r['idle_mb']:.0f} + {DEFAULT_CAP_MB:g}) = {r['bound_mb']:.0f} MB: "
            + ("met" if r['met'] else "NOT met")),
        "20 senders, one sending garbage": lambda: (
            f"{r['acked']} of {r['sent']} instances acknowledged, {r['segs']} SEGs for the 19 series (more when a "
            f"series' instances arrive over --series-timeout apart: one SEG per batch); garbage: "
            f"{r['garbage'].get('before_association', 0)} connections before any association "
            f"({r['dropped']} `connection_dropped` lines), {r['garbage'].get('in_association', 0)} inside an accepted "
            f"association ({r['garbage_aborted']} aborted by the node, `association_aborted`), "
            f"{r['garbage'].get('rejected', 0)} garbage association requests rejected (A-ASSOCIATE-RJ, none sent)"),
        "peer accepts then drops": lambda: (
            f"{r['drops']} associations aborted by the peer mid-data-set, {r['failed_attempts']} failed attempts "
            f"retried, {r['segs']} SEG delivered"),
        "kill -9 while forwarding over TLS": lambda: (
            f"killed while the peer held back its C-STORE answer: {r['store_requests']} Store requests of the same SEG "
            f"(no Success reached the node: one resend allowed); killed during A-RELEASE: {r['release_requests']}"),
    }[name]()
    return f"| {name} | {details}; lost {r['lost']}, duplicated {r['duplicated']} |"
