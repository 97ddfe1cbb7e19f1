"""The mask as a file besides the SEG (--also nifti / npy), numpy + gzip only: the bare base install has
neither nibabel nor highdicom and still writes a mask a NIfTI viewer opens on the series geometry."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from edgeseg.io import atomic_write


def nifti_affine(series) -> np.ndarray:
    """RAS affine of a (cols, rows, slices) array built from the sorted series (LPS -> RAS)."""
    o = np.asarray(series.orientation if series.orientation is not None else [1, 0, 0, 0, 1, 0], float)
    first = series.frames[0].position
    first = np.zeros(3) if first is None else first
    last = series.frames[-1].position if series.frames[-1].position is not None else first
    normal = np.cross(o[:3], o[3:])
    step = (last - first) / (len(series.frames) - 1) if len(series.frames) > 1 else normal * series.slice_spacing
    lps = np.eye(4)
    lps[:3, 0] = o[:3] * series.spacing[1]   # array axis 0 = columns
    lps[:3, 1] = o[3:] * series.spacing[0]   # array axis 1 = rows
    lps[:3, 2], lps[:3, 3] = step, first
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def nifti_bytes(mask: np.ndarray, affine: np.ndarray) -> bytes:
    """Minimal NIfTI-1 (.nii) with uint8 data (x=columns, y=rows, z=slices) and sform/qform codes."""
    data = np.ascontiguousarray(np.transpose(mask, (2, 1, 0)).astype(np.uint8))
    hdr = bytearray(352)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, *data.shape, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, 2, 8)                     # datatype uint8, bitpix
    pix = [1.0, *np.linalg.norm(affine[:3, :3], axis=0), 1, 1, 1, 1]
    struct.pack_into("<8f", hdr, 76, *pix)
    struct.pack_into("<f", hdr, 108, 352.0)                    # vox_offset
    struct.pack_into("<f", hdr, 112, 1.0)                      # scl_slope
    hdr[123] = 2                                               # xyzt_units: mm
    struct.pack_into("<hh", hdr, 252, 0, 2)                    # qform_code 0, sform_code 2 (aligned)
    for i, off in enumerate((280, 296, 312)):
        struct.pack_into("<4f", hdr, off, *affine[i])
    hdr[344:348] = b"n+1\0"
    return bytes(hdr) + data.tobytes(order="F")


def write_mask(path: Path, mask: np.ndarray, series, kind: str) -> Path:
    """--also npy: (N, rows, cols) uint8 in sorted order; --also nifti: .nii.gz on the series geometry."""
    if kind == "npy":
        def save(tmp):  # a file object: np.save would append .npy to the temporary name
            with open(tmp, "wb") as f:
                np.save(f, mask.astype(np.uint8))
        return atomic_write(path, save)
    return atomic_write(path, gzip.compress(nifti_bytes(mask, nifti_affine(series)), mtime=0))
