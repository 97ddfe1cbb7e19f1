"""Walk the inputs, read DICOM headers only (no pixels), group image instances by series.

Files that are not DICOM images get a one-line reason: a failure when named on the command line,
an ignored file (listed in the run report) when found while searching a folder. DICOMDIR files and
hidden files are skipped silently: the folder search finds the instances they index.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from edgeseg.errors import first_line

MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
DEFER_BYTES = 4096  # values larger than this (pixel data) are read only when used
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass
class Instance:
    path: Path
    header: pydicom.Dataset  # read with large values deferred


@dataclass
class SeriesGroup:
    study_uid: str
    series_uid: str
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Skipped:
    path: Path
    reason: str
    failed: bool  # True: counts as a failure (named explicitly or a broken DICOM file)
    series_uid: str = ""  # the series a broken file belonged to, when its header still says so


def iter_files(inputs):
    """Yield (path, explicit) for every file under the inputs, folders searched recursively in sorted order.
    Links to folders are not followed (no loops); a path named on the command line is yielded as given."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and name.upper() != "DICOMDIR":
                        yield Path(root) / name, False
        else:
            yield p, True


def not_regular(path: Path) -> str:
    """Why `path` must not be opened ('' for a regular file): a FIFO would block the run, a device or
    socket is no image. Checked with stat, which never opens the file."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot stat ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return ""
    kind = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
            stat.S_ISSOCK: "a socket"}
    return next((f"not a regular file ({name}); not opened" for test, name in kind.items() if test(mode)),
                "not a regular file; not opened")


def read_header(path: Path) -> pydicom.Dataset:
    """The dataset with large values (Pixel Data) deferred: parsed once, pixels read from the file on use.

    Files without the DICM preamble/meta are accepted when they parse as DICOM; their transfer
    syntax is then taken from how they were parsed.
    """
    try:
        return pydicom.dcmread(path, defer_size=DEFER_BYTES)
    except InvalidDicomError:
        ds = pydicom.dcmread(path, defer_size=DEFER_BYTES, force=True)
        if "SOPInstanceUID" not in ds and "SeriesInstanceUID" not in ds:
            raise InvalidDicomError("no DICOM preamble and no DICOM attributes") from None
        if not hasattr(ds, "file_meta") or ds.file_meta is None:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
        if "TransferSyntaxUID" not in ds.file_meta:
            implicit, little = getattr(ds, "original_encoding", (True, True))
            ds.file_meta.TransferSyntaxUID = (pydicom.uid.ExplicitVRBigEndian if not little else
                                              pydicom.uid.ImplicitVRLittleEndian if implicit else
                                              pydicom.uid.ExplicitVRLittleEndian)
        return ds


_SEQ_DELIMITER = {True: b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", False: b"\xff\xfe\xe0\xdd\x00\x00\x00\x00"}


def _last_element(ds):
    tag = max(ds.keys(), default=None)
    if tag is None:
        return None
    try:
        return ds.get_item(tag, keep_deferred=True)
    except TypeError:  # pydicom < 3: get_item never converts
        return ds.get_item(tag)


def sop_class(ds) -> str:
    """The SOP Class UID: the file meta's MediaStorageSOPClassUID, else the dataset's SOPClassUID ('' if neither)."""
    return str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", "") or "")


def truncation(path: Path, ds) -> str:
    """'' when the file holds every byte its header promises; else what is missing. pydicom reads a short
    file without complaint (values cut short, deferred values pointing past the end), so this compares the
    last element's declared end with the file size, and an image SOP class with its image attributes."""
    size = path.stat().st_size
    elem = _last_element(ds)
    if elem is not None and hasattr(elem, "value_tell"):
        if elem.length == 0xFFFFFFFF:  # encapsulated pixel data ends with a sequence delimiter
            little = getattr(ds, "original_encoding", (False, True))[1] is not False
            with open(path, "rb") as f:
                f.seek(max(0, size - 8))
                if f.read(8) != _SEQ_DELIMITER[little] and elem.tag == 0x7FE00010:
                    return "truncated: encapsulated Pixel Data has no end"
        elif elem.value is None and elem.value_tell + elem.length > size or \
                elem.value is not None and len(elem.value) < elem.length:
            return f"truncated: {size} bytes, its last element needs {elem.value_tell + elem.length}"
    uid = sop_class(ds)
    name = getattr(pydicom.uid.UID(uid), "name", "") if uid else ""
    if name.endswith("Image Storage") and not {"Rows", "Columns"} <= set(ds.dir()):
        return f"truncated or incomplete {name} header (no Rows/Columns)"
    if name.endswith("Image Storage") and not any(k in ds for k in PIXEL_KEYWORDS):
        return "no Pixel Data element (truncated or incomplete image)"
    return ""


def discover(inputs, nifti: list | None = None) -> tuple[list[SeriesGroup], list[Skipped]]:
    """Group image instances by SeriesInstanceUID; everything else becomes a Skipped entry with a reason.
    NIfTI files (.nii, .nii.gz) are appended to `nifti` when a list is given, else skipped with a reason."""
    groups: dict[str, SeriesGroup] = {}
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    for path, explicit in iter_files(inputs):
        if not path.exists():
            skipped.append(Skipped(path, "no such file or folder", True))
            continue
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        odd = not_regular(path)
        if odd:
            skipped.append(Skipped(path, odd, explicit))
            continue
        if path.name.lower().endswith((".nii", ".nii.gz")):
            if nifti is not None:
                nifti.append(path)
            else:
                skipped.append(Skipped(path, "NIfTI file: not read here", explicit))
            continue
        try:
            ds = read_header(path)
        except InvalidDicomError:
            skipped.append(Skipped(path, "not a DICOM file", explicit))
            continue
        except Exception as exc:  # truncated header, bad VR...: a DICOM file we cannot read
            skipped.append(Skipped(path, f"unreadable DICOM header ({first_line(exc)})", True))
            continue
        uid = sop_class(ds)
        if uid == MEDIA_DIRECTORY:
            continue
        try:
            broken = truncation(path, ds)
        except Exception as exc:  # a header too damaged to even look at
            broken = f"unreadable DICOM header ({first_line(exc)})"
        if broken:
            skipped.append(Skipped(path, broken, True, str(ds.get("SeriesInstanceUID", "") or "")))
            continue
        if "Rows" not in ds or "Columns" not in ds:
            name = getattr(pydicom.uid.UID(uid), "name", uid) if uid else "unknown SOP class"
            skipped.append(Skipped(path, f"not an image ({name})", explicit))
            continue
        series_uid = str(ds.get("SeriesInstanceUID", "")) or f"no-series-uid:{path.parent}"
        group = groups.setdefault(series_uid, SeriesGroup(str(ds.get("StudyInstanceUID", "")), series_uid))
        group.instances.append(Instance(path, ds))
    return list(groups.values()), skipped
