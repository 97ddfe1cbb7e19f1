"""Seeded acquisition augmentation of raw slices (numpy only): intensity, geometry, acquisition.

Every transform takes a numpy Generator and returns new arrays; labels follow the image through the
geometric transforms (nearest neighbour), never through the intensity ones. Axis convention: stacks
are (N, H, W) of raw scanner values (before the contract's normalisation, which runs afterwards on
the augmented series, as at run time).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """[train.augment] of a recipe. Probabilities are per series (intensity, acquisition) or per slice (geometry)."""
    enabled: bool = False
    clean_p: float = 0.2                             # a series keeps its intensities and acquisition as they are
    gamma: tuple[float, float] = (0.5, 2.0)          # log-uniform exponent on values / series maximum
    contrast_p: float = 0.3                          # random smooth monotonic intensity curve instead of gamma
    scale: tuple[float, float] = (0.7, 1.4)          # multiplicative intensity scale
    offset_p: float = 0.3                            # add a background level ...
    offset: float = 0.25                             # ... up to this fraction of the tissue level
    bias_p: float = 0.7                              # smooth multiplicative bias field, log amplitude up to `bias`
    bias: float = 0.4
    noise_p: float = 0.5                             # Rician noise, sigma up to `noise` x tissue level
    noise: float = 0.06
    blur_p: float = 0.3                              # Gaussian blur, sigma up to `blur` pixels
    blur: float = 1.0
    thick_p: float = 0.3                             # thick slices: mean of 2..`thick` neighbouring slices
    thick: int = 5
    spacing_p: float = 0.4                           # in-plane pixel spacing in mm, resampled back to 1 mm
    spacing: tuple[float, float] = (0.6, 2.0)
    coverage_p: float = 0.7                          # the series is a random slab / subset, not the whole volume
    geometry_p: float = 0.7                          # per slice: rotation, scale, translation
    rotation: float = 15.0                           # degrees
    zoom: float = 0.15                               # +- fraction
    translation: float = 20.0                        # pixels
    flip: bool = True                                # left-right flips (axial and coronal anatomy allows it)


def tissue_level(stack: np.ndarray) -> float:
    """A typical bright-tissue value: the 99th percentile (what the noise and offset amounts scale with)."""
    return float(np.percentile(stack[..., ::4, ::4], 99)) or 1.0


def gamma(stack: np.ndarray, g: float) -> np.ndarray:
    top = float(stack.max()) or 1.0
    return (top * np.power(np.clip(stack / top, 0, None), g)).astype(np.float32)


def contrast_curve(stack: np.ndarray, rng: np.random.Generator, knots: int = 6) -> np.ndarray:
    """A random smooth monotonic map of [0, max] onto itself (piecewise linear through random increasing knots)."""
    top = float(stack.max()) or 1.0
    steps = rng.uniform(0.2, 1.0, knots)
    ys = np.concatenate([[0.0], np.cumsum(steps) / steps.sum()]) * top
    xs = np.linspace(0.0, top, knots + 1)
    return np.interp(stack, xs, ys).astype(np.float32)


BIAS_TERMS = 8


def bias_field(shape, coef, amplitude: float, z) -> np.ndarray:
    """exp of a 2nd-order polynomial in (z, y, x) with coefficients `coef` (BIAS_TERMS, in [-1, 1]); y, x
    span [-1, 1] over the slice, `z` gives each slice's coordinate; at most `amplitude` in magnitude."""
    n, h, w = shape
    zz = np.asarray(z, dtype=np.float64)[:, None, None]
    yy, xx = np.linspace(-1, 1, h)[None, :, None], np.linspace(-1, 1, w)[None, None, :]
    terms = [zz, yy, xx, yy * xx, zz * yy, zz * xx, yy * yy - 0.5, xx * xx - 0.5]
    poly = sum(c * t for c, t in zip(coef, terms))
    return np.exp(poly * (amplitude / (float(np.abs(coef).sum()) or 1.0))).astype(np.float32)


def rician(stack: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """|value + complex Gaussian noise|: what magnitude MR images carry (background becomes Rayleigh)."""
    a = stack + rng.normal(0.0, sigma, stack.shape).astype(np.float32)
    b = rng.normal(0.0, sigma, stack.shape).astype(np.float32)
    return np.sqrt(a * a + b * b).astype(np.float32)


def gaussian_blur(stack: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of the last two axes (edges replicated)."""
    if sigma <= 0.05:
        return stack
    r = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = stack.astype(np.float32)
    for axis in (out.ndim - 2, out.ndim - 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for i, w in enumerate(k.astype(np.float32)):
            index = [slice(None)] * out.ndim
            index[axis] = slice(i, i + n)
            acc += w * p[tuple(index)]
        out = acc
    return out


def resample(stack: np.ndarray, shape) -> np.ndarray:
    """Linear interpolation of the last two axes onto `shape` (pixel centres aligned, edges clamped)."""
    out = stack
    for axis, n_out in zip((-2, -1), shape):
        n_in = out.shape[axis]
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        t = (src - i0).astype(np.float32).reshape([-1 if a == out.ndim + axis else 1 for a in range(out.ndim)])
        out = np.take(out, i0, axis=axis) * (1 - t) + np.take(out, i1, axis=axis) * t
    return out.astype(np.float32)


def pixel_spacing(stack: np.ndarray, spacing_mm: float) -> np.ndarray:
    """As acquired with `spacing_mm` pixels and resampled back to the 1 mm grid (runner-like linear
    interpolation); coarser pixels first average the signal they cover (blur of about their width)."""
    h, w = stack.shape[-2:]
    coarse = (max(2, int(round(h / spacing_mm))), max(2, int(round(w / spacing_mm))))
    src = gaussian_blur(stack, 0.42 * spacing_mm) if spacing_mm > 1 else stack
    return resample(resample(src, coarse), (h, w))


def warp(image: np.ndarray, label: np.ndarray, size, centre, angle_deg: float = 0.0, zoom: float = 1.0,
         flip: bool = False, fill: float = 0.0):
    """A `size` canvas centred at `centre` (row, col, may be fractional) of one (H, W) slice, rotated by
    `angle_deg` and magnified by `zoom`, mirrored left-right when `flip`: bilinear image, nearest label.
    With angle 0, zoom 1, no flip and an integral `centre - (size - 1) / 2` it is an exact window."""
    th, tw = size
    h, w = image.shape
    a = np.radians(angle_deg)
    yy, xx = np.meshgrid(np.arange(th) - (th - 1) / 2, np.arange(tw) - (tw - 1) / 2, indexing="ij")
    if flip:
        xx = -xx
    sy = (np.cos(a) * yy - np.sin(a) * xx) / zoom + centre[0]
    sx = (np.sin(a) * yy + np.cos(a) * xx) / zoom + centre[1]
    inside = (sy > -0.5) & (sy < h - 0.5) & (sx > -0.5) & (sx < w - 0.5)
    y0 = np.clip(np.floor(sy).astype(np.int64), 0, h - 1)
    x0 = np.clip(np.floor(sx).astype(np.int64), 0, w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    ty, tx = np.clip(sy - y0, 0, 1).astype(np.float32), np.clip(sx - x0, 0, 1).astype(np.float32)
    img = (image[y0, x0] * (1 - ty) * (1 - tx) + image[y1, x0] * ty * (1 - tx)
           + image[y0, x1] * (1 - ty) * tx + image[y1, x1] * ty * tx)
    img = np.where(inside, img, fill).astype(np.float32)
    ny = np.clip(np.round(sy).astype(np.int64), 0, h - 1)
    nx = np.clip(np.round(sx).astype(np.int64), 0, w - 1)
    lab = np.where(inside, label[ny, nx], 0).astype(label.dtype)
    return img, lab


def thick_slices(volume: np.ndarray, positions, k: int, allowed=None) -> np.ndarray:
    """(len(positions), H, W): each slice the mean of `k` neighbouring slices of a (Z, H, W) volume around
    it (partial volume of a k mm slice from 1 mm slices); `allowed` (bool per z) excludes slices that must
    not be seen (other splits): the mean is over the allowed neighbours only."""
    z = volume.shape[0]
    half = (k - 1) / 2
    out = []
    for p in positions:
        idx = np.arange(int(np.floor(p - half)), int(np.floor(p - half)) + k)
        idx = idx[(idx >= 0) & (idx < z)]
        if allowed is not None:
            idx = idx[allowed[idx]] if allowed[idx].any() else np.array([p])
        out.append(volume[idx].mean(axis=0))
    return np.stack(out).astype(np.float32)
