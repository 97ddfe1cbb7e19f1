"""Volumes -> normalised 2D slices (DICOM display orientation) on a fixed canvas, split by slice position with gaps."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeseg.data.volume import LabelledVolume, SliceSet
from edgeseg.errors import EdgesegError
from edgeseg.orientation import DISPLAY_AXES, reorient_2d
from edgeseg.preprocess import FITS, LOWRES_METHODS, NORMALIZATIONS, apply_contract, window

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SliceConfig:
    axis: str = "axial"
    canvas: tuple[int, int] = (224, 192)  # (H, W) of the high-resolution slice fed to training
    min_foreground: float = 0.01  # keep slices with at least this labelled fraction
    block: int = 10  # slices per split block
    gap: int = 2  # slices dropped where a block's split differs from the previous one
    pattern: tuple[str, ...] = ("train", "train", "val", "train", "train", "test")
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    normalization: str = "percentile_zscore"  # edgeseg.preprocess.NORMALIZATIONS; stored in the model contract
    fit: str = "center_crop_or_pad"  # edgeseg.preprocess.FITS: where the canvas sits on the slices
    lowres_method: str = "area_average"  # edgeseg.preprocess.LOWRES_METHODS: how the model's input is made

    @property
    def hr_size(self) -> tuple[int, int]:
        """The canvas under the model contract's name (edgeseg.preprocess.apply_contract reads it)."""
        return tuple(self.canvas)


def split_positions(positions, block: int, gap: int, pattern) -> dict[str, np.ndarray]:
    """Assign sorted slice positions to splits in contiguous blocks, cycling through `pattern`,
    dropping `gap` slices at every change of split so neighbouring slices never straddle two splits."""
    if block <= gap:
        raise EdgesegError(f"split block ({block}) must be larger than gap ({gap})")
    unknown = set(pattern) - set(SPLITS)
    if unknown:
        raise EdgesegError(f"split pattern has unknown split(s) {sorted(unknown)}; use {SPLITS}")
    positions = np.sort(np.asarray(positions))
    out: dict[str, list] = {s: [] for s in SPLITS}
    previous = None
    for b, start in enumerate(range(0, len(positions), block)):
        split = pattern[b % len(pattern)]
        chunk = positions[start : start + block]
        if previous is not None and split != previous:
            chunk = chunk[gap:]
        out[split].extend(chunk.tolist())
        previous = split
    return {s: np.asarray(v, dtype=np.int64) for s, v in out.items()}


def display_stack(volume: LabelledVolume, axis_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw (N, rows, cols) image and label stacks along the axis, in DICOM display orientation (see orientation.py)."""
    axis = AXES[axis_name]
    in_plane = tuple(c for i, c in enumerate("RAS") if i != axis)  # volumes are RAS-canonical
    target = DISPLAY_AXES[axis_name]
    image = reorient_2d(np.moveaxis(volume.image, axis, 0), in_plane, target)
    return image.astype(np.float32), reorient_2d(np.moveaxis(volume.label, axis, 0), in_plane, target)


def _slices(volume: LabelledVolume, config: SliceConfig) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (N, H, W) image and label stacks on the canvas, by the contract (apply_contract, as the runner):
    the statistics over the whole volume, the canvas placed by the fit and padded with the normalised background."""
    image, label = display_stack(volume, config.axis)
    prepared = apply_contract(image, config, stats_of=volume.image)
    return prepared.image, np.ascontiguousarray(window(label, config.canvas, prepared.origin, fill=0))


def split_volume(volume: LabelledVolume, config: SliceConfig):
    """-> (normalised image stack, label stack, {split: slice positions}) of one volume."""
    image, label = _slices(volume, config)
    keep = np.where((label > 0).mean(axis=(1, 2)) >= config.min_foreground)[0]
    return image, label, split_positions(keep, config.block, config.gap, config.pattern)


def build_slice_sets(volumes: list[LabelledVolume], config: SliceConfig = SliceConfig()) -> dict[str, SliceSet]:
    """Slice every volume, keep slices with enough foreground, split each volume by position."""
    if config.axis not in AXES:
        raise EdgesegError(f"unknown slice axis '{config.axis}': use one of {', '.join(AXES)}")
    if config.normalization not in NORMALIZATIONS:
        raise EdgesegError(f"unknown normalization '{config.normalization}': use one of {', '.join(NORMALIZATIONS)}")
    if config.fit not in FITS:
        raise EdgesegError(f"unknown fit '{config.fit}': use one of {', '.join(FITS)}")
    if config.lowres_method not in LOWRES_METHODS:
        raise EdgesegError(f"unknown lowres_method '{config.lowres_method}': use one of {', '.join(LOWRES_METHODS)}")
    parts: dict[str, list] = {s: [] for s in SPLITS}
    class_names = volumes[0].class_names
    for volume in volumes:
        if volume.class_names != class_names:
            raise EdgesegError(f"{volume.identity}: class names differ from {volumes[0].identity}")
        image, label, splits = split_volume(volume, config)
        for split, pos in splits.items():
            parts[split].append((image[pos], label[pos], pos))
    sets = {}
    for split, items in parts.items():
        if not items or sum(len(p) for _, _, p in items) == 0:
            raise EdgesegError(f"split '{split}' is empty: use more data or a smaller split block")
        sets[split] = SliceSet(
            hr=np.concatenate([i for i, _, _ in items]).astype(np.float32),
            label=np.concatenate([l for _, l, _ in items]).astype(np.uint8),
            positions=np.concatenate([p for _, _, p in items]),
            class_names=class_names,
            lowres_method=config.lowres_method,
        )
    return sets
