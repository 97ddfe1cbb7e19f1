"""Model output -> label mask on the source pixel grid (inverse of runtime.preprocess)."""
from __future__ import annotations

import numpy as np

from edgeseg.contract import ModelContract
from edgeseg.orientation import reorient_2d
from edgeseg.preprocess import unwindow
from edgeseg.runtime.preprocess import Geometry, resample_linear


def logits_to_source_grid(logits: np.ndarray, geo: Geometry, contract: ModelContract) -> np.ndarray:
    """(N, C, H, W) logits on the model grid -> (N, rows, cols) labels on the source pixels: the logits are
    resampled linearly back to the source spacing and only then turned into labels (np.argmax: the first
    maximum wins), so class borders fall between model pixels as the model's probabilities say, not on a
    nearest-neighbour staircase. Pixels outside the canvas get all-zero logits, a tie that argmax gives to
    class 0 (background)."""
    out = unwindow(np.asarray(logits, dtype=np.float32), geo.resampled_shape, geo.origin, fill=0.0)
    if tuple(out.shape[-2:]) != tuple(geo.reoriented_shape):
        out = resample_linear(out, geo.reoriented_shape, tuple(1.0 / z for z in geo.zoom))
    labels = reorient_2d(np.argmax(out, axis=1).astype(np.uint8), tuple(contract.in_plane_axes), geo.source_axes)
    assert labels.shape[-2:] == tuple(geo.source_shape), (labels.shape, geo.source_shape)
    return np.ascontiguousarray(labels, dtype=np.uint8)
