"""In-plane orientation in patient terms (numpy only).

Slices follow the DICOM display convention: for axial slices rows run toward Posterior and columns
toward the patient's Left ("P", "L"), i.e. what ImageOrientationPatient [1,0,0, 0,1,0] gives.
Direction letters name where an increasing index points: R/L, A/P, S/I.
"""
from __future__ import annotations

import numpy as np

OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
DISPLAY_AXES = {"axial": ("P", "L"), "coronal": ("I", "L"), "sagittal": ("I", "P")}


def axis_lines(letters) -> set:
    """The patient axes the direction letters lie on, both senses: ("P", "L") -> {P, A, L, R}."""
    return {t for a in letters for t in (a, OPPOSITE[a])}


def reorient_2d(image: np.ndarray, axes: tuple[str, str], target: tuple[str, str]) -> np.ndarray:
    """Transpose/flip the last two axes of `image`, whose index directions are `axes`, to `target`."""
    axes, target = tuple(axes), tuple(target)
    if axis_lines(target[:1]) == axis_lines(axes[1:]):
        image = np.swapaxes(image, -1, -2)
        axes = (axes[1], axes[0])
    for i, (have, want) in enumerate(zip(axes, target)):
        if have == want:
            continue
        if have != OPPOSITE[want]:
            raise ValueError(f"cannot map in-plane axes {axes} onto {target}")
        image = np.flip(image, axis=image.ndim - 2 + i)
    return np.ascontiguousarray(image)


def direction_letter(vector) -> str:
    """The anatomical letter an LPS direction vector mostly points to (DICOM patient axes: +x L, +y P, +z S)."""
    v = np.asarray(vector, dtype=float)
    k = int(np.argmax(np.abs(v)))
    return ("L", "P", "S")[k] if v[k] > 0 else ("R", "A", "I")[k]


def source_axes(orientation) -> tuple[str, str]:
    """(rows, columns) direction letters from ImageOrientationPatient; display axial (P, L) when unknown."""
    if orientation is None:
        return ("P", "L")
    row_cos, col_cos = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    return direction_letter(col_cos), direction_letter(row_cos)  # rows advance along the column cosine


def obliquity_deg(orientation) -> float:
    """Largest angle between an in-plane axis and the nearest patient axis."""
    if orientation is None:
        return 0.0
    o = np.asarray(orientation, dtype=float).reshape(2, 3)
    return float(np.degrees(np.arccos(np.clip(np.abs(o).max(axis=1) / np.linalg.norm(o, axis=1), -1, 1))).max())


def normal_positions(orientation, positions) -> list[float]:
    """Each ImagePositionPatient's distance along the slice normal (row x column cosines): the key the
    runner sorts slices by, so anything comparing with its masks orders slices the same way."""
    o = np.asarray(orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    return [float(np.dot(p, normal)) for p in positions]
