"""Series -> model input exactly per the ModelContract, keeping what is needed to invert it.

Steps: reorient the in-plane axes to contract.in_plane_axes (from ImageOrientationPatient),
resample to contract.pixel_spacing_mm when the spacing differs (separable linear interpolation),
then edgeseg.preprocess.apply_contract, the function training data preparation calls too (statistics of
contract.normalization over the series, the hr_size canvas by contract.fit, the normalised background as
padding), and the low-resolution input by contract.lowres_method and contract.scale. This module only maps a
series onto the contract's grid (reorientation, resampling) and keeps what is needed to map the mask back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeseg.contract import ModelContract
from edgeseg.errors import EdgesegError
from edgeseg.orientation import axis_lines, reorient_2d, source_axes
from edgeseg.preprocess import FITS, LOWRES_METHODS, NORMALIZATIONS, StoredGrid, apply_contract, lowres_input

SUPPORTED = {"normalization": tuple(NORMALIZATIONS), "lowres_method": tuple(LOWRES_METHODS),
             "fit": FITS, "output": ("logits",)}


@dataclass(frozen=True)
class Geometry:
    """How the source pixel grid maps onto the model's grid (all that postprocessing needs)."""
    source_axes: tuple[str, str]       # where source rows / columns point
    source_shape: tuple[int, int]      # (rows, cols)
    reoriented_shape: tuple[int, int]  # after reorientation, before resampling
    resampled_shape: tuple[int, int]   # on the contract's pixel spacing, before crop/pad
    zoom: tuple[float, float]          # source spacing / model spacing, per reoriented axis
    origin: tuple[int, int] = (0, 0)   # top-left of the model canvas on the resampled grid (negative = padding)


def check_contract(contract: ModelContract, where: str = "model") -> None:
    for name, allowed in SUPPORTED.items():
        value = getattr(contract, name)
        if value not in allowed:
            raise EdgesegError(f"{where}: {name} '{value}' is not supported by this runner (supported: {', '.join(allowed)})")
    h, w = contract.hr_size
    if h % contract.scale or w % contract.scale:
        raise EdgesegError(f"{where}: hr_size {h}x{w} is not divisible by scale {contract.scale}")


def resample_linear(images: np.ndarray, shape: tuple[int, int], zoom: tuple[float, float]) -> np.ndarray:
    """Linear interpolation of the last two axes onto `shape`; output pixel i samples source (i+0.5)/zoom-0.5."""
    out = images
    for axis, (n_out, z) in enumerate(zip(shape, zoom)):
        ax = out.ndim - 2 + axis
        n_in = out.shape[ax]
        src = np.clip((np.arange(n_out) + 0.5) / z - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        t = (src - i0).astype(np.float32)
        shp = [1] * out.ndim
        shp[ax] = n_out
        t = t.reshape(shp)
        out = np.take(out, i0, axis=ax) * (1 - t) + np.take(out, i1, axis=ax) * t
    return out.astype(np.float32)


def antialias(images: np.ndarray, zoom: tuple[float, float]) -> np.ndarray:
    """Before shrinking an axis (zoom < 1: finer source pixels than the model's), average each pixel with
    its neighbours over about one model pixel (a box of round(1/zoom) source pixels, edges repeated), so
    the linear sampling that follows sees what a coarser acquisition would, not aliased fine detail."""
    out = images
    for axis, z in enumerate(zoom):
        k = int(round(1.0 / z)) if z < 1.0 else 1
        if k < 2:
            continue
        ax = out.ndim - 2 + axis
        pad = [(0, 0)] * out.ndim
        pad[ax] = (k // 2, k - 1 - k // 2)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=ax, dtype=np.float64)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=ax)), c], axis=ax)
        n = out.shape[ax]
        out = ((np.take(c, np.arange(k, n + k), axis=ax) - np.take(c, np.arange(n), axis=ax)) / k).astype(np.float32)
    return out


def prepare(volume: np.ndarray, orientation, spacing: tuple[float, float], contract: ModelContract,
            stored: StoredGrid | None = None):
    """volume: (N, rows, cols) float32 -> (low-res input (N, 1, h, w), Geometry): onto the contract's grid, then
    edgeseg.preprocess.apply_contract. `stored` (the volume's stored integers) gives exact fast percentiles."""
    axes = source_axes(orientation)
    target = tuple(contract.in_plane_axes)
    if axis_lines(axes) != axis_lines(target):
        raise EdgesegError(f"series plane has in-plane axes {axes[0]}/{axes[1]}, the model was trained on "
                           f"{contract.plane} slices ({target[0]}/{target[1]})")
    image = reorient_2d(volume, axes, target)
    swapped = axis_lines(axes[:1]) != axis_lines(target[:1])
    sp = (spacing[1], spacing[0]) if swapped else tuple(spacing)
    zoom = tuple(float(s) / float(t) for s, t in zip(sp, contract.pixel_spacing_mm))
    reoriented = image.shape[-2:]
    if any(abs(z - 1.0) > 1e-3 for z in zoom):
        shape = tuple(max(1, int(round(n * z))) for n, z in zip(reoriented, zoom))
        image = resample_linear(antialias(image, zoom), shape, zoom)
        stored = None  # interpolated values are off the stored grid
    else:
        zoom = (1.0, 1.0)
    resampled = image.shape[-2:]
    prepared = apply_contract(image, contract, stored)
    lowres = lowres_input(prepared.image, contract.scale, contract.lowres_method)[:, None]
    geo = Geometry(axes, tuple(volume.shape[-2:]), tuple(reoriented), tuple(resampled), zoom, tuple(prepared.origin))
    return np.ascontiguousarray(lowres, dtype=np.float32), geo
