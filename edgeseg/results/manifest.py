"""OUT/manifest.csv: one row per series result, appended (and fsynced) as results arrive, so a rerun of
the same command resumes: a series already done with the same model and the same input files is
skipped, one that failed is retried only when asked (`--retry-failed`). The last row of a series wins.

The inputs key is a hash of the series' files (path, size, modification time) and the model identity,
so an edited file, an added instance or another model makes the series due again.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import threading
import time
from pathlib import Path

FIELDS = ("series_uid", "study_uid", "inputs_key", "status", "reason", "out", "slices", "seconds", "finished_at")


def inputs_key(paths, model_id: str) -> str:
    """Hash of the files (path, size, mtime) and the model: what a result was computed from."""
    h = hashlib.sha256(model_id.encode())
    for p in sorted(str(Path(p).resolve()) for p in paths):
        st = os.stat(p)
        h.update(f"\n{p}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


class Manifest:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.last: dict[str, dict] = {}
        self._lock = threading.Lock()
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8", errors="replace") as f:
                for row in csv.DictReader(f):
                    if row.get("series_uid") and row.get("finished_at"):  # a torn last line has no end
                        self.last[row["series_uid"]] = row

    def due(self, series_uid: str, key: str, retry_failed: bool = False) -> str:
        """'' when the series must be (re)computed; else why not ('done before ...' or 'failed before ...')."""
        row = self.last.get(series_uid)
        if row is None or row.get("inputs_key") != key:
            return ""
        if row["status"] == "ok" and row.get("out") and (Path(row["out"]) / "report.json").is_file():
            return f"done before with this model and these files: {row['out']}"
        if row["status"] == "failed" and not retry_failed:
            return f"failed before: {row['reason']} (--retry-failed to try again)"
        return ""

    def record(self, series_uid: str, study_uid: str, key: str, row) -> None:
        """Append one result durably (one line, flushed and fsynced)."""
        values = {"series_uid": series_uid, "study_uid": study_uid, "inputs_key": key, "status": row.status,
                  "reason": row.reason, "out": row.out, "slices": row.slices, "seconds": round(row.seconds, 3),
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        with self._lock:
            size = self.path.stat().st_size if self.path.is_file() else 0
            if size == 0:
                writer.writeheader()
            writer.writerow(values)
            with open(self.path, "a+b") as f:
                if size:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":  # a torn last line (killed mid-write): end it, it stays unread
                        f.write(b"\n")
                f.write(buffer.getvalue().encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            self.last[series_uid] = {k: str(v) for k, v in values.items()}
