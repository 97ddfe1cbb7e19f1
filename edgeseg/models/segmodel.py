"""Backbone + optional SR head, composed; the head only ever sees the backbone's logits and the image.

Padding rule: a backbone needs its input to be a multiple of `input_multiple` (8 for all of ours). A
low-res input that is not (e.g. 224x192 at x8 -> 28x24) is zero-padded symmetrically up to the next
multiple (zero = the mean of the z-scored image, and what every conv pads with), the backbone's
logits are cropped back to the input size, and the head works on exactly the low-res grid. In ONNX
this is one constant Pad and one Slice, both fixed at export time; sizes that are already a multiple
(every x2/x4 model so far) export without them.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    extra = -size % multiple
    return extra // 2, extra - extra // 2


class SegModel(nn.Module):
    def __init__(self, backbone: nn.Module, sr_head: nn.Module | None, scale: int, name: str):
        super().__init__()
        self.backbone = backbone
        self.sr_head = sr_head
        self.scale = scale
        self.name = name
        self.multiple = int(getattr(backbone, "input_multiple", 1))

    def padding(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) zero padding that brings an h x w low-res input to the backbone's multiple."""
        return (*_pad_amounts(h, self.multiple), *_pad_amounts(w, self.multiple))

    def backbone_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Low-res logits on the input's own grid (padding to the backbone's multiple and cropping back)."""
        h, w = (int(v) for v in x.shape[-2:])  # plain ints: fixed Pad/Slice constants in ONNX, no shape arithmetic
        top, bottom, left, right = self.padding(h, w)
        if not (top or bottom or left or right):
            return self.backbone(x)
        logits = self.backbone(F.pad(x, (left, right, top, bottom)))
        return logits[..., top : top + h, left : left + w]

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits at every scale the model produces, 1x (the backbone's) first, full resolution last."""
        logits = self.backbone_logits(x)
        if self.sr_head is not None:
            return self.sr_head.pyramid(logits, x)
        if self.scale > 1:
            return [logits, F.interpolate(logits, scale_factor=self.scale, mode="bilinear", align_corners=False)]
        return [logits]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H/scale, W/scale) -> full-resolution logits (N, classes, H, W)."""
        logits = self.backbone_logits(x)
        if self.sr_head is not None:
            return self.sr_head(logits, x)
        if self.scale > 1:
            return F.interpolate(logits, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return logits

    def head_parameters(self) -> int:
        return sum(p.numel() for p in self.sr_head.parameters()) if self.sr_head is not None else 0

    def default_supervision(self) -> str:
        """The loss a recipe's `supervision = "auto"` means for this model (see edgeseg.train.supervision)."""
        return getattr(self.sr_head, "default_supervision", "final")
