"""ESPNet (Mehta et al. 2018, arXiv:1803.06815), slimmed for small 2D MRI slices.

Kept: efficient spatial pyramid (ESP) modules, i.e. reduce (1x1, or strided 3x3) - split into K
parallel dilated 3x3 convs - hierarchical feature fusion (HFF: the dilated outputs are summed
cumulatively before concatenation, which removes gridding artefacts) - residual merge - BN+PReLU;
input reinforcement (the downsampled image is concatenated at 1/2 and 1/4); concatenated level
outputs; the light decoder that projects each level and fuses coarse-to-fine.
Slimmed: channels w, 4w, 8w (paper: 16, 64, 128 = width 16); K = 4 branches with dilation 1, 2, 4, 8
(paper: K = 5 up to 16; the 1/8 maps are only 7x6 to 28x24); alpha3 = 3 ESP modules at 1/8 (paper:
8). The decoder runs at w channels instead of the class count (3 classes are too thin to carry it),
and its transposed convolutions are bilinear upsampling (+ 3x3 conv at the end).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from edgeseg.models.registry import register_backbone


def _bn_prelu(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c), nn.PReLU(c))


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, padding=dilation * (k - 1) // 2, dilation=dilation, bias=False)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ESP(nn.Module):
    """ESP module; stride 2 reduces with a strided 3x3 conv and has no residual."""

    def __init__(self, cin: int, cout: int, stride: int = 1, branches: int = 4):
        super().__init__()
        n = cout // branches
        first = cout - (branches - 1) * n  # takes the remainder so the concat has exactly cout channels
        self.reduce = _conv(cin, n, 3 if stride == 2 else 1, stride)
        self.dilated = nn.ModuleList(_conv(n, first if i == 0 else n, 3, dilation=2**i) for i in range(branches))
        self.residual = stride == 1 and cin == cout
        self.out = _bn_prelu(cout)

    def forward(self, x):
        r = self.reduce(x)
        outs = [conv(r) for conv in self.dilated]
        for i in range(2, len(outs)):  # HFF, starting from the dilation-2 branch as in the paper
            outs[i] = outs[i] + outs[i - 1]
        y = torch.cat(outs, dim=1)
        return self.out(x + y if self.residual else y)


@register_backbone("espnet")
class ESPNetSeg(nn.Module):
    input_multiple = 8

    def __init__(self, in_channels: int = 1, num_classes: int = 3, width: int = 16):
        super().__init__()
        w1, w2, w3 = width, 4 * width, 8 * width
        c1 = w1 + in_channels
        c2 = 2 * w2 + in_channels
        self.level1 = nn.Sequential(_conv(in_channels, w1, 3, 2), _bn_prelu(w1))
        self.bn1 = _bn_prelu(c1)
        self.down2 = ESP(c1, w2, stride=2)
        self.level2 = nn.Sequential(ESP(w2, w2), ESP(w2, w2))
        self.bn2 = _bn_prelu(c2)
        self.down3 = ESP(c2, w3, stride=2)
        self.level3 = nn.Sequential(ESP(w3, w3), ESP(w3, w3), ESP(w3, w3))
        self.bn3 = _bn_prelu(2 * w3)
        d = width
        self.proj3, self.proj2, self.proj1 = (nn.Sequential(_conv(c, d), _bn_prelu(d)) for c in (2 * w3, c2, c1))
        self.dec2 = nn.Sequential(_bn_prelu(2 * d), ESP(2 * d, d))
        self.dec1 = nn.Sequential(_conv(2 * d, d, 3), _bn_prelu(d))
        self.classifier = nn.Conv2d(d, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img2 = F.avg_pool2d(x, 2)  # input reinforcement
        img4 = F.avg_pool2d(img2, 2)
        l1 = self.bn1(torch.cat([self.level1(x), img2], dim=1))  # 1/2
        d2 = self.down2(l1)
        l2 = self.bn2(torch.cat([self.level2(d2), d2, img4], dim=1))  # 1/4
        d3 = self.down3(l2)
        l3 = self.bn3(torch.cat([self.level3(d3), d3], dim=1))  # 1/8
        y = self.dec2(torch.cat([_up2(self.proj3(l3)), self.proj2(l2)], dim=1))
        y = self.dec1(torch.cat([_up2(y), self.proj1(l1)], dim=1))
        return self.classifier(_up2(y))
