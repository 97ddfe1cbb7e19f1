"""Numpy-only preprocessing shared by training and the light runtime (no torch here).

Axis convention: 2D slices are (H, W); stacks are (N, H, W).
"""
from __future__ import annotations

import numpy as np


def percentile_zscore(volume: np.ndarray, clip_percentiles=(0.5, 99.5)) -> np.ndarray:
    """Clip to the volume's percentiles, then z-score with the clipped volume's mean and std.

    Computed over the whole volume (series), not per slice, so background-only slices keep
    the same intensity scale as the rest.
    """
    v = np.asarray(volume, dtype=np.float32)
    lo, hi = np.percentile(v, clip_percentiles)
    v = np.clip(v, lo, hi)
    std = float(v.std())
    return ((v - float(v.mean())) / (std if std > 0 else 1.0)).astype(np.float32)


def area_downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping factor x factor blocks over the last two axes (a box filter + decimation,
    what a scanner acquiring larger pixels or a budget pipeline would produce)."""
    if factor == 1:
        return np.asarray(images, dtype=np.float32)
    *lead, h, w = images.shape
    if h % factor or w % factor:
        raise ValueError(f"image size {h}x{w} is not divisible by the scale factor {factor}")
    blocks = images.reshape(*lead, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(-3, -1), dtype=np.float64).astype(np.float32)


def crop_or_pad(images: np.ndarray, size: tuple[int, int], fill: float = 0.0, copy: bool = True) -> np.ndarray:
    """Centre-crop or pad the last two axes to `size` (H, W). A crop without padding is a view when
    copy=False (one array pass less for callers that make a new array next anyway)."""
    crop = [slice(None)] * images.ndim
    pad = [(0, 0)] * images.ndim
    for axis, target in zip((images.ndim - 2, images.ndim - 1), size):
        n = images.shape[axis]
        if n > target:
            start = (n - target) // 2
            crop[axis] = slice(start, start + target)
        elif n < target:
            before = (target - n) // 2
            pad[axis] = (before, target - n - before)
    cropped = any(c != slice(None) for c in crop)
    out = images[tuple(crop)] if cropped else images
    if any(p != (0, 0) for p in pad):
        return np.pad(out, pad, constant_values=fill)
    return out.copy() if copy and cropped else out


def uncrop_or_unpad(images: np.ndarray, size: tuple[int, int], fill=0) -> np.ndarray:
    """Inverse of `crop_or_pad`: bring the last two axes back to the original `size`."""
    return crop_or_pad(images, size, fill=fill)
