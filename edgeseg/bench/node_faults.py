"""Fault scenarios of `edgeseg bench node`: hostile UIDs, disk full, kill -9 during A-RELEASE, a truncated
instance, a destination that refuses for good. Each counts lost (acknowledged instances no delivered SEG
references, or a SEG neither delivered nor kept in dead-letter/) and duplicated (Store requests beyond one
per SEG). The node runs in its own process; senders and the receiving peer are pynetdicom on 127.0.0.1.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from edgeseg.node.peer import StorePeer, fill_disk
from edgeseg.bench.node import HOST, SAMPLE, NodeProc, _port, _wait


def _series(tag: str, n: int = 6, **uids) -> list:
    """n slices of the sample series with fresh deterministic UIDs (and any UID overrides)."""
    from edgeseg.data.copy_series import renamed_series

    def edit(ds):
        for key, value in uids.items():
            setattr(ds, key, value)
    return renamed_series(sorted(SAMPLE.glob("*.dcm"))[::5][:n], f"bench-faults-{tag}", edit)


def _send(port: int, datasets) -> list:
    """C-STORE each dataset on one association; the status codes (None: no answer)."""
    from pynetdicom import AE

    ae = AE(ae_title="BENCHSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for ds in datasets[:1]:
        ae.add_requested_context(ds.SOPClassUID, str(ds.file_meta.TransferSyntaxUID))
    assoc = ae.associate(HOST, port, ae_title="EDGESEG")
    if not assoc.is_established:
        return [None] * len(datasets)
    codes = [getattr(assoc.send_c_store(ds), "Status", None) for ds in datasets]
    assoc.release()
    return codes


def _acked(datasets, codes) -> set:
    return {str(d.SOPInstanceUID) for d, c in zip(datasets, codes) if c == 0x0000}


def _lost(acked_per_series: list[set], peer: StorePeer) -> int:
    """Acknowledged instances that no delivered SEG references."""
    covered = set().union(*peer.references()) if peer.datasets else set()
    return sum(len(a - covered) for a in acked_per_series)


def hostile_uids(args, work: Path) -> dict:
    """Series named '..'/incoming, '..'/outbox, '..'/ready, '../..'/spool between two ordinary series."""
    peer = StorePeer().start()
    node = NodeProc(args, work, _port(), peer.port).start()
    try:
        sent = [_series("plain-a"), _series("h1", StudyInstanceUID="..", SeriesInstanceUID="incoming"),
                _series("h2", StudyInstanceUID="..", SeriesInstanceUID="outbox"),
                _series("h3", StudyInstanceUID="..", SeriesInstanceUID="ready"),
                _series("h4", StudyInstanceUID="../..", SeriesInstanceUID="spool"), _series("plain-b")]
        acked = [_acked(s, _send(node.port, s)) for s in sent]
        _wait(lambda: len(peer.datasets) >= len(sent), args.time_limit)
        time.sleep(2 * args.series_timeout)
        return {"series": len(sent), "acked": sum(map(len, acked)), "segs": len(peer.datasets),
                "lost": _lost(acked, peer), "duplicated": len(peer.received) - len(peer.datasets),
                "spool_intact": all((work / "spool" / d).is_dir() for d in ("incoming", "ready", "outbox"))}
    finally:
        node.stop()
        peer.stop()


def disk_full(args, work: Path) -> dict | None:
    """The spool's disk fills after a series was acknowledged and before it is segmented; then space returns."""
    disk = work / "tmpfs"
    disk.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        return None
    peer = StorePeer().start()
    node = NodeProc(args, work, _port(), peer.port, "--min-free-mb", "0",  # the scenario fills the disk itself
                    spool=disk / "spool").start()  # log on the ordinary disk
    try:
        series = _series("enospc")
        acked = _acked(series, _send(node.port, series))
        fillers = fill_disk(disk)
        refused = _send(node.port, _series("enospc-late", n=1))
        time.sleep(3 * args.series_timeout + 2)
        deferred = len(node.events("segment_deferred"))
        for p in fillers:
            p.unlink(missing_ok=True)
        _wait(lambda: peer.datasets, args.time_limit)
        time.sleep(1)
        return {"acked": len(acked), "refused_while_full": sum(c != 0x0000 for c in refused), "deferred": deferred,
                "failed": sum(1 for _ in (disk / "spool" / "failed").iterdir()), "lost": _lost([acked], peer),
                "duplicated": len(peer.received) - len(peer.datasets)}
    finally:
        node.stop()
        peer.stop()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def kill_during_release(args, work: Path) -> dict:
    """The peer holds back its A-RELEASE-RP; the node is killed after Success, before the release ends."""
    peer = StorePeer(release_delay=6.0).start()
    node = NodeProc(args, work, _port(), peer.port).start()
    try:
        series = _series("release")
        acked = _acked(series, _send(node.port, series))
        _wait(peer.release_requested.is_set, args.time_limit)
        node.stop(kill=True)
        node.start()
        _wait(lambda: not any((work / "spool" / "outbox").iterdir()), args.time_limit)
        time.sleep(2 + 2 * args.series_timeout)
        return {"acked": len(acked), "segs": len(peer.datasets), "lost": _lost([acked], peer),
                "duplicated": len(peer.received) - len(set(peer.received))}
    finally:
        node.stop()
        peer.stop()


def truncated(args, work: Path) -> dict:
    """One instance of six arrives with its pixel data cut short."""
    peer = StorePeer().start()
    node = NodeProc(args, work, _port(), peer.port).start()
    try:
        series = _series("truncated")
        series[3].PixelData = series[3].PixelData[: len(series[3].PixelData) // 3]
        codes = _send(node.port, series)
        acked = _acked(series, codes)
        _wait(lambda: peer.datasets, args.time_limit)
        time.sleep(2 * args.series_timeout)
        return {"sent": len(series), "refused": sum(c not in (0x0000, None) for c in codes), "acked": len(acked),
                "segs": len(peer.datasets), "lost": _lost([acked], peer),
                "duplicated": len(peer.received) - len(peer.datasets)}
    finally:
        node.stop()
        peer.stop()


def permanent_refusal(args, work: Path) -> dict:
    """The destination answers 0xA900 (data set does not match the SOP class) to every C-STORE."""
    peer = StorePeer(status=0xA900).start()
    node = NodeProc(args, work, _port(), peer.port, "--max-attempts", "50").start()
    try:
        series = _series("refused")
        _send(node.port, series)
        dead = work / "spool" / "dead-letter"
        _wait(lambda: any(dead.glob("*/seg.dcm")), args.time_limit)
        time.sleep(3)
        kept = sum(1 for _ in dead.glob("*/seg.dcm"))
        return {"attempts": len(peer.received), "dead_lettered": kept, "lost": 1 - kept,
                "duplicated": max(0, len(peer.received) - 1)}
    finally:
        node.stop()
        peer.stop()


def fan_out(args, work: Path) -> dict:
    """Two destinations: a PACS that takes the SEG, an archive that refuses it for good (0xA900)."""
    pacs, archive = StorePeer().start(), StorePeer(status=0xA900, ae_title="ARCHIVE").start()
    node = NodeProc(args, work, _port(), pacs.port, "--forward", f"ARCHIVE@{HOST}:{archive.port}").start()
    try:
        series = _series("fan-out")
        acked = _acked(series, _send(node.port, series))
        dead = work / "spool" / "dead-letter"
        _wait(lambda: pacs.datasets and any(dead.glob("*/seg.dcm")), args.time_limit)
        time.sleep(2)
        return {"acked": len(acked), "pacs": len(pacs.datasets), "archive_attempts": len(archive.received),
                "dead_lettered": sum(1 for _ in dead.glob("*/seg.dcm")), "lost": _lost([acked], pacs),
                "duplicated": len(pacs.received) - len(pacs.datasets) + max(0, len(archive.received) - 1)}
    finally:
        node.stop()
        pacs.stop()
        archive.stop()


SCENARIOS = {"hostile UIDs": hostile_uids, "disk full": disk_full, "kill -9 during A-RELEASE": kill_during_release,
             "truncated instance": truncated, "permanent refusal": permanent_refusal, "fan-out": fan_out}


def describe(name: str, r: dict | None) -> str:
    """One table row for a scenario's result."""
    if r is None:
        return f"| {name} | not run: needs root and a mountable tmpfs |"
    details = {
        "hostile UIDs": lambda: f"{r['series']} series (4 named `..`/incoming, outbox, ready, `../..`/spool), "
                                f"{r['acked']} instances acknowledged, {r['segs']} SEGs delivered, spool intact: "
                                f"{'yes' if r['spool_intact'] else 'NO'}",
        "disk full": lambda: f"{r['acked']} instances acknowledged, then the spool's tmpfs filled: "
                             f"{r['refused_while_full']} new instance not acknowledged (0xA700, or its association ended when "
                             f"the data set could not be written), {r['deferred']} segmentation "
                             f"attempts deferred, {r['failed']} series in failed/; all segmented after space returned",
        "kill -9 during A-RELEASE": lambda: f"{r['acked']} instances, {r['segs']} SEG delivered; node killed after "
                                            "Success while the peer held back A-RELEASE-RP, then restarted",
        "truncated instance": lambda: f"{r['sent']} sent, {r['refused']} refused at C-STORE (pixel data cut), "
                                      f"{r['acked']} acknowledged, {r['segs']} SEG referencing them",
        "permanent refusal": lambda: f"peer answers 0xA900: {r['attempts']} attempt, {r['dead_lettered']} SEG kept in "
                                     "dead-letter/ (with reason.json)",
        "fan-out": lambda: f"two destinations: the PACS got {r['pacs']} SEG, the archive (0xA900) {r['archive_attempts']} "
                           f"attempt and {r['dead_lettered']} dead letter of its own",
    }[name]()
    return f"| {name} | {details}; lost {r['lost']}, duplicated {r['duplicated']} |"
