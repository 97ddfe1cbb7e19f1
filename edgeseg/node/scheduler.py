"""Series completion by inactivity, then segmentation by the runner's own code path (`process_series`).

One worker thread: it promotes series with no new instance for `series_timeout` seconds to ready/,
segments each ready batch, puts the SEG in the outbox (or only in --out without --forward) and only
then removes the batch. A batch that cannot be segmented moves to failed/ with a log line; one that hit
a transient local error (disk full, no inodes, too many open files, I/O error) stays in ready/ and is
retried with back-off, so instances acknowledged before the disk filled are never left out.
"""
from __future__ import annotations

import copy
import errno
import shutil
import threading
import time
from pathlib import Path

from edgeseg.errors import os_errors
from edgeseg.node import log
from edgeseg.node.config import NodeConfig
from edgeseg.node.spool import Spool


TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN,
                    errno.EBUSY, errno.EIO, errno.EINTR}


def transient_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (its cause/context chain) when it is one that goes away by itself."""
    return next((e for e in os_errors(exc) if e.errno in TRANSIENT_ERRNOS), None)


class Scheduler(threading.Thread):
    def __init__(self, cfg: NodeConfig, spool: Spool, segmenter, stop: threading.Event):
        super().__init__(name="edgeseg-scheduler", daemon=True)
        self.cfg, self.spool, self.segmenter, self.stop = cfg, spool, segmenter, stop
        self._lock = threading.Lock()
        now = time.time()
        # after a restart, give senders a full timeout again; latency is measured from the newest file
        self._due = {key: now for key in spool.incoming_series()}
        self._last_rx = dict(spool.incoming_series())
        self._deferred: dict[str, tuple[int, float]] = {}  # ready key -> (transient failures, next try time)

    def note(self, key: str, when: float) -> None:
        """Called by the C-STORE handler after an instance is on disk."""
        with self._lock:
            self._due[key] = self._last_rx[key] = when

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.promote_due()
                for folder in self.spool.ready_series():
                    if self.stop.is_set():
                        break
                    if self._deferred.get(folder.name, (0, 0.0))[1] <= time.time():
                        self.segment_or_defer(folder)
            except Exception as exc:  # keep the node up; the spool state is unchanged and retried
                log.event("scheduler_error", level="error", reason=f"{type(exc).__name__}: {str(exc)[:200]}")
                self.stop.wait(1.0)
            self.stop.wait(0.2)

    def promote_due(self) -> None:
        now = time.time()
        for d in self.spool.incoming.iterdir():
            if not d.is_dir():
                continue
            with self._lock:
                due = self._due.setdefault(d.name, now)
            if now - due >= self.cfg.series_timeout and self.spool.promote(d.name):
                with self._lock:
                    if self._due.get(d.name) == due:
                        del self._due[d.name]
                log.event("series_complete", key=d.name, instances=sum(1 for _ in (self.spool.ready / d.name).glob("*.dcm")))

    def segment_or_defer(self, folder: Path) -> None:
        """Segment a ready batch; a transient local error leaves it in ready/ and schedules a retry."""
        try:
            self.segment(folder)
        except Exception as exc:
            cause = transient_error(exc)
            if cause is None:
                raise
            n = self._deferred.get(folder.name, (0, 0.0))[0] + 1
            delay = min(60.0, 2.0 ** (n - 1))
            self._deferred[folder.name] = (n, time.time() + delay)
            log.event("segment_deferred", level="warning", key=folder.name, attempt=n, retry_in_s=delay,
                      file=getattr(cause, "filename", None), reason=f"{cause.strerror or cause} (transient: kept "
                      "in ready/, retried)")
        else:
            self._deferred.pop(folder.name, None)

    def segment(self, folder: Path) -> None:
        from edgeseg.runtime import discover as disc
        from edgeseg.runtime.pipeline import Options, process_series

        cfg, key, t0 = self.cfg, folder.name, time.perf_counter()
        batch = self.spool.batch_id(folder)
        with self._lock:
            last_rx = self._last_rx.pop(key, None) or max(p.stat().st_mtime for p in folder.glob("*.dcm"))
        groups, skipped = disc.discover([folder])
        for s in skipped:
            log.event("instance_lost" if s.failed else "skipped_instance", level="warning", key=key,
                      file=s.path.name, reason=s.reason)
        if len(groups) != 1:
            self._fail(folder, f"{len(groups)} series in one spool folder" if groups else "no readable image")
            return
        seg = copy.copy(self.segmenter)   # same session; the batch joins the UID entropy (late instances)
        seg.model_id = f"{self.segmenter.model_id}|{batch}"
        opts = Options(provider=cfg.provider, threads=cfg.threads, overlay=cfg.out is not None)
        out_root = cfg.out or self.spool.work
        lost = [f"{s.path.name} ({s.reason})" for s in skipped if s.failed]
        notes = [f"{len(lost)} received instance(s) could not be read and are not in the result: {'; '.join(lost)}"] \
            if lost else []
        try:
            row = process_series(seg, groups[0], Path(out_root), opts, notes=notes)
        except Exception as exc:
            if transient_error(exc) is not None:
                raise  # disk full and the like: retried by segment_or_defer, the batch stays in ready/
            self._fail(folder, f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        seg_file = Path(row.out) / "seg.dcm"
        entry, seg_uid = None, _sop_uid(seg_file)
        if cfg.forward:
            meta = {"key": key, "batch": batch, "series_uid": groups[0].series_uid, "study_uid": groups[0].study_uid,
                    "seg_uid": seg_uid, "instances": len(groups[0].instances), "last_rx": last_rx,
                    "segmented_at": time.time(), "destinations": [str(d) for d in cfg.forward]}
            entry = self.spool.outbox_put(seg_file, seg_uid, meta)
        if cfg.out is None:
            shutil.rmtree(row.out, ignore_errors=True)
            try:
                Path(row.out).parent.rmdir()  # the study folder, when this was its last series
            except OSError:
                pass
        self.spool.discard(folder)
        if entry is not None:
            self.spool.release(entry)
        log.event("segmented", series=groups[0].series_uid, instances=len(groups[0].instances), seg_uid=seg_uid,
                  lost_instances=len(lost), warnings=row.reason or None,
                  seconds=round(time.perf_counter() - t0, 3), out=row.out if cfg.out else None,
                  latency_s=None if entry else round(time.time() - last_rx, 3))

    def _fail(self, folder: Path, reason: str) -> None:
        dst = self.spool.fail(folder)
        log.event("segment_failed", level="error", key=folder.name, kept=dst.name, reason=reason)


def _sop_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
