"""The super-resolution segmentation head (J-Net idea): low-res logits -> full-res logits.

Per x2 stage a learned depthwise 2x2 transposed conv doubles the resolution, written as a grouped
1x1 conv to 4 sub-pixels + PixelShuffle (mathematically the same, >10x faster on CPU than
PyTorch's grouped ConvTranspose; exported as Conv + DepthToSpace, native in TensorRT, and rewritten into
one ConvTranspose for the files ONNX Runtime's CPU provider runs, edgeseg/export/subpixel.py). One depthwise
3x3 refinement conv is shared by all stages (as in J-Net's small variant). A 1x1 fusion mixes the learned
path, the bilinear skip of the low-res logits and the bilinearly upsampled image. The fusion starts as
the identity on the bilinear skip, so an untrained head equals plain bilinear upsampling and
training only learns the correction. Channel mixing commutes with bilinear upsampling, so the skip and
image columns of the fusion are applied at low resolution before one upsampling (the same function;
fewer full-resolution channels to read and write). Parameters: 4C*log2(scale) + 10C + (2C+1)*C + C:
C=3, scale 2 -> 66; C=4, scale 4 -> 112; C=4, scale 8 -> 128.

Registered as "pixelshuffle" (the default head). Its stage outputs pass through ELU and are not
logits, so for deep supervision it exposes only the 1x logits and the full-resolution output.
The authors' cascade is `jnet_head.py`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from edgeseg.models.registry import register_head


class SplitFusion(nn.Conv2d):
    """The 1x1 fusion over [learned path, bilinear skip of the logits, bilinear image], with its skip and
    image columns applied at low resolution before one bilinear upsampling (linear maps commute with it)."""

    def forward(self, learned: torch.Tensor, logits_lr: torch.Tensor, image_lr: torch.Tensor, scale: int) -> torch.Tensor:
        c = self.out_channels  # a Python int, not a traced shape
        low = F.conv2d(torch.cat([logits_lr, image_lr], dim=1), self.weight[:, c:])
        low = F.interpolate(low, scale_factor=scale, mode="bilinear", align_corners=False)
        return F.conv2d(learned, self.weight[:, :c], self.bias) + low


@register_head("pixelshuffle")
class SRHead(nn.Module):
    def __init__(self, num_classes: int, scale: int, in_channels: int = 1):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"SR head scale must be a power of two >= 2, got {scale}")
        c = num_classes
        self.scale = scale
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, 4 * c, kernel_size=1, groups=c, bias=False), nn.PixelShuffle(2))
            for _ in range(int(math.log2(scale)))
        )
        self.refine = nn.Conv2d(c, c, kernel_size=3, padding=1, groups=c)  # shared across stages
        self.act = nn.ELU()
        self.fuse = SplitFusion(2 * c + in_channels, c, kernel_size=1)
        with torch.no_grad():
            self.fuse.weight.zero_()
            self.fuse.bias.zero_()
            for k in range(c):  # start as the bilinear skip
                self.fuse.weight[k, c + k, 0, 0] = 1.0

    def forward(self, logits_lr: torch.Tensor, image_lr: torch.Tensor) -> torch.Tensor:
        x = logits_lr
        for up in self.up:
            x = self.act(self.refine(up(x)))
        return self.fuse(x, logits_lr, image_lr, self.scale)

    def pyramid(self, logits_lr: torch.Tensor, image_lr: torch.Tensor) -> list[torch.Tensor]:
        """Logits at the scales this head produces: [1x, full resolution]."""
        return [logits_lr, self(logits_lr, image_lr)]
