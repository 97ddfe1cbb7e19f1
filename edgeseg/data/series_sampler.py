"""Training batches drawn as augmented *series*: what the runner will see, normalised the way it will.

Each group of `group` training slices comes from one simulated acquisition: a random slab or subset of a
volume's slices (partial coverage), one set of intensity and acquisition changes for the whole series
(gamma or a random contrast curve, scale, background level, 3D bias field, Rician noise, blur, thick
slices, pixel spacing), then the contract's own normalisation statistics and canvas fit computed over
that augmented series (edgeseg.preprocess.contract_placement, as in the runner), then per slice rotation, zoom,
translation and flips. Only training-split slices are ever targets; statistics use training and
unlabelled slices only (never a validation or test slice), seeded by (seed, epoch).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeseg.data import augment as A
from edgeseg.data.slices import SliceConfig, display_stack, split_volume
from edgeseg.preprocess import contract_placement

CONTEXT_SLICES = 32  # statistics over at most this many slices of the simulated series (a random subset)


@dataclass(frozen=True)
class _Volume:
    raw: np.ndarray       # (Z, H, W) display-oriented raw values
    label: np.ndarray     # (Z, H, W) uint8
    train: np.ndarray     # training-split positions
    allowed: np.ndarray   # (Z,) bool: may be looked at (not validation / test)


class SeriesSampler:
    def __init__(self, volumes, slices: SliceConfig, config: A.AugmentConfig, seed: int = 0):
        self.slices, self.config, self.seed = slices, config, seed
        self.volumes = []
        for v in volumes:
            raw, label = display_stack(v, slices.axis)
            _, _, splits = split_volume(v, slices)
            allowed = np.ones(len(raw), dtype=bool)
            allowed[np.concatenate([splits["val"], splits["test"]]).astype(np.int64)] = False
            self.volumes.append(_Volume(raw, label, np.asarray(splits["train"]), allowed))

    def epoch(self, epoch: int, n: int, group: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """n augmented (image, label) canvases (n, H, W), in groups of `group` slices per simulated series."""
        rng = np.random.default_rng([self.seed, epoch])
        images, labels = [], []
        while sum(len(i) for i in images) < n:
            img, lab = self.series(rng, min(group, n - sum(len(i) for i in images)))
            images.append(img)
            labels.append(lab)
        return np.concatenate(images), np.concatenate(labels)

    def _coverage(self, rng, vol: _Volume) -> np.ndarray:
        z = len(vol.raw)
        for _ in range(50):
            if rng.random() < self.config.coverage_p:
                step = int(rng.choice([1, 1, 2, 3, 4, 6]))
                zs = int(rng.integers(0, z)) + step * np.arange(int(rng.integers(4, 61)))
            else:
                zs = np.arange(int(rng.integers(0, 4)), z, int(rng.choice([1, 2, 4])))
            zs = zs[(zs < z)]
            zs = zs[vol.allowed[zs]]
            if np.isin(zs, vol.train).any():
                return zs
        return vol.train

    def series(self, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k canvases (image normalised, label) from one simulated series."""
        cfg, sl = self.config, self.slices
        vol = self.volumes[int(rng.integers(len(self.volumes)))]
        zs = self._coverage(rng, vol)
        members = rng.choice(zs[np.isin(zs, vol.train)], size=k)
        context = np.sort(rng.choice(zs, size=min(len(zs), CONTEXT_SLICES), replace=False))
        where = np.concatenate([members, context])
        clean = rng.random() < cfg.clean_p
        thick = int(rng.integers(2, cfg.thick + 1)) if not clean and rng.random() < cfg.thick_p else 1
        stack = A.thick_slices(vol.raw, where, thick, vol.allowed) if thick > 1 else vol.raw[where].astype(np.float32)
        if not clean:
            stack = self._intensity(rng, stack, 2.0 * where / max(len(vol.raw) - 1, 1) - 1.0)
        ctx = stack[k:]
        placed = contract_placement(ctx, sl)  # the contract's statistics and fit, as apply_contract
        stats, origin = placed.intensity, placed.origin
        fill = float(stats.apply(np.float32(stats.fill)))
        centre = np.array(origin, dtype=np.float64) + (np.array(sl.canvas) - 1) / 2
        images, labels = [], []
        for img, lab in zip(stats.apply(stack[:k]), vol.label[members]):
            angle, zoom, shift = 0.0, 1.0, np.zeros(2)
            if rng.random() < cfg.geometry_p:
                angle = float(rng.uniform(-cfg.rotation, cfg.rotation))
                zoom = float(np.exp(rng.uniform(np.log(1 - cfg.zoom), np.log(1 + cfg.zoom))))
                shift = rng.uniform(-cfg.translation, cfg.translation, 2)
            flip = bool(cfg.flip and rng.random() < 0.5)
            i, l = A.warp(img, lab, sl.canvas, centre + shift, angle, zoom, flip, fill)
            images.append(i)
            labels.append(l)
        return np.stack(images), np.stack(labels)

    def _intensity(self, rng, stack: np.ndarray, z: np.ndarray) -> np.ndarray:
        cfg = self.config
        if rng.random() < cfg.contrast_p:
            stack = A.contrast_curve(stack, rng)
        else:
            g = float(np.exp(rng.uniform(np.log(cfg.gamma[0]), np.log(cfg.gamma[1]))))
            stack = A.gamma(stack, g)
        if rng.random() < cfg.bias_p:
            coef = rng.uniform(-1, 1, A.BIAS_TERMS)
            stack = stack * A.bias_field(stack.shape, coef, float(rng.uniform(0, cfg.bias)), z)
        stack = stack * float(rng.uniform(*cfg.scale))
        level = A.tissue_level(stack)  # offset and noise amounts are relative to it
        if rng.random() < cfg.offset_p:
            stack = stack + float(rng.uniform(0, cfg.offset)) * level
        if rng.random() < cfg.noise_p:
            stack = A.rician(stack, rng, float(rng.uniform(0, cfg.noise)) * level)
        if rng.random() < cfg.blur_p:
            stack = A.gaussian_blur(stack, float(rng.uniform(0.3, cfg.blur)))
        if rng.random() < cfg.spacing_p:
            stack = A.pixel_spacing(stack, float(rng.uniform(*cfg.spacing)))
        return stack.astype(np.float32)
