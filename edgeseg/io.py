"""Writing files and folders so that a reader never sees half of one: a temporary name in the same folder, then
one rename; with `durable`, fsynced (file and folder) before the rename counts, as the node's spool needs
before it acknowledges an instance; and the one TOML reader (recipes, targets, device profiles, the node's config).
Standard library only, plus tomli before Python 3.11 (the light runtime uses it)."""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def read_toml(path, what: str = "TOML file") -> dict:
    """The parsed TOML file; a missing, unreadable or invalid file raises EdgesegError naming it and `what`."""
    from edgeseg.errors import EdgesegError

    try:
        import tomllib  # novm (Python >= 3.11)
    except ImportError:  # Python < 3.11: tomli, declared for those versions
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"{path}: {what} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EdgesegError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgesegError(f"{path}: not valid TOML ({exc})") from None


def short_hash(text, digits: int = 8) -> str:
    """The first `digits` hex digits of the text's SHA-256: tells apart names that would otherwise be the same."""
    return hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:digits]


class FolderTaken(Exception):
    """The final name holds something `publish_folder` was told not to replace."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


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


def publish_folder(tmp, final, replaceable: Callable[[Path], bool]) -> Path:
    """Rename the finished temporary folder `tmp` onto `final` (same file system); returns `final`.

    Whatever is at `final` is replaced only when `replaceable(final)` says so (asked again on every attempt),
    else FolderTaken is raised and nothing is touched. The old folder is moved aside, the new one renamed in, then
    the old one removed, so a reader sees the old or the new folder, never a mix. Safe with several writers at
    once: a rename onto a folder another writer has just filled fails, and the choice is made again."""
    tmp, final = Path(tmp), Path(final)
    for _ in range(5):
        if final.exists() or final.is_symlink():
            if not replaceable(final):
                raise FolderTaken(final)
            old = final.with_name(f".{final.name}.old-{os.getpid()}-{short_hash(tmp)}")
            try:
                os.replace(final, old)
            except FileNotFoundError:
                continue  # another writer moved it away first
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            return final
        try:
            os.rename(tmp, final)  # fails (ENOTEMPTY/EEXIST) when another writer published there meanwhile
            return final
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise OSError(errno.EBUSY, "other writers kept changing it", str(final))
