"""Acquisition variants of the real test-split slices, for `edgeseg bench robustness` (numpy only).

Each variant is what a scanner or a protocol could plausibly send: a subset of the slices, another
background level, a bias field, noise, a contrast change, thick slices, another pixel spacing, an
in-plane rotation, the head away from the centre of the matrix, a sagittal or coronal 3-D series. A variant holds the image values, the
ground-truth labels on the same pixels and the geometry the DICOM writer needs. Built from the raw
template values of the test-split positions only, so no slice the model trained on is measured.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

MATRIX = (256, 256)


AXIAL_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# per plane of the display stacks (edgeseg.data.slices.display_stack of an RAS volume): ImageOrientationPatient
# (rows toward P / I / I, columns toward L / L / P) and the LPS direction in which the slice index grows
# (volume axis S / A / R); the names of the test blocks in that order
PLANES = {
    "axial": (AXIAL_IOP, (0.0, 0.0, 1.0), ("inferior", "middle", "superior")),
    "coronal": ((1.0, 0.0, 0.0, 0.0, 0.0, -1.0), (0.0, -1.0, 0.0), ("posterior", "middle", "anterior")),
    "sagittal": ((0.0, 1.0, 0.0, 0.0, 0.0, -1.0), (-1.0, 0.0, 0.0), ("left", "middle", "right")),
}


@dataclass(frozen=True)
class Stack:
    """Display-oriented raw slices: images (N, rows, cols) float32, labels uint8, z (mm) per slice.
    A stack re-sliced into another plane (`reslice`) carries its own orientation and positions (LPS)."""
    images: np.ndarray
    labels: np.ndarray
    z: np.ndarray
    spacing: tuple[float, float] = (1.0, 1.0)
    thickness: float = 1.0
    orientation: tuple = AXIAL_IOP
    positions: np.ndarray | None = None
    slice_direction: tuple = (0.0, 0.0, 1.0)  # LPS direction of growing z, where positions are not given


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str
    stack: Stack


def geometry(stack: Stack) -> dict:
    """LPS geometry for edgeseg.data.make_dicom.series_datasets: the matrix centred on 0 in its plane
    (stack.orientation), slices at z mm along stack.slice_direction, unless the stack carries its positions."""
    if stack.positions is not None:
        step = float(np.median(np.linalg.norm(np.diff(stack.positions, axis=0), axis=1))) if len(stack.z) > 1 else 1.0
        return {"positions": list(stack.positions), "orientation": list(stack.orientation),
                "spacing": tuple(map(float, stack.spacing)), "slice_spacing": step}
    rows, cols = stack.images.shape[1:]
    sr, sc = stack.spacing
    along_row, along_col = np.array(stack.orientation[:3]), np.array(stack.orientation[3:])
    origin = -(cols - 1) * sc / 2 * along_row - (rows - 1) * sr / 2 * along_col
    step = float(np.median(np.diff(stack.z))) if len(stack.z) > 1 else 1.0
    return {"positions": [origin + float(z) * np.array(stack.slice_direction) for z in stack.z],
            "orientation": list(map(float, stack.orientation)), "spacing": (float(sr), float(sc)), "slice_spacing": step}


def _place(img: np.ndarray, matrix, offset=None) -> np.ndarray:
    """Pad the last two axes into `matrix`, centred or at `offset` (row, col of the first pixel)."""
    pads = []
    for i, (m, n) in enumerate(zip(matrix, img.shape[-2:])):
        before = (m - n) // 2 if offset is None else offset[i]
        pads.append((before, m - n - before))
    return np.pad(img, [(0, 0)] * (img.ndim - 2) + pads)


def base_stack(t1_display: np.ndarray, labels_display: np.ndarray, positions, thickness: int = 1,
               plane: str = "axial") -> Stack:
    """The slices at `positions` of display-oriented (slices, rows, cols) volumes of `plane`, padded to the
    256x256 matrix; `thickness` > 1 averages that many neighbouring 1 mm slices (partial volume), labels of
    the centre slice."""
    positions = np.sort(np.asarray(positions))
    half = thickness // 2
    imgs = [t1_display[max(0, p - half):p - half + thickness].mean(axis=0) for p in positions]
    orientation, direction, _ = PLANES[plane]
    return Stack(_place(np.stack(imgs).astype(np.float32), MATRIX), _place(labels_display[positions], MATRIX),
                 positions.astype(np.float64), (1.0, 1.0), float(thickness), orientation, None, direction)


def reslice(s: Stack, plane: str, margin: int = 4) -> Stack:
    """An axial display stack of contiguous slices re-sliced, without interpolation, into a `sagittal`
    (rows toward I, columns toward P, slices toward R: ImageOrientationPatient [0,1,0, 0,0,-1]) or
    `coronal` (rows toward I, columns toward L, slices toward P: [1,0,0, 0,0,-1]) stack on the same LPS
    grid as `geometry` places the axial one; slices without signal are dropped except `margin` of them
    on each side (a real acquisition covers the head, not the whole padded matrix)."""
    if len(s.z) > 1 and np.ptp(np.diff(s.z)) > 1e-6:
        raise ValueError("reslice needs evenly spaced axial slices (one contiguous block)")
    k, r, c = s.images.shape
    sr, sc = s.spacing
    dz = float(s.z[1] - s.z[0]) if k > 1 else float(s.thickness)
    x0, y0, top = -(c - 1) * sc / 2, -(r - 1) * sr / 2, float(s.z[-1])
    if plane == "sagittal":   # S[n, i, j] = D[K-1-i, j, C-1-n]
        order, iop, spacing, step = (2, 0, 1), (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), (dz, sr), sc
        pos = lambda n: (x0 + (c - 1 - n) * sc, y0, top)
        flip = lambda a: a[::-1, :, ::-1]
    elif plane == "coronal":  # C[n, i, j] = D[K-1-i, n, j]
        order, iop, spacing, step = (1, 0, 2), (1.0, 0.0, 0.0, 0.0, 0.0, -1.0), (dz, sc), sr
        pos = lambda n: (x0, y0 + n * sr, top)
        flip = lambda a: a[::-1]
    else:
        raise ValueError(f"unknown plane '{plane}' (sagittal, coronal)")
    images = np.ascontiguousarray(np.transpose(flip(s.images), order))
    labels = np.ascontiguousarray(np.transpose(flip(s.labels), order))
    signal = np.where((images > 0).any(axis=(1, 2)) | (labels > 0).any(axis=(1, 2)))[0]
    keep = np.arange(max(0, signal[0] - margin), min(len(images), signal[-1] + margin + 1))
    positions = np.array([pos(n) for n in keep], dtype=np.float64)
    return Stack(images[keep], labels[keep], np.arange(len(keep), dtype=np.float64) * step, spacing, step,
                 iop, positions)


def _blocks(z: np.ndarray) -> list[np.ndarray]:
    """Indices of contiguous runs of slice positions."""
    cuts = np.where(np.diff(z) > 1)[0] + 1
    return np.split(np.arange(len(z)), cuts)


def _subset(s: Stack, idx) -> Stack:
    return replace(s, images=s.images[idx], labels=s.labels[idx], z=s.z[idx])


def _values(s: Stack, images: np.ndarray) -> Stack:
    return replace(s, images=images.astype(np.float32))


def _bias(s: Stack, strength: float = 0.3) -> Stack:
    n, r, c = s.images.shape
    zz, yy, xx = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, r), np.linspace(-1, 1, c), indexing="ij")
    return _values(s, s.images * np.exp(strength * (0.7 * xx + 0.5 * yy + 0.3 * zz + 0.4 * xx * yy)))


def _rician(s: Stack, fraction: float, seed: int = 0) -> Stack:
    rng = np.random.default_rng(seed)
    sigma = fraction * float(np.percentile(s.images, 99))
    a = s.images + rng.normal(0, sigma, s.images.shape)
    return _values(s, np.sqrt(a * a + rng.normal(0, sigma, s.images.shape) ** 2))


def _gamma(s: Stack, g: float) -> Stack:
    top = float(s.images.max())
    return _values(s, top * (s.images / top) ** g)


def _respace(s: Stack, spacing: float) -> Stack:
    """Resample onto `spacing` mm pixels: area average for coarser pixels, linear interpolation for finer
    ones; labels by majority of the covered 1 mm pixels (coarser) or nearest neighbour (finer)."""
    if spacing >= 1 and float(spacing).is_integer():
        f = int(spacing)
        n, r, c = s.images.shape
        img = s.images.reshape(n, r // f, f, c // f, f).mean(axis=(2, 4))
        counts = np.stack([(s.labels == k).reshape(n, r // f, f, c // f, f).sum(axis=(2, 4)) for k in range(int(s.labels.max()) + 1)])
        return replace(s, images=img.astype(np.float32), labels=counts.argmax(0).astype(np.uint8), spacing=(spacing, spacing))
    shape = tuple(int(round(m / spacing)) for m in s.images.shape[1:])
    src = [np.clip((np.arange(m) + 0.5) * spacing - 0.5, 0, n - 1) for m, n in zip(shape, s.images.shape[1:])]
    img = s.images
    for ax, coords in zip((1, 2), src):
        i0 = np.floor(coords).astype(int)
        i1 = np.minimum(i0 + 1, img.shape[ax] - 1)
        t = (coords - i0).reshape([-1 if a == ax else 1 for a in range(3)])
        img = np.take(img, i0, axis=ax) * (1 - t) + np.take(img, i1, axis=ax) * t
    lab = s.labels[:, np.round(src[0]).astype(int)][:, :, np.round(src[1]).astype(int)]
    return replace(s, images=img.astype(np.float32), labels=lab, spacing=(spacing, spacing))


def _rotate(s: Stack, degrees: float) -> Stack:
    """In-plane rotation about the matrix centre: bilinear for the image, nearest for the labels."""
    n, r, c = s.images.shape
    a = np.radians(degrees)
    yy, xx = np.meshgrid(np.arange(r) - (r - 1) / 2, np.arange(c) - (c - 1) / 2, indexing="ij")
    sy = np.cos(a) * yy - np.sin(a) * xx + (r - 1) / 2
    sx = np.sin(a) * yy + np.cos(a) * xx + (c - 1) / 2
    inside = (sy >= 0) & (sy <= r - 1) & (sx >= 0) & (sx <= c - 1)
    y0, x0 = np.clip(np.floor(sy).astype(int), 0, r - 2), np.clip(np.floor(sx).astype(int), 0, c - 2)
    ty, tx = sy - y0, sx - x0
    im = s.images
    img = (im[:, y0, x0] * (1 - ty) * (1 - tx) + im[:, y0 + 1, x0] * ty * (1 - tx)
           + im[:, y0, x0 + 1] * (1 - ty) * tx + im[:, y0 + 1, x0 + 1] * ty * tx) * inside
    lab = s.labels[:, np.clip(np.round(sy).astype(int), 0, r - 1), np.clip(np.round(sx).astype(int), 0, c - 1)] * inside
    return replace(s, images=img.astype(np.float32), labels=lab.astype(np.uint8))


def _off_centre(s: Stack, matrix=(320, 320), offset=(6, 10)) -> Stack:
    """The head near a corner of a larger matrix (first non-padding pixel at `offset`)."""
    rows = np.where(s.labels.any(axis=(0, 2)) | (s.images > 0).any(axis=(0, 2)))[0]
    cols = np.where(s.labels.any(axis=(0, 1)) | (s.images > 0).any(axis=(0, 1)))[0]
    img = s.images[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    lab = s.labels[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return replace(s, images=_place(img, matrix, offset), labels=_place(lab, matrix, offset))


def build_variants(t1_display: np.ndarray, labels_display: np.ndarray, test_positions, plane: str = "axial") -> list[Variant]:
    """Every variant, in table order, from display-oriented (slices, rows, cols) template volumes of `plane`
    (the 3-D reformats into the other planes are built from axial stacks only)."""
    base = base_stack(t1_display, labels_display, test_positions, plane=plane)
    level = float(np.percentile(base.images[base.labels > 0], 50))  # a typical tissue value
    out = [Variant("test split, as acquired", "in-distribution", base)]
    names = PLANES[plane][2]
    for i, idx in enumerate(_blocks(base.z)):
        out.append(Variant(f"{names[i] if i < 3 else i} test block only ({len(idx)} slices)", "coverage", _subset(base, idx)))
    sparse = np.arange(0, len(base.z), 4)
    out.append(Variant(f"every 4th test slice ({len(sparse)} slices)", "coverage", _subset(base, sparse)))
    builders: list[tuple[str, str, Callable[[], Stack]]] = [
        ("background level +20 % of tissue", "background", lambda: _values(base, base.images + 0.2 * level)),
        ("smooth bias field x0.6-1.8", "bias", lambda: _bias(base)),
        ("Rician noise 4 %", "noise", lambda: _rician(base, 0.04)),
        ("gamma 0.6", "gamma", lambda: _gamma(base, 0.6)),
        ("gamma 1.7", "gamma", lambda: _gamma(base, 1.7)),
        ("thick slices 3 mm", "thick slices", lambda: base_stack(t1_display, labels_display, test_positions, 3, plane)),
        ("thick slices 5 mm", "thick slices", lambda: base_stack(t1_display, labels_display, test_positions, 5, plane)),
        ("pixel spacing 0.7 mm", "pixel spacing", lambda: _respace(base, 0.7)),
        ("pixel spacing 2 mm", "pixel spacing", lambda: _respace(base, 2.0)),
        ("rotation 12 deg", "rotation", lambda: _rotate(base, 12.0)),
        ("off-centre field of view", "field of view", lambda: _off_centre(base)),
    ]
    out += [Variant(name, kind, make()) for name, kind, make in builders]
    if plane != "axial":
        return out
    # 3-D series in another plane: the test split is two 8-slice blocks, not one slab, so each contiguous
    # block is re-sliced on its own into a sagittal (or coronal) series of 8-row images, one instance per
    # sagittal position through the head (no interpolation; the 1.2 mm one resampled linearly first)
    blocks = [base_stack(t1_display, labels_display, base.z[idx].astype(int)) for idx in _blocks(base.z)]
    for i, block in enumerate(blocks[:2]):
        out.append(Variant(f"sagittal 3-D, {names[i]} block ({len(block.z)} rows)", "sagittal reformat",
                           reslice(block, "sagittal")))
    out.append(Variant(f"sagittal 3-D 1.0 x 1.2 x 1.2 mm, {names[0]} block", "sagittal reformat",
                       reslice(_respace(blocks[0], 1.2), "sagittal")))
    out.append(Variant(f"coronal 3-D, {names[min(1, len(blocks) - 1)]} block", "coronal reformat",
                       reslice(blocks[min(1, len(blocks) - 1)], "coronal")))
    return out
