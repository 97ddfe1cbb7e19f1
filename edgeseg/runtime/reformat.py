"""Any-plane 3-D series -> the model's plane and back (numpy only).

The model is 2-D: its slices are spanned by two patient axes (contract.in_plane_axes, P/L for an axial
model). A series acquired in another plane (a sagittal or coronal 3-D T1) has array axes (slices, rows,
columns) that point along the three patient axes too. The array axis on the model's through-plane line
(S/I for an axial model: the rows of a sagittal series) becomes the model's slice axis, one model slice
per source pixel on that axis, so that axis maps back one to one; the other two array axes become the
model's rows and columns, and runtime.preprocess reorients them and resamples them linearly onto the
contract's pixel spacing exactly as for any series in the model's plane (the slice spacing becomes a
pixel spacing there). Logits come back onto that grid linearly before argmax (runtime.postprocess) and
the labels are moved back onto the source array axes: every source instance gets its own mask frame,
so the DICOM SEG, mask files and overlay refer to the source sagittal/coronal instances.

Only a real 3-D series can be reformatted: at least MIN_SLICES evenly spaced slices whose spacing is at
most MAX_ANISOTROPY times the in-plane pixel spacing (or the model's, when coarser). Anything else keeps
a one-line refusal that says why.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeseg.contract import ModelContract
from edgeseg.errors import EdgesegError
from edgeseg.orientation import axis_lines, direction_letter, source_axes

MIN_SLICES = 32          # fewer slices: a reformatted slice would be a narrow strip, not an image
MAX_ANISOTROPY = 2.0     # slice spacing / pixel spacing above this: voxels too far from isotropic
EVEN_TOLERANCE = 0.01    # slice steps may differ from their median by 1 % (and 1 micrometre)
PLANE_OF_NORMAL = {"L": "sagittal", "R": "sagittal", "P": "coronal", "A": "coronal", "S": "axial", "I": "axial"}


@dataclass(frozen=True)
class Reformat:
    """How a series' (slices, rows, cols) array becomes a stack of slices in the model's plane."""
    through: int                        # source array axis that becomes the model's slice axis (1 rows, 2 cols)
    orientation: tuple                  # six direction cosines (LPS) of the reformatted rows / columns
    spacing: tuple[float, float]        # mm between the reformatted rows / columns
    slice_spacing: float                # mm between the reformatted slices (a source pixel spacing)
    source_plane: str

    def forward(self, volume: np.ndarray) -> np.ndarray:
        """(slices, rows, cols) source array -> (model slices, rows, cols); no interpolation (a view reordered)."""
        return np.ascontiguousarray(np.moveaxis(volume, self.through, 0))

    def backward(self, mask: np.ndarray) -> np.ndarray:
        """Inverse of `forward`: the model-plane mask back onto the source array axes."""
        return np.ascontiguousarray(np.moveaxis(mask, 0, self.through))

    def note(self, n_source: int, n_model: int, plane: str) -> str:
        return (f"reformatted: {self.source_plane} series of {n_source} slices segmented as {n_model} {plane} "
                f"slices ({self.spacing[0]:.2f} x {self.spacing[1]:.2f} mm pixels before resampling), "
                f"mask mapped back onto the {self.source_plane} instances")


def _check_positions(positions, direction: np.ndarray, normal: np.ndarray, where: str) -> None:
    """Evenly spaced slices along the normal (no gaps, no shear), as a volume needs to be re-sliced."""
    if positions is None or any(p is None for p in positions):
        raise EdgesegError(f"{where}: no ImagePositionPatient, slices cannot be placed in 3-D to reformat")
    if abs(float(np.dot(direction, normal))) < np.cos(np.radians(1.0)):
        angle = float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(direction, normal)))))))
        raise EdgesegError(f"{where}: slice positions advance {angle:.1f} deg away from the slice normal "
                           "(sheared or tilted stack), cannot reformat")
    steps = np.diff(np.asarray(positions, float) @ direction)
    median = float(np.median(steps))
    bad = np.abs(steps - median) > max(EVEN_TOLERANCE * median, 1e-3)
    if bad.any():
        raise EdgesegError(f"{where}: slices are not evenly spaced ({steps.min():.2f}..{steps.max():.2f} mm, "
                           f"median {median:.2f} mm; gaps or missing slices), cannot reformat")


def plan(orientation, spacing, slice_spacing, n_slices: int, contract: ModelContract, positions=None,
         slice_direction=None) -> Reformat | None:
    """None when the series' in-plane axes are the model's (nothing to do: the axial path as it is); a
    Reformat when it can be re-sliced into the model's plane; else EdgesegError saying why not.

    `positions`: ImagePositionPatient per sorted slice (checked evenly spaced); `slice_direction`: the
    LPS direction of increasing slice index when there are no positions (NIfTI, arrays)."""
    if orientation is None:
        return None
    rows_letter, cols_letter = source_axes(orientation)
    target = tuple(contract.in_plane_axes)
    if axis_lines((rows_letter, cols_letter)) == axis_lines(target):
        return None
    o = np.asarray(orientation, dtype=np.float64).reshape(2, 3)
    normal = np.cross(o[0], o[1])
    normal /= np.linalg.norm(normal)
    direction = normal if slice_direction is None else np.asarray(slice_direction, float)
    if slice_direction is None and positions is not None and len(positions) > 1 and all(p is not None for p in positions):
        step = np.asarray(positions[-1], float) - np.asarray(positions[0], float)  # the order runtime.series sorted
        direction = step if np.linalg.norm(step) > 0 else normal
    direction = direction / np.linalg.norm(direction)
    plane = PLANE_OF_NORMAL[direction_letter(normal)]
    where = f"{plane} series"
    refuse = f"the model was trained on {contract.plane} slices ({target[0]}/{target[1]})"
    letters = (direction_letter(direction), rows_letter, cols_letter)
    if len(axis_lines(letters)) != 6:
        raise EdgesegError(f"series plane has in-plane axes {rows_letter}/{cols_letter}, too oblique to reformat; {refuse}")
    pixel = max(float(spacing[0]), float(spacing[1]), min(float(v) for v in contract.pixel_spacing_mm))
    problems = []
    if n_slices < MIN_SLICES:
        problems.append(f"{n_slices} slice(s), at least {MIN_SLICES} needed")
    if slice_spacing is None:
        problems.append("no slice spacing given")
    elif float(slice_spacing) > MAX_ANISOTROPY * pixel:
        problems.append(f"slices {float(slice_spacing):.2f} mm apart vs {pixel:.2f} mm pixels, at most "
                        f"{MAX_ANISOTROPY:g}x for near-isotropic voxels")
    if problems:
        raise EdgesegError(f"{where} (in-plane axes {rows_letter}/{cols_letter}) cannot be reformatted to the "
                           f"model's {contract.plane} plane: {'; '.join(problems)}")
    if positions is not None and n_slices > 1:
        _check_positions(positions, direction, normal, where)
    through_line = next(t for t in ("L", "P", "S") if t not in axis_lines(target))
    through = next(i for i, a in enumerate(letters) if a in axis_lines(through_line))
    vectors = (direction, o[1], o[0])            # slice index, row index (column cosine), column index (row cosine)
    sizes = (float(slice_spacing), float(spacing[0]), float(spacing[1]))
    rest = [i for i in range(3) if i != through]
    return Reformat(through, (*map(float, vectors[rest[1]]), *map(float, vectors[rest[0]])),
                    (sizes[rest[0]], sizes[rest[1]]), sizes[through], plane)
