"""Writing files so that a reader never sees half of one: a temporary name in the same folder, then one
rename; with `durable`, fsynced (file and folder) before the rename counts, as the node's spool needs
before it acknowledges an instance. Standard library only (the light runtime uses it)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path) -> None:
    """Make a rename in `path` durable (best effort: some file systems do not support it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, content, durable: bool = False, prefix: str | None = None) -> Path:
    """Write `content` (bytes, str, or a callable writing to the temporary path it is given) to `path`,
    all or nothing; the temporary file never survives a failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.", suffix=".part")
    try:
        if callable(content):
            os.close(fd)
            fd = None
            content(tmp)
            if durable:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
        else:
            with os.fdopen(fd, "wb") as f:
                fd = None
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)
    return path
