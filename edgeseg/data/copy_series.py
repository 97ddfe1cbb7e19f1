"""Copies of a real DICOM series as new series: fresh, deterministic Series and SOP Instance UIDs (so the
copies group apart), optionally edited. Benchmarks and example folders build their inputs with it from
the bundled sample. pydicom only."""
from __future__ import annotations

from pathlib import Path


def renamed_series(files, tag: str, edit=None) -> list:
    """The datasets of `files` as one new series named by `tag` (same tag, same UIDs); `edit(ds)` may change
    anything else (an attribute, the pixels) before the copy is used."""
    import pydicom
    from pydicom.uid import generate_uid

    series = generate_uid(entropy_srcs=["edgeseg-copy", tag])
    out = []
    for j, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["edgeseg-copy", tag, str(j)])
        if edit is not None:
            edit(ds)
        out.append(ds)
    return out


def write_series_copy(files, folder: Path, tag: str, edit=None) -> list[Path]:
    """renamed_series written as folder/IM0000.dcm ...; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for j, ds in enumerate(renamed_series(files, tag, edit)):
        paths.append(folder / f"IM{j:04d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths
