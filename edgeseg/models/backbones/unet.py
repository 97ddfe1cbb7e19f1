"""Slim U-Net: 3 poolings, widths w, 2w, 4w, 8w, bilinear upsampling + skip concat (like J-Net's base).

`top_width` widens only the last decoder block (the one at the input's resolution) and the classifier's input:
ONNX Runtime's fast U8S8 convolution (MLAS's symmetric indirect kernel) needs at least 16 output channels, so
at width 8 that block's convs fall back to the slow generic path; in FP32 the NCHWc kernels pad 8 channels to 16
anyway (issue #13, docs/export.md). `pool = "avg"` replaces the 2x2 max-pooling by average pooling (TernaryNet's
authors' network pools by averaging: with ternary activations a max keeps three levels, a mean of four keeps nine)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from edgeseg.models.blocks import conv_bn_act
from edgeseg.models.registry import register_backbone


POOLS = {"max": F.max_pool2d, "avg": F.avg_pool2d}


def _double(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_act(cin, cout), conv_bn_act(cout, cout))


@register_backbone("unet")
class SlimUNet(nn.Module):
    input_multiple = 8
    option_choices = {"pool": tuple(POOLS)}

    def __init__(self, in_channels: int = 1, num_classes: int = 3, width: int = 8, top_width: int = 0, pool: str = "max"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unet pool must be one of {sorted(POOLS)}, not {pool!r}")
        self.pool = POOLS[pool]
        w = [width, 2 * width, 4 * width, 8 * width]
        top = top_width or width
        self.enc = nn.ModuleList([_double(in_channels, w[0]), _double(w[0], w[1]), _double(w[1], w[2])])
        self.bottom = _double(w[2], w[3])
        self.dec = nn.ModuleList([_double(w[3] + w[2], w[2]), _double(w[2] + w[1], w[1]), _double(w[1] + w[0], top)])
        self.classifier = nn.Conv2d(top, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
            x = self.pool(x, 2)
        x = self.bottom(x)
        for block, skip in zip(self.dec, reversed(skips)):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.classifier(x)
