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


class InvertedResidual(nn.Module):
    """MobileNetV2 block (Sandler et al. 2018): 1x1 expand, depthwise 3x3, linear 1x1 project, ReLU6.

    The residual is used when shape is preserved; dilation replaces stride where a net must keep resolution.
    """

    def __init__(self, cin: int, cout: int, expand: int = 6, stride: int = 1, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, padding=dilation, dilation=dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)
