"""NIfTI in, NIfTI mask out on the same affine (`.nii` / `.nii.gz`; needs nibabel: `edgeseg[nifti]`).

The volume is read with nibabel and handed to the same core as a DICOM series: slices are the array's
third axis, image rows its second and columns its first, and the affine (RAS) gives the DICOM-style
direction cosines (LPS) and pixel spacing, so reorientation and resampling follow the contract exactly
as for DICOM. The mask is written back in the input's array order with the input's affine and header.
"""
from __future__ import annotations

import gzip
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.errors import EdgesegError, first_line, require
from edgeseg.io import atomic_write, short_hash
from edgeseg.safe_paths import inside, readable_name

LPS = np.diag([-1.0, -1.0, 1.0])


def _nibabel():
    return require("nibabel", "NIfTI input needs nibabel: pip install 'edgeseg[nifti]'")


@dataclass
class NiftiVolume:
    path: Path
    image: object                      # the nibabel image (affine, header)
    volume: np.ndarray                 # (slices, rows, cols) float32
    spacing: tuple[float, float]       # (between rows, between columns), mm
    orientation: tuple                 # six direction cosines, LPS (DICOM convention)
    slice_spacing: float
    slice_direction: tuple = (0.0, 0.0, 1.0)  # LPS direction of the array's third axis (slices)


def read_nifti(path: Path) -> NiftiVolume:
    """The volume in the runner's (slices, rows, cols) order with its geometry; one-line errors."""
    nib = _nibabel()
    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises several types for truncated or foreign files
        raise EdgesegError(f"{path.name}: not a readable NIfTI file ({first_line(exc)})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise EdgesegError(f"{path.name}: {data.ndim}-D image {data.shape}; one 3-D volume expected")
    slope, inter = image.dataobj.slope, image.dataobj.inter  # nibabel's scl_slope/scl_inter handling
    values = np.asarray(data, dtype=np.float32) * np.float32(slope) + np.float32(inter)
    axes = LPS @ np.asarray(image.affine, dtype=np.float64)[:3, :3]
    sizes = np.linalg.norm(axes, axis=0)
    if np.any(sizes <= 0):
        raise EdgesegError(f"{path.name}: degenerate affine (a zero-length voxel axis)")
    cosines = axes / sizes
    return NiftiVolume(path, image, np.ascontiguousarray(np.transpose(values, (2, 1, 0))),
                       (float(sizes[1]), float(sizes[0])), tuple(np.concatenate([cosines[:, 0], cosines[:, 1]])),
                       float(sizes[2]), tuple(float(v) for v in cosines[:, 2]))


def _folder(out: Path, path: Path) -> tuple[Path, Path]:
    """OUT/nifti/<file name>, or that name + a hash of the file's path when another file's result holds it."""
    stem = path.name[: -len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
    final = out / "nifti" / (readable_name(stem) or "volume")
    return inside(out, final), inside(out, final.with_name(f"{final.name}-{short_hash(str(path.resolve()))}"))


def process_nifti(seg, path: Path, out: Path, opts):
    """Segment one NIfTI volume into OUT/nifti/<name>/ (mask.nii.gz, report.json, overlay.png)."""
    from edgeseg.runtime.pipeline import Row
    from edgeseg.runtime.segment import segment_volume
    from edgeseg.runtime.stages import write_result

    t0 = time.perf_counter()
    nv = read_nifti(path)
    t = {"read": time.perf_counter() - t0}
    mask, warnings = segment_volume(seg, nv.volume, nv.spacing, nv.orientation, nv.slice_spacing, None,
                                    opts.batch, t, slice_direction=nv.slice_direction)

    def write_mask(target: Path) -> None:  # the input's own header and affine, the mask's type
        header = nv.image.header.copy()
        header.set_data_dtype(np.uint8)
        image = _nibabel().Nifti1Image(np.ascontiguousarray(np.transpose(mask, (2, 1, 0))), nv.image.affine, header)
        image.header.set_slope_inter(1, 0)
        atomic_write(target, gzip.compress(image.to_bytes(), mtime=0))

    source = {"input": {"path": str(path.resolve()), "format": "NIfTI", "shape": list(nv.image.shape),
                        "pixel_spacing_mm": list(nv.spacing), "slice_spacing_mm": round(nv.slice_spacing, 4)}}
    final, report = write_result(seg, opts, out, (*_folder(out, path), str(path.resolve())), mask, nv.volume, nv.spacing,
                                 nv.slice_spacing, {"mask.nii.gz": write_mask}, source, warnings, t)
    return Row(str(path), len(mask), "ok", "; ".join(warnings), sum(t.values()), str(final), report)
