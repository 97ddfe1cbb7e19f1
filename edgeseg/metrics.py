"""Dice on label maps (numpy only, shared by training, export verification and the runtime)."""
from __future__ import annotations

import numpy as np


def dice_per_class(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Dice of every class, pooled over all pixels of all slices given (not averaged per slice).

    A class absent from both prediction and target scores 1.0.
    """
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    scores = np.empty(num_classes, dtype=np.float64)
    for k in range(num_classes):
        p, t = pred == k, target == k
        denom = p.sum() + t.sum()
        scores[k] = 1.0 if denom == 0 else 2.0 * np.logical_and(p, t).sum() / denom
    return scores


def mean_foreground_dice(pred: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    return float(dice_per_class(pred, target, num_classes)[1:].mean())
