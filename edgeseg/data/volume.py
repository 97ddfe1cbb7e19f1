"""Plain containers for labelled volumes and slice stacks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeseg.preprocess import lowres_input


@dataclass(frozen=True)
class LabelledVolume:
    """A 3D image with an integer label map on the same grid. Arrays are (X, Y, Z) in RAS order."""

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    class_names: tuple[str, ...]
    identity: str  # where the data came from, stored in checkpoints and model metadata


@dataclass(frozen=True)
class SliceSet:
    """A stack of normalised high-resolution slices with labels. hr: (N, H, W) float32, label: (N, H, W) uint8."""

    hr: np.ndarray
    label: np.ndarray
    positions: np.ndarray  # slice index along the slicing axis, for leak checks
    class_names: tuple[str, ...]
    lowres_method: str = "area_average"  # edgeseg.preprocess.LOWRES_METHODS; stored in the model contract

    def __len__(self) -> int:
        return int(self.hr.shape[0])

    def lowres(self, scale: int) -> np.ndarray:
        """The low-resolution input: the HR slices downsampled by `scale` with `lowres_method`."""
        return lowres_input(self.hr, scale, self.lowres_method)
