"""Batched inference of a torch model over a slice stack -> label maps at full resolution."""
from __future__ import annotations

import numpy as np
import torch

from edgeseg.metrics import dice_per_class


@torch.no_grad()
def predict_labels(model, lowres: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """lowres: (N, h, w) float32 -> (N, H, W) uint8 labels (argmax of full-resolution logits)."""
    model.eval()
    out = []
    for start in range(0, len(lowres), batch_size):
        x = torch.from_numpy(lowres[start : start + batch_size, None])
        out.append(model(x).argmax(1).to(torch.uint8).numpy())
    return np.concatenate(out)


def evaluate_model(model, slice_set, scale: int) -> dict:
    """Dice per class on a SliceSet at full resolution, pooled over its slices."""
    pred = predict_labels(model, slice_set.lowres(scale))
    dice = dice_per_class(pred, slice_set.label, len(slice_set.class_names))
    return {
        "dice": {name: float(d) for name, d in zip(slice_set.class_names, dice)},
        "mean_foreground_dice": float(dice[1:].mean()),
        "slices": len(slice_set),
    }
