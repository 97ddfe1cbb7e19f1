"""Backbone + optional SR head, composed; the head only ever sees the backbone's logits and the image."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class SegModel(nn.Module):
    def __init__(self, backbone: nn.Module, sr_head: nn.Module | None, scale: int, name: str):
        super().__init__()
        self.backbone = backbone
        self.sr_head = sr_head
        self.scale = scale
        self.name = name
        self.multiple = int(getattr(backbone, "input_multiple", 1))

    def check_input(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            ph = -(-h // self.multiple) * self.multiple
            pw = -(-w // self.multiple) * self.multiple
            raise ValueError(f"{self.name}: low-res input {h}x{w} must be a multiple of {self.multiple}; pad to {ph}x{pw}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H/scale, W/scale) -> full-resolution logits (N, classes, H, W)."""
        self.check_input(x)
        logits = self.backbone(x)
        if self.sr_head is not None:
            return self.sr_head(logits, x)
        if self.scale > 1:
            return F.interpolate(logits, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return logits

    def head_parameters(self) -> int:
        return sum(p.numel() for p in self.sr_head.parameters()) if self.sr_head is not None else 0
