"""Cross-entropy + soft Dice, both computed on full-resolution logits against the full-resolution label."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes, pooled over the batch."""
    num_classes = logits.shape[1]
    probs = logits.softmax(dim=1)
    onehot = F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    return 1.0 - dice[1:].mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    if logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"loss must be computed at full resolution: logits {tuple(logits.shape[-2:])} vs label {tuple(target.shape[-2:])}")
    return F.cross_entropy(logits, target.long()) + dice_weight * soft_dice_loss(logits, target)
