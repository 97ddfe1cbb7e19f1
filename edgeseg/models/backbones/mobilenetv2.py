"""MobileNetV2 encoder (Sandler et al. 2018, arXiv:1801.04381) + a light two-skip decoder.

Kept: the strided 3x3 stem, inverted residual blocks (expansion 6, then 4 in the wider deep blocks),
linear bottlenecks and ReLU6. Slimmed: channels w, 1.5w, 2w, 4w, 6w (paper: 32 ... 320) with
one to three blocks per stage; the encoder stops at output stride 8 and the last two stages use
dilation 2 and 4 instead of striding (the way DeepLabv3 uses MobileNetV2), because low-resolution
slices are only 56x48 at scale 4. Decoder in the DeepLabv3+ spirit: 1x1 reduction, then bilinear x2
with concatenated skips at 1/4 and 1/2, depthwise-separable fusion, final 3x3 classifier at full size.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from edgeseg.models.blocks import InvertedResidual as IR, conv_bn_act, separable
from edgeseg.models.registry import register_backbone


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@register_backbone("mobilenetv2")
class MobileNetV2Seg(nn.Module):
    input_multiple = 8

    def __init__(self, in_channels: int = 1, num_classes: int = 3, width: int = 16):
        super().__init__()
        c1, c2, c3, c4, c5 = width, width * 3 // 2, 2 * width, 4 * width, 6 * width
        self.stage1 = nn.Sequential(conv_bn_act(in_channels, c1, 3, stride=2), IR(c1, c1, expand=1))  # 1/2
        self.stage2 = nn.Sequential(IR(c1, c2, stride=2), IR(c2, c2))  # 1/4
        self.stage3 = nn.Sequential(
            IR(c2, c3, stride=2), IR(c3, c3), IR(c3, c3),  # 1/8
            IR(c3, c4, expand=4, dilation=2), IR(c4, c4, expand=4, dilation=2),
            IR(c4, c5, expand=4, dilation=4),
        )
        self.reduce = conv_bn_act(c5, c3, 1)
        self.fuse2 = separable(c3 + c2, c3)
        self.fuse1 = separable(c3 + c1, c1)
        self.classifier = nn.Conv2d(c1, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.stage1(x)
        s2 = self.stage2(s1)
        x = self.reduce(self.stage3(s2))
        x = self.fuse2(torch.cat([_up2(x), s2], dim=1))
        x = self.fuse1(torch.cat([_up2(x), s1], dim=1))
        return self.classifier(_up2(x))
