"""The J-Net super-resolution head as the authors built it (Ostrowski & Shafique; their public J-Net code).

The head sees only the backbone's class logits (C channels at 1x) and is linear, as theirs is (no
activation anywhere in it). A *stage* is ConvTranspose 2x2 stride 2 -> Conv 3x3, mixing classes;
with n = log2(scale):

- main cascade: n-1 stages, 1x -> scale/2, each stage's output is a logit map (supervised by deep
  supervision at its scale);
- skip branch: the 1x logits upsampled to scale/2 by n-1 ConvTransposes, each followed by a 3x3
  (their `UpSample2`: the 3x3 is shared by the steps of the branch) -- at x8 this is their "4x branch";
- fusion: concat(skip, main) -> the last x2 step -> full-resolution logits.

At x2 (n = 1) there is no cascade and no branch to concatenate (both would be the 1x logits): the
head is the last stage alone. Outputs: `pyramid` = [1x, 2x, ..., full] (what deep supervision
sums over); `forward` = the full-resolution logits only (what is exported).

Two weight-sharing schemes, both registered:

- "jnet-authors": exactly the authors' sharing -- separate weights per main stage, one 3x3 shared by
  the branch, fusion = ConvTranspose(2C->2C) -> 3x3(2C->C). Parameters for C classes at x4/x8:
  (n-1)(13C^2+2C) + (n-1)(4C^2+C) + 9C^2+C + 34C^2+3C: C=1 x8 -> 87 (their 32->256 model), C=3 x8 -> 723.
- "jnet": sharing taken one step further so that three classes fit in < 200 parameters at every
  scale: one 3x3 shared by *every* stage (cascade, branch and last step), one ConvTranspose shared
  by the main stages and the last step, one for the branch, and a 1x1 (2C->C) fusion of the
  concatenation before the last step (a rank-C factorisation of the authors' 2C->2C ConvTranspose
  + 2C->C 3x3). Parameters: 19C^2+4C at x4/x8 (C=3 -> 183, C=2 -> 84, C=1 -> 23), 13C^2+2C at x2
  (C=3 -> 123).

Initialisation is PyTorch's default, as in the authors' code. Export: ConvTranspose (kernel 2,
stride 2) and Conv, opset 13, TensorRT 8.2 parses both.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from edgeseg.models.registry import register_head


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1)


@register_head("jnet")
class JNetHead(nn.Module):
    """Cascade + branch + fusion, every 3x3 shared (< 200 parameters for 3 classes at x2/x4/x8)."""

    default_supervision = "deep"  # what `supervision = "auto"` resolves to (the authors train it so)

    def __init__(self, num_classes: int, scale: int, in_channels: int = 1):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"J-Net head scale must be a power of two >= 2, got {scale}")
        self.scale = scale
        self.steps = int(math.log2(scale)) - 1  # stages of the cascade and steps of the branch
        self._build(num_classes)

    def _build(self, c: int) -> None:
        self.refine = _conv3(c, c)  # shared by every stage
        self.up = _up(c, c)  # main stages and the last step
        if self.steps:
            self.branch_up = _up(c, c)
            self.fuse = nn.Conv2d(2 * c, c, kernel_size=1)

    # --- the three parts; the authors' variant overrides them -------------------------------------
    def main_stage(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return self.refine(self.up(x))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.steps):
            x = self.refine(self.branch_up(x))
        return x

    def last(self, skip: torch.Tensor | None, main: torch.Tensor) -> torch.Tensor:
        x = main if skip is None else self.fuse(torch.cat([skip, main], dim=1))
        return self.refine(self.up(x))

    # --- composition ------------------------------------------------------------------------------
    def pyramid(self, logits_lr: torch.Tensor, image_lr: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Logits at 1x, 2x, ..., full resolution (the image is not used: the head sees logits only)."""
        outs = [logits_lr]
        for k in range(self.steps):
            outs.append(self.main_stage(k, outs[-1]))
        skip = self.branch(logits_lr) if self.steps else None
        outs.append(self.last(skip, outs[-1]))
        return outs

    def forward(self, logits_lr: torch.Tensor, image_lr: torch.Tensor | None = None) -> torch.Tensor:
        return self.pyramid(logits_lr, image_lr)[-1]


@register_head("jnet-authors")
class JNetAuthorsHead(JNetHead):
    """The authors' sharing: a stage per main step, the 3x3 shared within the branch, a 2C fusion stage."""

    def _build(self, c: int) -> None:
        self.stages = nn.ModuleList(nn.Sequential(_up(c, c), _conv3(c, c)) for _ in range(self.steps))
        if self.steps:
            self.branch_ups = nn.ModuleList(_up(c, c) for _ in range(self.steps))
            self.branch_refine = _conv3(c, c)
            self.last_up, self.last_refine = _up(2 * c, 2 * c), _conv3(2 * c, c)
        else:
            self.last_up, self.last_refine = _up(c, c), _conv3(c, c)

    def main_stage(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return self.stages[k](x)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        for up in self.branch_ups:
            x = self.branch_refine(up(x))
        return x

    def last(self, skip: torch.Tensor | None, main: torch.Tensor) -> torch.Tensor:
        x = main if skip is None else torch.cat([skip, main], dim=1)
        return self.last_refine(self.last_up(x))
