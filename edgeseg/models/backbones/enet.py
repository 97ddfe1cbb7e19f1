"""ENet (Paszke et al. 2016, arXiv:1606.02147), slimmed for small 2D MRI slices.

Kept: the initial block (strided conv || max-pool, concatenated), bottlenecks with 1x1 reduce / conv /
1x1 expand and PReLU, the regular, dilated and asymmetric (5x1 + 1x5) convolutions, output stride 8
and a small decoder. Slimmed: channels w, 4w, 8w (paper: 16, 64, 128 = width 16); stage 1 has two
bottlenecks (paper: four); stages 2 and 3 are merged into one pass of eight with dilation at most 8
(the stride-8 maps are only 7x6 to 28x24); one bottleneck per decoder stage (paper: two and one).
Export-safe substitutes: the channel zero-padding of downsampling bottlenecks is a 1x1 projection,
max-unpooling is bilinear upsampling plus an additive encoder skip, and the final transposed
convolution is bilinear upsampling plus a 3x3 convolution. No spatial dropout (tiny data, short runs).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from edgeseg.models.registry import register_backbone


def _cbp(cin: int, cout: int, k=1, stride: int = 1, dilation: int = 1, act: bool = True) -> nn.Sequential:
    """Conv + BN (+ PReLU); `k` may be a (kh, kw) pair for the asymmetric convolutions."""
    kh, kw = (k, k) if isinstance(k, int) else k
    pad = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
    layers = [nn.Conv2d(cin, cout, (kh, kw), stride, pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class InitialBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.PReLU(cout)

    def forward(self, x):
        return self.act(self.bn(torch.cat([self.conv(x), F.max_pool2d(x, 2)], dim=1)))


class Bottleneck(nn.Module):
    """Residual bottleneck; `kind` is "regular", "asymmetric" or "dilated" (with `dilation`)."""

    def __init__(self, c: int, kind: str = "regular", dilation: int = 1):
        super().__init__()
        mid = c // 4
        if kind == "asymmetric":
            middle = nn.Sequential(_cbp(mid, mid, (5, 1), act=False), _cbp(mid, mid, (1, 5)))
        else:
            middle = _cbp(mid, mid, 3, dilation=dilation)
        self.ext = nn.Sequential(_cbp(c, mid), middle, _cbp(mid, c, act=False))
        self.act = nn.PReLU(c)

    def forward(self, x):
        return self.act(x + self.ext(x))


class DownBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 4
        self.ext = nn.Sequential(_cbp(cin, mid, 2, stride=2), _cbp(mid, mid, 3), _cbp(mid, cout, act=False))
        self.main = _cbp(cin, cout, act=False)  # stands in for the paper's channel zero-padding
        self.act = nn.PReLU(cout)

    def forward(self, x):
        return self.act(self.main(F.max_pool2d(x, 2)) + self.ext(x))


class UpBottleneck(nn.Module):
    """x2 upsampling; the encoder skip replaces the paper's max-unpooling indices."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cin // 4
        self.reduce = _cbp(cin, mid)
        self.ext = nn.Sequential(_cbp(mid, mid, 3), _cbp(mid, cout, act=False))
        self.main = _cbp(cin, cout, act=False)
        self.act = nn.PReLU(cout)

    def forward(self, x, skip):
        return self.act(_up2(self.main(x)) + self.ext(_up2(self.reduce(x))) + skip)


@register_backbone("enet")
class ENet(nn.Module):
    input_multiple = 8

    def __init__(self, in_channels: int = 1, num_classes: int = 3, width: int = 16):
        super().__init__()
        w1, w2, w3 = width, 4 * width, 8 * width
        self.initial = InitialBlock(in_channels, w1)
        self.stage1 = nn.Sequential(DownBottleneck(w1, w2), Bottleneck(w2), Bottleneck(w2))
        plan = [("regular", 1), ("dilated", 2), ("asymmetric", 1), ("dilated", 4),
                ("regular", 1), ("dilated", 8), ("asymmetric", 1), ("dilated", 2)]
        self.stage2 = nn.Sequential(DownBottleneck(w2, w3), *(Bottleneck(w3, k, d) for k, d in plan))
        self.up1, self.dec1 = UpBottleneck(w3, w2), Bottleneck(w2)
        self.up2, self.dec2 = UpBottleneck(w2, w1), Bottleneck(w1)
        self.classifier = nn.Conv2d(w1, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.initial(x)  # 1/2
        s2 = self.stage1(s1)  # 1/4
        x = self.stage2(s2)  # 1/8
        x = self.dec1(self.up1(x, s2))
        x = self.dec2(self.up2(x, s1))
        return self.classifier(_up2(x))
