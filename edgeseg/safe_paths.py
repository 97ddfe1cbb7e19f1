"""Path names derived from untrusted header values (UIDs), and the check that a path stays in its root.

Every folder the runner or the node names after a DICOM value goes through `safe_name`: a value that
is a well-formed UID (digits and dots, at most 64 characters) is used as it is, so results stay easy to
find; anything else (empty, `.`, `..`, slashes, NULs, 10 kB of text) becomes `h-` + its SHA-256, which
is always one plain path component. `inside` then resolves the final path (following links) and
refuses it unless it lies under the resolved root.
"""
from __future__ import annotations

import re
from pathlib import Path

from edgeseg.errors import EdgesegError
from edgeseg.io import short_hash

_UID = re.compile(r"[0-9]{1,64}(\.[0-9]{1,64}){0,63}")


def safe_name(value) -> str:
    """One plain path component for a header value: the UID itself or 'h-' + the first 40 hex of its SHA-256."""
    text = "" if value is None else str(value)
    if len(text) <= 64 and _UID.fullmatch(text):
        return text
    return "h-" + short_hash(text, 40)


def inside(root: Path, path: Path) -> Path:
    """`path` if, with links resolved, it lies strictly under `root`; else a one-line EdgesegError."""
    real_root = Path(root).resolve()
    real = Path(path).resolve()
    if real_root not in real.parents:
        raise EdgesegError(f"{path}: resolves to {real}, outside {real_root}; refused")
    return path


def readable_name(text, max_len: int = 64) -> str:
    """A folder name people can read from header text ('3_T1 MPRAGE' -> '3_T1_MPRAGE'): letters, digits,
    '.', '_' and '-' only, no leading/trailing dots or separators; '' when nothing readable is left."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", "" if text is None else str(text)).strip("._-")[:max_len].strip("._-")
    return cleaned
