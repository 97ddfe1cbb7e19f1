"""Where a series' results go and how they get there: the folder name, its modes, the atomic publish.

Layouts (`--layout`):
    readable (default)  OUT/<PatientID>_<StudyDate>/<SeriesNumber>_<SeriesDescription>/  (sanitised; the
                        UIDs are in report.json); a name another series already holds gets '-<hash of the
                        SeriesInstanceUID>' appended, so two series never share a folder
    uid                 OUT/<StudyInstanceUID>/<SeriesInstanceUID>/

Every component is a single plain name (`safe_paths`), and the final path is checked to lie inside OUT.
Files are 0644 and folders 0755 (others on the board, e.g. a PACS uploader, can read them) unless
`private`, then 0600 / 0700.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from edgeseg.errors import EdgesegError, system_words
from edgeseg.io import FolderTaken, publish_folder, short_hash
from edgeseg.safe_paths import inside, readable_name, safe_name

# what a published series folder may hold: anything else in it was not written by edgeseg
OUTPUT_NAMES = frozenset({"seg.dcm", "report.json", "overlay.png", "mask.nii.gz", "mask.npy"})
LAYOUTS = ("readable", "uid")


def _names(series, layout: str) -> tuple[str, str]:
    if layout == "uid":
        return safe_name(series.study_uid), safe_name(series.series_uid)
    ds = series.headers[0] if series.headers else {}
    study = readable_name(f"{ds.get('PatientID', '') or ''}_{ds.get('StudyDate', '') or ''}")
    number = ds.get("SeriesNumber", "")
    series_name = readable_name(f"{'' if number in (None, '') else number}_{series.description}")
    return (study or safe_name(series.study_uid)), (series_name or safe_name(series.series_uid))


def _holder(folder: Path) -> str | None:
    """What the earlier result in `folder` was computed from: its SeriesInstanceUID, or its NIfTI file's path
    (None when there is no result or it is unreadable)."""
    try:
        report = json.loads((folder / "report.json").read_text())
        return report["series"]["series_instance_uid"] if "series" in report else report["input"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def series_folder(out: Path, series, layout: str = "readable") -> tuple[Path, Path | None]:
    """(final folder, the folder to use instead when another series holds that name) under OUT, both
    checked to resolve inside it. With the uid layout names never collide: no alternative."""
    if layout not in LAYOUTS:
        raise EdgesegError(f"--layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    study, name = _names(series, layout)
    final = out / study / name
    inside(out, final)
    if layout == "uid":
        return final, None
    alternative = out / study / f"{name}-{short_hash(series.series_uid)}"
    inside(out, alternative)
    return final, alternative


def is_earlier_result(folder: Path) -> bool:
    """True for a real folder holding only files edgeseg publishes (an earlier run's result)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    return all(p.name in OUTPUT_NAMES and p.is_file() and not p.is_symlink() for p in folder.iterdir())


def set_modes(folder: Path, private: bool = False) -> None:
    """0755/0644 (0700/0600 when private) on a finished temporary folder and its files."""
    os.chmod(folder, 0o700 if private else 0o755)
    for p in folder.iterdir():
        os.chmod(p, 0o600 if private else 0o644)


def write_folder(out: Path, final: Path, fill: Callable[[Path], object], private: bool = False,
                 source_id: str | None = None, alternative: Path | None = None) -> tuple[Path, object]:
    """`fill(tmp)` writes the files into a hidden temporary folder beside `final`, which is then published
    (`publish`) with the modes set -> (where it went, what fill returned). Nothing half-written stays; an
    OSError (disk full, no inodes...) becomes a one-line EdgesegError naming the folder."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        inside(out, final)  # again after mkdir: a link created meanwhile is caught before anything is written
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    except OSError as exc:
        raise EdgesegError(f"{final.parent}: cannot create the output folder ({exc.strerror or exc})") from exc
    try:
        result = fill(tmp)
        set_modes(tmp, private)
        return publish(tmp, final, source_id, alternative), result
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EdgesegError(f"{final}: cannot write the outputs ({system_words(exc)})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish(tmp: Path, final: Path, source_id: str | None = None, alternative: Path | None = None) -> Path:
    """Rename a finished temporary folder onto its final name (edgeseg.io.publish_folder); returns where it went.

    An earlier result of the same series (or of unknown series) is replaced; a name another series holds
    sends the result to `alternative`; anything else at that name (a user's folder, a file, a link) is left
    untouched and the series fails. Safe with several writers at once (Ray workers)."""
    def same_series(folder: Path) -> bool:
        return is_earlier_result(folder) and (alternative is None or _holder(folder) in (None, source_id))

    try:
        try:
            return publish_folder(tmp, final, same_series)
        except FolderTaken:
            if alternative is None or not is_earlier_result(final):
                raise
            return publish_folder(tmp, alternative, is_earlier_result)  # that name is another series'
    except FolderTaken as taken:
        raise EdgesegError(f"{taken.path}: exists and is not an edgeseg result; left untouched (move it or use "
                           "another --out)") from None
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise EdgesegError(f"{final}: could not publish (other writers kept changing it)") from None
        raise
