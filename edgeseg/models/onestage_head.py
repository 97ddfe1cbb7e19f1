"""The one-stage ablation of the J-Net head: the whole x`scale` upsampling in one learned step, no cascade.

Where the J-Net cascade (`jnet_head.py`) doubles the resolution log2(scale) times, each step a logit map,
this head takes the 1x logits to full resolution at once: a per-class learned `scale` x `scale`
sub-pixel kernel (a grouped 1x1 conv to C*scale^2 channels + DepthToSpace, i.e. a depthwise
ConvTranspose with kernel = stride = scale, as `sr_head.py` writes its x2 steps) and then one 3x3
conv at full resolution that mixes the classes. Linear and PyTorch-initialised, as the J-Net head.
Parameters: C*scale^2 + 9C^2 + C (binary C=2: 46 / 70 / 166 at x2 / x4 / x8, under the 200 budget;
C=3 x8: 276). Outputs: `pyramid` = [1x, full] (deep supervision has no intermediate scale to use).
Export: Conv + DepthToSpace + Conv at opset 13, native in TensorRT 8.2.
"""
from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.registry import register_head


@register_head("onestage")
class OneStageHead(nn.Module):
    default_supervision = "deep"  # the same losses as the J-Net head gets at the scales this head has

    def __init__(self, num_classes: int, scale: int, in_channels: int = 1):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"one-stage head scale must be a power of two >= 2, got {scale}")
        c = num_classes
        self.scale = scale
        self.up = nn.Sequential(nn.Conv2d(c, c * scale * scale, kernel_size=1, groups=c, bias=False), nn.PixelShuffle(scale))
        self.refine = nn.Conv2d(c, c, kernel_size=3, padding=1)

    def forward(self, logits_lr: torch.Tensor, image_lr: torch.Tensor | None = None) -> torch.Tensor:
        return self.refine(self.up(logits_lr))

    def pyramid(self, logits_lr: torch.Tensor, image_lr: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Logits at the scales this head produces: [1x, full resolution]."""
        return [logits_lr, self(logits_lr, image_lr)]
