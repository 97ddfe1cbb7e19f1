"""Structured log: one JSON object per line on stderr, one line per event (journald/Docker friendly)."""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import Counter

_lock = threading.Lock()
_stream = None  # None: sys.stderr at call time (pytest capture friendly)
counts: Counter = Counter()  # events so far, by name: the node's metrics come from the same events as its log


def event(name: str, level: str = "info", **fields) -> None:
    """Write {"ts", "level", "event", ...fields} as one line; never raises."""
    record = {"ts": round(time.time(), 3), "level": level, "event": name, **fields}
    counts[name] += 1
    try:
        line = json.dumps(record, default=str, ensure_ascii=True)
        with _lock:
            stream = _stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()
    except Exception:  # a closed stream must never take a handler down
        pass


class _JsonHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        event("pynetdicom", level=record.levelname.lower(), message=record.getMessage()[:300])


def route_pynetdicom(level: int = logging.WARNING) -> None:
    """Send pynetdicom's own warnings and errors through the JSON log instead of plain text."""
    logger = logging.getLogger("pynetdicom")
    if not any(isinstance(h, _JsonHandler) for h in logger.handlers):
        logger.addHandler(_JsonHandler())
    logger.setLevel(level)
    logger.propagate = False
