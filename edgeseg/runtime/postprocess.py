"""Model output -> label mask on the source pixel grid (inverse of runtime.preprocess)."""
from __future__ import annotations

import numpy as np

from edgeseg.contract import ModelContract
from edgeseg.orientation import reorient_2d
from edgeseg.preprocess import unwindow
from edgeseg.runtime.preprocess import Geometry


def labels_from_logits(logits: np.ndarray, contract: ModelContract) -> np.ndarray:
    """(N, C, H, W) logits -> (N, H, W) uint8 class indices (np.argmax: the first maximum wins)."""
    return np.argmax(logits, axis=1).astype(np.uint8)


def resample_nearest(labels: np.ndarray, shape: tuple[int, int], zoom: tuple[float, float]) -> np.ndarray:
    """Nearest neighbour from the model grid back to the reoriented source grid (`zoom` as in prepare)."""
    out = labels
    for axis, (n_out, z) in enumerate(zip(shape, zoom)):
        ax = out.ndim - 2 + axis
        src = np.clip(np.round((np.arange(n_out) + 0.5) * z - 0.5), 0, out.shape[ax] - 1).astype(np.int64)
        out = np.take(out, src, axis=ax)
    return out


def logits_to_source_grid(logits: np.ndarray, geo: Geometry, contract: ModelContract) -> np.ndarray:
    """(N, C, H, W) logits on the model grid -> (N, rows, cols) labels on the source pixels: the logits are
    resampled linearly back to the source spacing and only then turned into labels, so class borders fall
    between model pixels as the model's probabilities say, not on a nearest-neighbour staircase. Pixels
    outside the canvas get all-zero logits, a tie that argmax gives to class 0 (background)."""
    from edgeseg.runtime.preprocess import resample_linear

    out = unwindow(np.asarray(logits, dtype=np.float32), geo.resampled_shape, geo.origin, fill=0.0)
    if tuple(out.shape[-2:]) != tuple(geo.reoriented_shape):
        out = resample_linear(out, geo.reoriented_shape, tuple(1.0 / z for z in geo.zoom))
    labels = labels_from_logits(out, contract)
    labels = reorient_2d(labels, tuple(contract.in_plane_axes), geo.source_axes)
    assert labels.shape[-2:] == tuple(geo.source_shape), (labels.shape, geo.source_shape)
    return np.ascontiguousarray(labels, dtype=np.uint8)


def to_source_grid(labels: np.ndarray, geo: Geometry, contract: ModelContract) -> np.ndarray:
    """(N, H, W) labels on the model grid -> (N, rows, cols) on the source pixels, one to one."""
    out = unwindow(labels, geo.resampled_shape, geo.origin, fill=0)
    if tuple(out.shape[-2:]) != tuple(geo.reoriented_shape):
        out = resample_nearest(out, geo.reoriented_shape, geo.zoom)
    out = reorient_2d(out, tuple(contract.in_plane_axes), geo.source_axes)
    assert out.shape[-2:] == tuple(geo.source_shape), (out.shape, geo.source_shape)
    return np.ascontiguousarray(out, dtype=np.uint8)
