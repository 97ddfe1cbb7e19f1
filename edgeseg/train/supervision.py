"""Where the training loss is applied: a registry of supervision modes, chosen by `train.supervision`.

- "final": CE + soft Dice on the full-resolution output against the full-resolution label (edgeseg's
  original loss, default for the pixelshuffle head and for models without a head).
- "deep": J-Net's deep supervision -- the same loss at every scale the model outputs (`SegModel.pyramid`:
  1x backbone logits, each intermediate head stage, full resolution) against the label resized to that
  scale, summed unweighted. Targets as in the authors' training script: 1x = the label sampled by
  nearest neighbour (hard); intermediate scales = the one-hot HR label resized with linear interpolation
  (soft, cv2.INTER_LINEAR's half-pixel sampling, no antialiasing); full resolution = the label itself.
- "base": the paper's baseline -- only the 1x backbone logits, against the nearest-sampled label (the
  network is trained at low resolution on LR labels; at test its logits are upsampled bilinearly).
- "auto": "deep" for heads that ask for it (the J-Net heads), else "final".
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from edgeseg.errors import EdgesegError, nearest_key
from edgeseg.preprocess import nearest_index
from edgeseg.train.losses import one_hot, segmentation_loss, soft_target_loss

_MODES: dict[str, Callable] = {}


def _mode(name: str):
    def deco(fn):
        _MODES[name] = fn
        return fn

    return deco


def nearest_downsample(label: torch.Tensor, factor: int) -> torch.Tensor:
    """The label at the low-resolution pixels: preprocess.nearest_index's samples along both axes."""
    if factor == 1:
        return label
    pick = nearest_index(factor)
    return label[..., pick, pick]


def scale_targets(label: torch.Tensor, sizes: list[tuple[int, int]], num_classes: int) -> list[torch.Tensor]:
    """Targets for outputs of `sizes` (ascending, last = the label's size): hard (N,h,w) at the first and
    last size, soft (N,C,h,w) probabilities in between."""
    full = tuple(label.shape[-2:])
    if sizes[-1] != full:
        raise ValueError(f"the last output {sizes[-1]} must be at the label's resolution {full}")
    targets = []
    for i, size in enumerate(sizes):
        if size == full:
            targets.append(label)
        elif i == 0:
            factor = full[0] // size[0]
            if (size[0] * factor, size[1] * factor) != full:
                raise ValueError(f"base output {size} is not the label {full} divided by an integer")
            targets.append(nearest_downsample(label, factor))
        else:
            onehot = one_hot(label, num_classes)
            targets.append(F.interpolate(onehot, size=size, mode="bilinear", align_corners=False))
    return targets


def deep_supervision_loss(outputs: list[torch.Tensor], label: torch.Tensor, dice_weight: float = 1.0) -> torch.Tensor:
    """Sum over scales of CE + soft Dice against `scale_targets` (hard targets via segmentation_loss)."""
    sizes = [tuple(o.shape[-2:]) for o in outputs]
    total = outputs[0].new_zeros(())
    for out, target in zip(outputs, scale_targets(label, sizes, outputs[0].shape[1])):
        total = total + (soft_target_loss(out, target, dice_weight) if target.dim() == 4 else segmentation_loss(out, target, dice_weight))
    return total


@_mode("final")
def _final(model, x, y, dice_weight):
    return segmentation_loss(model(x), y, dice_weight)


@_mode("deep")
def _deep(model, x, y, dice_weight):
    return deep_supervision_loss(model.pyramid(x), y, dice_weight)


@_mode("base")
def _base(model, x, y, dice_weight):
    logits = model.backbone_logits(x)
    return segmentation_loss(logits, nearest_downsample(y, y.shape[-2] // logits.shape[-2]), dice_weight)


def list_supervision() -> list[str]:
    return sorted([*_MODES, "auto"])


def resolve_supervision(name: str, model) -> str:
    """'auto' -> the model's own choice; an unknown name or 'base' with a head -> EdgesegError."""
    if name == "auto":
        return model.default_supervision()
    if name not in _MODES:
        raise EdgesegError(f"train.supervision: unknown mode '{name}'{nearest_key(name, _MODES)}; known: {', '.join(list_supervision())}")
    if name == "base" and getattr(model, "sr_head", None) is not None:
        raise EdgesegError("train.supervision = 'base' trains the backbone at low resolution only; set model.sr_head = false")
    return name


def supervision_loss(name: str) -> Callable:
    """The loss function (model, x, y, dice_weight) -> scalar of a resolved mode name."""
    return _MODES[name]
