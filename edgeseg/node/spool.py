"""The spool: every acknowledged instance and every unsent result lives here, on disk, until done.

Layout (each step is one atomic rename, so a crash at any point leaves a state the restart resumes):

    receiving/                    data sets being received (pynetdicom writes them here, see node/receive.py);
                                  never acknowledged: emptied at start, an aborted one swept within seconds
    incoming/<series>/<sop>.dcm   received, acknowledged (written tmp + fsync + rename before the ack)
    ready/<series>/               complete (no instance for --series-timeout); waits for segmentation
    outbox/<seg-uid>/seg.dcm      the SEG (+ meta.json), waiting to be forwarded; `pending` while its
                                  ready/ folder still exists, `sent` once the peer acknowledged it
    failed/<series>-<time>/       a series that cannot be segmented (kept, never deleted)
    dead-letter/<seg-uid>-<dest>/ a copy of a result one destination refused for good, or after
                                  --max-attempts tries (seg.dcm, meta.json, reason.json); the outbox
                                  entry goes once every destination has it (`sent-<dest>`) or gave up
                                  on it (`dead-<dest>`); `--requeue-dead-letters`
    trash/                        finished folders, renamed here in one step before being deleted

Names come from `safe_name`: a UID made of digits and dots is used as is, anything else becomes a
hash, so no UID or tag value can name a path outside the spool.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from edgeseg.io import atomic_write, fsync_dir
from edgeseg.node.config import dest_key
from edgeseg.safe_paths import safe_name


def move_durably(src: Path, dst: Path) -> Path:
    """fsync `src`, rename it to `dst`, fsync the folder; across file systems a copy to a `.rx-` temporary
    (what recover() drops) and a rename. All or nothing either way."""
    with open(src, "rb") as f:
        os.fsync(f.fileno())
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        write_atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
        src.unlink(missing_ok=True)
    fsync_dir(dst.parent)
    return dst


def write_atomic(path: Path, data: bytes) -> Path:
    """tmp file in the same folder, fsync, rename, fsync the folder: all or nothing, durable. (The `.rx-`
    prefix is what recover() drops after a crash.)"""
    return atomic_write(path, data, durable=True, prefix=".rx-")


def over_dataset_cap(nbytes: int, cfg) -> str:
    """Why a data set of `nbytes` is over --max-dataset-mb ('' when it is not, or there is no cap)."""
    mb = 1024 * 1024
    if cfg.max_dataset_mb and nbytes > cfg.max_dataset_mb * mb:
        return f"data set of {nbytes / mb:.1f} MB over --max-dataset-mb {cfg.max_dataset_mb:g}"
    return ""


class Spool:
    STATES = ("receiving", "incoming", "ready", "outbox", "failed", "work", "trash")

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        for name in (*self.STATES, "dead-letter"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._writing: Counter = Counter()  # series key -> instances being written now
        self._usage = (0.0, 0, 0)           # (time of the last walk, bytes then, of them in receiving/)
        self._stored_since = 0

    def __getattr__(self, name):  # spool.incoming, spool.ready, ...
        if name in Spool.STATES:
            return self.root / name
        raise AttributeError(name)

    def _inside(self, path: Path) -> Path:
        if self.root not in path.resolve().parents:
            raise ValueError(f"{path}: outside the spool")  # unreachable with safe_name; belt and braces
        return path

    # receiving -----------------------------------------------------------------------------------
    def store(self, series_uid: str, sop_uid: str, data: bytes) -> Path:
        """Write one received instance durably; returns its path. Call before answering the C-STORE."""
        return self._put(series_uid, sop_uid, len(data), lambda dst: write_atomic(dst, data))

    def store_file(self, series_uid: str, sop_uid: str, src: Path) -> Path:
        """Move a received file (pynetdicom's, in receiving/) into the spool durably: fsync it, rename it
        (copy + rename when it lies on another file system); returns its path."""
        src = Path(src)
        return self._put(series_uid, sop_uid, src.stat().st_size, lambda dst: move_durably(src, dst))

    def _put(self, series_uid: str, sop_uid: str, nbytes: int, write) -> Path:
        key = safe_name(series_uid)
        folder = self._inside(self.incoming / key)
        with self._lock:
            self._writing[key] += 1   # released in `finally` on every path (ENOSPC, no inodes, ...)
        try:
            if not folder.is_dir():
                folder.mkdir(exist_ok=True)
                fsync_dir(self.incoming)
            path = write(self._inside(folder / f"{safe_name(sop_uid)}.dcm"))
            with self._lock:
                self._stored_since += nbytes
            return path
        finally:
            with self._lock:
                self._writing[key] -= 1
                if not self._writing[key]:
                    del self._writing[key]

    def usage_bytes(self, max_age_s: float = 2.0, receiving: bool = True) -> int:
        """Bytes in the spool: a walk at most every `max_age_s`, plus what was stored since; without the data
        sets still being received (receiving/) when `receiving` is False."""
        now = time.monotonic()
        if now - self._usage[0] > max_age_s:
            total = rx = 0
            for p in self.root.rglob("*"):
                try:
                    size = p.stat().st_size if p.is_file() else 0
                except OSError:   # gone between the listing and the stat (a finished or swept file)
                    continue
                total += size
                rx += size if p.parent == self.receiving else 0
            with self._lock:
                self._usage, self._stored_since = (now, total, rx), 0
        return self._usage[1] - (0 if receiving else self._usage[2]) + self._stored_since

    def admission(self, series_uid: str, nbytes: int, cfg) -> str:
        """Why a received instance must be refused before it is written ('' to store it): the per-dataset
        cap, the series size, the spool quota, the disk's free-space floor (all in NodeConfig)."""
        mb = 1024 * 1024
        over = over_dataset_cap(nbytes, cfg)
        if over:
            return over
        folder = self.incoming / safe_name(series_uid)
        if cfg.max_series_instances and folder.is_dir() and \
                sum(1 for _ in folder.glob("*.dcm")) >= cfg.max_series_instances:
            return f"series already holds --max-series-instances {cfg.max_series_instances}"
        if cfg.spool_quota_mb and self.usage_bytes() + nbytes > cfg.spool_quota_mb * mb:
            return f"spool over its quota (--spool-quota-mb {cfg.spool_quota_mb:g})"
        return self._under_free_floor(nbytes, cfg)

    def _under_free_floor(self, nbytes: int, cfg) -> str:
        """Why writing `nbytes` more would leave the spool's disk under --min-free-mb ('' when it would not)."""
        mb = 1024 * 1024
        free = shutil.disk_usage(self.root).free
        if free - nbytes < cfg.min_free_mb * mb:
            return f"{free / mb:.0f} MB free on the spool's disk, under --min-free-mb {cfg.min_free_mb:g}"
        return ""

    def receiving_refusal(self, in_progress: int, cfg) -> str:
        """Why data sets being received must stop now ('' while they may go on): `in_progress` bytes of them
        in receiving/ would put the spool over --spool-quota-mb, or the disk is under --min-free-mb. With 0:
        why the spool can take no data set at all (node/scp.py rejects storage associations then)."""
        mb = 1024 * 1024
        held = self.usage_bytes(receiving=False)
        if cfg.spool_quota_mb and held + in_progress > cfg.spool_quota_mb * mb:
            return (f"{held / mb:.1f} MB in the spool" + (f" + {in_progress / mb:.1f} MB being received" if in_progress
                    else "") + f", over --spool-quota-mb {cfg.spool_quota_mb:g}")
        return self._under_free_floor(0, cfg)  # what is in receiving/ is already on the disk

    def oldest_pending_s(self) -> float:
        """Age of the oldest item waiting in incoming/, ready/ or outbox/ (0 when nothing waits)."""
        times = [p.stat().st_mtime for state in (self.incoming, self.ready, self.outbox)
                 for p in state.rglob("*") if p.is_file()]
        return max(0.0, time.time() - min(times)) if times else 0.0

    def incoming_series(self) -> dict[str, float]:
        """series key -> newest file time, for every series folder in incoming/."""
        found = {}
        for d in self.incoming.iterdir():
            if d.is_dir():
                times = [p.stat().st_mtime for p in d.glob("*.dcm")]
                found[d.name] = max(times, default=d.stat().st_mtime)
        return found

    def promote(self, key: str) -> bool:
        """incoming/<key> -> ready/<key> unless an instance is being written or a batch already waits."""
        with self._lock:
            src, dst = self.incoming / key, self.ready / key
            if self._writing.get(key) or dst.exists() or not src.is_dir():
                return False
            if not any(src.glob("*.dcm")):
                shutil.rmtree(src, ignore_errors=True)
                return False
            os.replace(src, dst)
            fsync_dir(self.incoming)
            fsync_dir(self.ready)
            return True

    def ready_series(self) -> list[Path]:
        return sorted((d for d in self.ready.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)

    def fail(self, folder: Path) -> Path:
        dst = self.failed / f"{folder.name}-{int(time.time())}"
        os.replace(folder, dst)
        return dst

    # results -----------------------------------------------------------------------------------
    @staticmethod
    def batch_id(folder: Path) -> str:
        """Identity of a batch of instances: hash of its (UID-derived) file names."""
        names = sorted(p.name for p in Path(folder).glob("*.dcm"))
        return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]

    def outbox_put(self, seg_file: Path, seg_uid: str, meta: dict) -> Path:
        """Copy the SEG into outbox/<seg-uid>/ (marked pending) atomically; the same UID twice is a no-op."""
        final = self._inside(self.outbox / safe_name(seg_uid))
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(dir=self.outbox, prefix=".tmp-"))
        try:
            write_atomic(tmp / "seg.dcm", Path(seg_file).read_bytes())
            write_atomic(tmp / "meta.json", json.dumps(meta, default=str).encode())
            write_atomic(tmp / "pending", b"")
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.outbox)
        return final

    def outbox_entries(self, sendable: bool = False) -> list[Path]:
        """Result folders; with sendable=True only those no longer pending (their ready/ folder is gone)."""
        return sorted(d for d in self.outbox.iterdir() if d.is_dir() and not d.name.startswith(".")
                      and not (sendable and (d / "pending").exists()))

    def release(self, entry: Path) -> None:
        (entry / "pending").unlink(missing_ok=True)
        fsync_dir(entry)

    @staticmethod
    def _marker(name: str, dest_key: str = "") -> str:
        return f"{name}-{dest_key}" if dest_key else name

    def mark_sent(self, entry: Path, dest_key: str = "") -> None:
        """The destination answered Success: durable before anything else happens (before A-RELEASE)."""
        write_atomic(entry / self._marker("sent", dest_key), b"")

    def destinations(self, entry: Path) -> list[str]:
        """The destinations (AE@HOST:PORT) this result is for, from its meta.json."""
        try:
            return list(json.loads((entry / "meta.json").read_text()).get("destinations", []))
        except (OSError, ValueError):
            return []

    def delivered(self, entry: Path, dest_key: str) -> bool:
        """Sent to this destination, or given up on it (its copy is in dead-letter/)."""
        return any((entry / self._marker(m, dest_key)).exists() for m in ("sent", "dead")) or (entry / "sent").exists()

    def finished(self, entry: Path, dest_keys) -> bool:
        return all(self.delivered(entry, k) for k in dest_keys)

    @property
    def dead_letter(self) -> Path:
        return self.root / "dead-letter"

    def attempts(self, entry: Path, dest_key: str = "") -> dict:
        """The entry's forward record for one destination: attempts so far, first failure, last reason
        (kept across restarts)."""
        try:
            return json.loads((entry / f"{self._marker('attempts', dest_key)}.json").read_text())
        except (OSError, ValueError):
            return {"attempts": 0}

    def record_attempt(self, entry: Path, reason: str, dest_key: str = "") -> dict:
        """Count one failed forward attempt to one destination, durably; returns the updated record."""
        record = self.attempts(entry, dest_key)
        record["attempts"] = int(record.get("attempts", 0)) + 1
        record.setdefault("first_failure", time.time())
        record["last_reason"] = reason
        write_atomic(entry / f"{self._marker('attempts', dest_key)}.json", json.dumps(record).encode())
        return record

    def to_dead_letter(self, entry: Path, reason: dict, dest_key: str = "") -> Path:
        """Keep a copy of the result for a destination that will not take it in dead-letter/<seg-uid>-<dest>/
        (seg.dcm, meta.json, reason.json; never deleted) and mark that destination done in the entry."""
        entry = self._inside(Path(entry))
        name = f"{entry.name}-{dest_key}" if dest_key else entry.name
        dst = self.dead_letter / name
        if dst.exists():
            dst = self.dead_letter / f"{name}-{int(time.time() * 1000)}"
        tmp = Path(tempfile.mkdtemp(dir=self.dead_letter, prefix=".tmp-"))
        try:
            for part in ("seg.dcm", "meta.json"):
                write_atomic(tmp / part, (entry / part).read_bytes())
            write_atomic(tmp / "reason.json", json.dumps(reason, default=str).encode())
            os.replace(tmp, dst)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.dead_letter)
        write_atomic(entry / self._marker("dead", dest_key), b"")
        return dst

    def dead_letter_count(self) -> int:
        return sum(1 for d in self.dead_letter.iterdir() if d.is_dir() and not d.name.startswith("."))

    def requeue_dead_letters(self) -> int:
        """Give every dead letter another chance with a fresh attempt count; returns how many."""
        n = 0
        for item in sorted(d for d in self.dead_letter.iterdir() if d.is_dir() and not d.name.startswith(".")):
            reason = json.loads((item / "reason.json").read_text()) if (item / "reason.json").exists() else {}
            meta = json.loads((item / "meta.json").read_text())
            dest, key = reason.get("dest", ""), reason.get("dest_key", "")
            entry = self.outbox / safe_name(meta.get("seg_uid", item.name))
            if entry.is_dir():  # the result still waits for other destinations: reopen this one there
                for name in (self._marker("dead", key), f"{self._marker('attempts', key)}.json"):
                    (entry / name).unlink(missing_ok=True)
                shutil.rmtree(item, ignore_errors=True)
            else:
                meta["destinations"] = [dest] if dest else meta.get("destinations", [])
                write_atomic(item / "meta.json", json.dumps(meta, default=str).encode())
                (item / "reason.json").unlink(missing_ok=True)
                os.replace(item, entry)
            n += 1
        fsync_dir(self.outbox)
        return n

    def discard(self, folder: Path) -> None:
        """Remove a finished folder: one atomic rename out of its state, then delete (a kill mid-delete
        must never leave a half folder that looks like work to do)."""
        folder = self._inside(Path(folder))
        dst = Path(tempfile.mkdtemp(dir=self.trash)) / folder.name
        os.replace(folder, dst)
        fsync_dir(folder.parent)
        shutil.rmtree(dst.parent, ignore_errors=True)

    def recover(self) -> dict[str, int]:
        """At start: drop half-written temporaries (never acknowledged) and results already sent."""
        from edgeseg.node.receive import sweep

        counts = Counter()
        partial = sweep(self.receiving, everything=True)   # data sets being received at the crash: never acked
        if partial:
            counts["partial_received"] = partial
        for part in self.incoming.glob("*/.rx-*.part"):
            part.unlink(missing_ok=True)
            counts["partial_instances"] += 1
        for tmp in [*self.outbox.glob(".tmp-*"), *self.work.iterdir(), *self.trash.iterdir()]:
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        for tmp in self.dead_letter.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        for entry in self.outbox_entries():
            keys = [dest_key(d) for d in self.destinations(entry)]
            if (entry / "sent").exists() or (keys and self.finished(entry, keys)):
                self.discard(entry)
                counts["sent_not_cleaned"] += 1
            elif (entry / "pending").exists():
                meta = json.loads((entry / "meta.json").read_text())
                src = self.ready / meta["key"]
                if not (src.is_dir() and self.batch_id(src) == meta["batch"]):
                    self.release(entry)  # crashed after removing ready/, before releasing the result
                    counts["released"] += 1
        counts["incoming"] = len(self.incoming_series())
        counts["ready"] = len(self.ready_series())
        counts["outbox"] = len(self.outbox_entries())
        counts["dead_letter"] = self.dead_letter_count()
        return dict(counts)
