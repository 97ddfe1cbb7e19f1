"""Numpy-only preprocessing shared by training and the light runtime (no torch here).

The one implementation of every step a model contract names: the intensity normalisation
(`contract.normalization`, registry NORMALIZATIONS), the placement of the model's canvas on the
slice (`contract.fit`, registry FITS) and the low-resolution input (`contract.lowres_method`, registry
LOWRES_METHODS: `lowres_input`).
`apply_contract` executes them; training data preparation (edgeseg.data) and the runner
(edgeseg.runtime.preprocess) both call it, so a model sees at run time exactly what it saw in training.

Axis convention: 2D slices are (H, W); stacks are (N, H, W).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# foreground_percentile: the tissue's upper reference is this percentile of the foreground values
FOREGROUND_TOP_PERCENTILE = 99.0
# ... and statistics are taken on every STATS_STRIDE-th pixel along rows and columns (exactly the same in
# training and at run time; a 256x256 series has 16k samples per slice, more than enough for percentiles)
STATS_STRIDE = 2
OTSU_BINS = 256
# foreground_percentile_component: connected components on blocks of this many sampled pixels a side
COMPONENT_BLOCK = 4


@dataclass(frozen=True)
class Intensity:
    """How values map to the model's input: (clip(v, lo, hi) - offset) / scale; padding takes `fill`."""
    lo: float
    hi: float
    offset: float
    scale: float
    fill: float       # raw value the canvas is padded with (maps to the normalised background)
    threshold: float  # raw value above which a pixel counts as foreground (for the field of view)

    def apply(self, values: np.ndarray) -> np.ndarray:
        v = np.clip(np.asarray(values, dtype=np.float64), self.lo, self.hi)  # float64 as v1 computed it
        return ((v - self.offset) / self.scale).astype(np.float32)


Percentile = Callable[[np.ndarray, tuple], np.ndarray]


@dataclass(frozen=True)
class StoredGrid:
    """A stack whose values are still one monotone map of stored integers (DICOM pixels before any
    interpolation): its percentiles come exactly from the integers' histogram, without a sort."""
    stored: np.ndarray                                  # the integers (any shape), one per value of the stack
    to_values: Callable[[np.ndarray], np.ndarray]       # integer levels -> the stack's float32 values, exactly
    increasing: bool                                    # to_values increases (else it decreases)

    def percentiles(self, q) -> np.ndarray:
        """np.percentile(values, q), bit for bit (numpy's linear method between order statistics)."""
        stored = self.stored.ravel()
        base = int(stored.min())
        counts = np.bincount(stored - base) if base else np.bincount(stored)
        cum = np.cumsum(counts if self.increasing else counts[::-1])
        n = int(cum[-1])

        def order_stat(k: int):
            level = int(np.searchsorted(cum, k, side="right"))
            return self.to_values(np.array([(level if self.increasing else len(counts) - 1 - level) + base]))[0]

        out = []
        for qq in q:
            vi = (n - 1) * np.float64(qq / 100.0)
            lo = int(np.floor(vi))
            a, b, t = order_stat(lo), order_stat(min(lo + 1, n - 1)), vi - lo
            out.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # np.percentile's rounding
        return np.array(out, dtype=np.float64)


def otsu_threshold(values: np.ndarray, lo: float, hi: float, bins: int = OTSU_BINS) -> float:
    """Otsu's threshold of `values` on a `bins`-bin histogram of [lo, hi] (the between-class variance maximum)."""
    if hi <= lo:
        return float(lo)
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts, dtype=np.float64)
    m0 = np.cumsum(counts * centres, dtype=np.float64)
    total, mean_all = w0[-1], m0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_all * w0 / total - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def percentile_zscore_stats(volume: np.ndarray, clip_percentiles=(0.5, 99.5), percentile: Percentile | None = None) -> Intensity:
    """Clip to the volume's percentiles, z-score with the clipped volume's mean and std (over the whole series).
    Depends on how much background and which slices the series holds (the v1 contract)."""
    v = np.asarray(volume, dtype=np.float32)
    lo, hi = (percentile or np.percentile)(v, tuple(clip_percentiles))
    c = np.clip(v, lo, hi)
    std = float(c.std())
    return Intensity(float(lo), float(hi), float(c.mean()), std if std > 0 else 1.0, float(lo), float(lo))


def _foreground_intensity(fg: np.ndarray, bg: np.ndarray, lo, hi, t: float) -> Intensity:
    """Background median -> 0, the foreground's top percentile -> 1 (clip percentiles when a side is empty)."""
    if fg.size == 0 or bg.size == 0:
        return Intensity(float(lo), float(hi), float(lo), float(hi - lo) or 1.0, float(lo), t)
    offset = float(np.median(bg))
    scale = float(np.percentile(fg, FOREGROUND_TOP_PERCENTILE)) - offset
    scale = scale if scale > 0 else 1.0
    return Intensity(offset - 0.5 * scale, offset + 1.5 * scale, offset, scale, offset, t)


def foreground_percentile_stats(volume: np.ndarray, clip_percentiles=(0.5, 99.5), percentile: Percentile | None = None) -> Intensity:
    """Background level -> 0, the foreground's 99th percentile -> 1, independent of coverage and background level.

    Foreground = values above Otsu's threshold of the series' histogram (between its clip percentiles);
    offset = median of the background values, scale = 99th percentile of the foreground minus the offset.
    Values are clipped to [offset - 0.5 scale, offset + 1.5 scale]. Statistics on every STATS_STRIDE-th pixel."""
    v = np.asarray(volume, dtype=np.float32)
    sample = v[..., ::STATS_STRIDE, ::STATS_STRIDE].ravel()
    lo, hi = np.percentile(sample, tuple(clip_percentiles))
    t = otsu_threshold(sample, float(lo), float(hi))
    return _foreground_intensity(sample[sample > t], sample[sample <= t], lo, hi, t)


def _label_components(mask: np.ndarray) -> np.ndarray:
    """Face-connected components of a boolean array: every foreground element gets the smallest flat index
    in its component, background gets mask.size (min-label propagation with pointer jumping, numpy only)."""
    n = mask.size
    fg = np.flatnonzero(mask)
    lab = np.where(mask.ravel(), np.arange(n), n).reshape(mask.shape)
    while True:
        new = lab.copy()
        for ax in range(mask.ndim):
            hi = tuple(slice(1, None) if a == ax else slice(None) for a in range(mask.ndim))
            lo = tuple(slice(None, -1) if a == ax else slice(None) for a in range(mask.ndim))
            both = mask[hi] & mask[lo]
            np.minimum(new[hi], np.where(both, lab[lo], n), out=new[hi])
            np.minimum(new[lo], np.where(both, lab[hi], n), out=new[lo])
        flat = new.ravel()
        for _ in range(4):  # a label is an index in the same component: follow it to that one's label
            flat[fg] = flat[flat[fg]]
        if np.array_equal(new, lab):
            return lab
        lab = new


def largest_component(mask: np.ndarray, block: int = COMPONENT_BLOCK) -> np.ndarray:
    """The part of a boolean (..., H, W) mask in its largest face-connected component, found on a grid of
    `block` x `block` in-plane blocks (a block is set when any of its pixels is; slices connect along the
    first axis), so parts closer than about `block` pixels count as one. block=1: exact pixel components."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    *lead, h, w = mask.shape
    hh, ww = -(-h // block) * block, -(-w // block) * block
    padded = np.zeros((*lead, hh, ww), dtype=bool)
    padded[..., :h, :w] = mask
    coarse = padded.reshape(*lead, hh // block, block, ww // block, block).any(axis=(-3, -1))
    lab = _label_components(coarse)
    inside = lab.ravel()[np.flatnonzero(coarse)]
    keep = lab == np.argmax(np.bincount(inside))
    keep = np.repeat(np.repeat(keep, block, axis=-2), block, axis=-1)[..., :h, :w]
    return mask & keep


def foreground_component_stats(volume: np.ndarray, clip_percentiles=(0.5, 99.5), percentile: Percentile | None = None) -> Intensity:
    """foreground_percentile with the foreground restricted to the largest connected component of the pixels
    above Otsu's threshold (on the STATS_STRIDE sample, across slices): a bright object apart from the
    anatomy (a marker, a phantom, a second body part) does not set the tissue's 99th percentile."""
    v = np.asarray(volume, dtype=np.float32)
    sample = v[..., ::STATS_STRIDE, ::STATS_STRIDE]
    flat = sample.ravel()
    lo, hi = np.percentile(flat, tuple(clip_percentiles))
    t = otsu_threshold(flat, float(lo), float(hi))
    above = sample > t
    return _foreground_intensity(sample[largest_component(above)], flat[flat <= t], lo, hi, t)


# contract.normalization -> statistics; adding a normalisation is adding a function and a line
NORMALIZATIONS: dict[str, Callable[..., Intensity]] = {
    "percentile_zscore": percentile_zscore_stats,
    "foreground_percentile": foreground_percentile_stats,
    "foreground_percentile_component": foreground_component_stats,
}


def intensity_stats(volume: np.ndarray, normalization: str, clip_percentiles=(0.5, 99.5), percentile=None) -> Intensity:
    """Statistics of `normalization` over a whole series (N, H, W); `percentile` may replace np.percentile
    by an exact faster equivalent (the runtime's histogram of stored integers)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization '{normalization}' (known: {', '.join(NORMALIZATIONS)})")
    return NORMALIZATIONS[normalization](volume, clip_percentiles, percentile)


def normalise(volume: np.ndarray, normalization: str = "percentile_zscore", clip_percentiles=(0.5, 99.5)) -> np.ndarray:
    return intensity_stats(volume, normalization, clip_percentiles).apply(volume)


def percentile_zscore(volume: np.ndarray, clip_percentiles=(0.5, 99.5)) -> np.ndarray:
    """Clip to the volume's percentiles, then z-score with the clipped volume's mean and std."""
    return normalise(volume, "percentile_zscore", clip_percentiles)


def centre_origin(shape, size) -> tuple[int, int]:
    """Top-left corner of a `size` canvas centred on a `shape` image (negative = padding), as crop_or_pad."""
    return tuple(int((n - t) // 2) if n > t else -int((t - n) // 2) for n, t in zip(shape[-2:], size))


def foreground_box(mask: np.ndarray, tail: float = 0.005) -> tuple[tuple[float, float], ...] | None:
    """(first, last) row and column of the foreground over all slices of an (N, H, W) mask; the ends are the
    `tail` and 1 - `tail` quantiles of the foreground pixels' rows and columns (stray noise pixels do not
    move them). None without foreground."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    ends = []
    for axis in (mask.ndim - 2, mask.ndim - 1):
        counts = mask.sum(axis=tuple(a for a in range(mask.ndim) if a != axis)).astype(np.float64)
        cum = np.cumsum(counts) / counts.sum()
        ends.append((float(np.searchsorted(cum, tail)), float(np.searchsorted(cum, 1 - tail))))
    return tuple(ends)


def fit_origin(fit: str, volume: np.ndarray, size, intensity: Intensity) -> tuple[int, int]:
    """contract.fit: top-left corner of the model's `size` canvas on the (resampled) series (negative = padding).

    center_crop_or_pad: the image centre. foreground_box: the centre of the foreground's bounding box
    (pixels above the normalisation's foreground threshold, every STATS_STRIDE-th pixel)."""
    if fit == "center_crop_or_pad":
        return centre_origin(volume.shape, size)
    if fit == "foreground_box":
        s = STATS_STRIDE
        box = foreground_box(np.asarray(volume)[..., ::s, ::s] > intensity.threshold)
        if box is None:
            return centre_origin(volume.shape, size)
        # sampled pixel i covers full-resolution pixels i*s .. i*s + s - 1
        return tuple(int(np.floor((a * s + b * s + s - 1) / 2 - (t - 1) / 2)) for (a, b), t in zip(box, size))
    raise ValueError(f"unknown fit '{fit}' (known: {', '.join(FITS)})")


FITS = ("center_crop_or_pad", "foreground_box")


@dataclass(frozen=True)
class Prepared:
    """What `apply_contract` made of a stack: the normalised canvas and how it was placed."""
    image: np.ndarray | None      # (N, H, W) float32 on contract.hr_size (None from `contract_placement`)
    intensity: Intensity
    origin: tuple[int, int]       # top-left of the canvas on the stack (negative = padding)


def contract_placement(volume: np.ndarray, contract, stored: StoredGrid | None = None,
                       stats_of: np.ndarray | None = None) -> Prepared:
    """The statistics of contract.normalization over the whole stack (or over `stats_of`) and the canvas
    origin by contract.fit, without making the canvas (the series sampler warps its own)."""
    percentile = (lambda v, q: stored.percentiles(q)) if stored is not None else None
    stats = intensity_stats(volume if stats_of is None else stats_of, contract.normalization,
                            tuple(contract.clip_percentiles), percentile)
    return Prepared(None, stats, fit_origin(contract.fit, volume, tuple(contract.hr_size), stats))


def apply_contract(volume: np.ndarray, contract, stored: StoredGrid | None = None,
                   stats_of: np.ndarray | None = None) -> Prepared:
    """The contract's preprocessing of an (N, H, W) stack on the model's pixel grid: statistics over the whole
    stack, the hr_size canvas placed by the fit and padded with the background, the intensity map applied to
    the canvas's pixels only. The model's input is then lowres_input(image, contract.scale, contract.lowres_method).

    `contract`: a ModelContract, or anything with normalization, clip_percentiles, fit and hr_size (training's
    SliceConfig). `stored`: the stack's stored integers, for exact percentiles without a sort (the runner);
    `stats_of`: take the statistics over this array instead (training: the whole source volume)."""
    p = contract_placement(volume, contract, stored, stats_of)
    canvas = window(np.asarray(volume, dtype=np.float32), tuple(contract.hr_size), p.origin, fill=p.intensity.fill)
    return Prepared(p.intensity.apply(canvas), p.intensity, p.origin)


def window(images: np.ndarray, size, origin, fill: float = 0.0) -> np.ndarray:
    """The `size` (H, W) window of the last two axes whose top-left pixel is `origin` (may be negative or
    run past the end: those pixels take `fill`). A view when the window lies inside the image."""
    h, w = images.shape[-2:]
    (r0, c0), (th, tw) = origin, size
    if r0 >= 0 and c0 >= 0 and r0 + th <= h and c0 + tw <= w:
        return images[..., r0:r0 + th, c0:c0 + tw]
    out = np.full((*images.shape[:-2], th, tw), fill, dtype=images.dtype)
    sr, sc = slice(max(r0, 0), min(r0 + th, h)), slice(max(c0, 0), min(c0 + tw, w))
    if sr.start < sr.stop and sc.start < sc.stop:
        out[..., sr.start - r0:sr.stop - r0, sc.start - c0:sc.stop - c0] = images[..., sr, sc]
    return out


def unwindow(images: np.ndarray, shape, origin, fill=0) -> np.ndarray:
    """Inverse of `window`: the canvas back onto an image of `shape` (H, W); pixels it did not cover take `fill`."""
    out = window(images, tuple(shape), (-origin[0], -origin[1]), fill)
    return out.copy() if out.base is not None else out


def area_downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping factor x factor blocks over the last two axes (a box filter + decimation,
    what a scanner acquiring larger pixels or a budget pipeline would produce)."""
    if factor == 1:
        return np.asarray(images, dtype=np.float32)
    *lead, h, w = images.shape
    if h % factor or w % factor:
        raise ValueError(f"image size {h}x{w} is not divisible by the scale factor {factor}")
    blocks = np.asarray(images).reshape(*lead, h // factor, factor, w // factor, factor)
    # the factor**2 strided views added into one float64 accumulator: the block mean without a float64 copy
    # of the whole array (exact for float32 inputs, so the same mean as blocks.mean(dtype=float64))
    acc = np.zeros((*lead, h // factor, w // factor), dtype=np.float64)
    for i in range(factor):
        for j in range(factor):
            np.add(acc, blocks[..., i, :, j], out=acc)
    return (acc / (factor * factor)).astype(np.float32)


def nearest_index(factor: int) -> slice:
    """Every factor-th index from factor // 2: the sample nearest the centre of each factor-wide block (one
    rule for nearest-sampled inputs here and for the low-resolution labels of training's supervision)."""
    return slice(factor // 2, None, factor)


def nearest_downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Every factor-th pixel over the last two axes, the one nearest each factor x factor block's centre
    (decimation without averaging: aliased, as J-Net's cv2.INTER_NEAREST inputs)."""
    *_, h, w = images.shape
    if h % factor or w % factor:
        raise ValueError(f"image size {h}x{w} is not divisible by the scale factor {factor}")
    pick = nearest_index(factor)
    return np.ascontiguousarray(np.asarray(images)[..., pick, pick], dtype=np.float32)


# how the low-resolution input is made from the full-resolution canvas (contract.lowres_method)
LOWRES_METHODS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "area_average": area_downsample,
    "nearest": nearest_downsample,
}


def lowres_input(images: np.ndarray, factor: int, method: str = "area_average") -> np.ndarray:
    """The model's low-resolution input from (..., H, W) canvases, by the contract's lowres_method."""
    try:
        downsample = LOWRES_METHODS[method]
    except KeyError:
        raise ValueError(f"unknown lowres_method '{method}' (known: {', '.join(LOWRES_METHODS)})") from None
    return downsample(images, factor) if factor > 1 else np.asarray(images, dtype=np.float32)


def crop_or_pad(images: np.ndarray, size: tuple[int, int], fill: float = 0.0, copy: bool = True) -> np.ndarray:
    """Centre-crop or pad the last two axes to `size` (H, W). A crop without padding is a view when
    copy=False (one array pass less for callers that make a new array next anyway)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    out = window(images, size, centre_origin(images.shape, size), fill)
    return out.copy() if copy and out.base is not None else out
