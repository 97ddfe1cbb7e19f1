"""Cross-entropy + soft Dice, both computed on full-resolution logits against the full-resolution label.

`soft_target_loss` is the same loss against per-pixel class probabilities (soft targets), which deep
supervision uses at the intermediate scales (edgeseg.train.supervision).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot(target: torch.Tensor, num_classes: int, dtype=torch.float32) -> torch.Tensor:
    """(N, H, W) integer labels -> (N, C, H, W) one-hot."""
    return F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).to(dtype)


def soft_dice_from_probs(logits: torch.Tensor, target_probs: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes, pooled over the batch; target: (N, C, H, W) probabilities."""
    probs = logits.softmax(dim=1)
    dims = (0, 2, 3)
    inter = (probs * target_probs).sum(dims)
    denom = probs.sum(dims) + target_probs.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    return 1.0 - dice[1:].mean()


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes, pooled over the batch."""
    return soft_dice_from_probs(logits, one_hot(target, logits.shape[1], logits.dtype), eps)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    if logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"loss must be computed at full resolution: logits {tuple(logits.shape[-2:])} vs label {tuple(target.shape[-2:])}")
    return F.cross_entropy(logits, target.long()) + dice_weight * soft_dice_loss(logits, target)


def soft_target_loss(logits: torch.Tensor, target_probs: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy against class probabilities + soft Dice; equals `segmentation_loss` for one-hot targets."""
    if logits.shape != target_probs.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and soft target {tuple(target_probs.shape)} differ")
    return F.cross_entropy(logits, target_probs) + dice_weight * soft_dice_from_probs(logits, target_probs)
