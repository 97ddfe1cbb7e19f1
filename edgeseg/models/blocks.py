"""Small export-safe building blocks (Conv/BN/ReLU, depthwise-separable) shared by the backbones."""
from __future__ import annotations

from torch import nn


def conv_bn_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1, act: bool = True) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, dilation=dilation, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def separable(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, each with BN; ReLU after both."""
    return nn.Sequential(conv_bn_act(cin, cin, 3, stride, groups=cin, dilation=dilation), conv_bn_act(cin, cout, 1))
