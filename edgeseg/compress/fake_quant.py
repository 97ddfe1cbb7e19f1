"""Uniform fake-quantizers with straight-through gradients, any bit width 2-8.

Weights: symmetric, one scale per output channel, s = max|W_c| / (2^(b-1) - 1), integers in
[-(2^(b-1) - 1), 2^(b-1) - 1] (a 2-bit weight is {-s, 0, s}). With `pow2=True` the scale is rounded up
to a power of two, i.e. true fixed point Q0.f per channel; with `per_layer=True` too, one Q-format for
the whole layer (Perone et al.'s fixed point); the default float scale
is what TensorRT / ONNX Runtime per-channel INT8 use and loses less. Gradient: identity (Perone's
rule); nothing is clipped because the scale covers the channel's range.

Activations (the input of a quantized conv): unsigned [0, r] when calibration never saw a negative
value (after ReLU), else symmetric [-r, r]; r is the running max (EMA in training, frozen in eval).
Gradient: identity inside the clamp range, 0 outside (clipped straight-through estimator).
Both round half to even, as torch.round and ONNX QuantizeLinear do.
"""
from __future__ import annotations

import math

import torch
from torch import nn

BITS = range(2, 9)


def check_bits(bits: int, what: str) -> int:
    if int(bits) not in BITS:
        raise ValueError(f"{what} bits must be 2..8, got {bits}")
    return int(bits)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round() forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def pow2_ceil(scale: torch.Tensor) -> torch.Tensor:
    return torch.exp2(torch.ceil(torch.log2(scale)))


class WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric weight quantizer (dim 0 = output channels)."""

    def __init__(self, bits: int, pow2: bool = False, per_layer: bool = False):
        super().__init__()
        self.bits = check_bits(bits, "weight")
        self.pow2 = bool(pow2)
        self.per_layer = bool(per_layer)

    def scale_count(self, out_channels: int) -> int:
        """Scales stored for the layer (1 per layer, or 1 per output channel)."""
        return 1 if self.per_layer else out_channels

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1

    def scale(self, w: torch.Tensor) -> torch.Tensor:
        amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
        if self.per_layer:  # one Q-format for the whole layer, repeated per channel for the export's axis-0 scale
            amax = amax.max().expand_as(amax)
        s = amax / self.qmax
        return pow2_ceil(s) if self.pow2 else s

    def integers(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (integer levels as float tensor shaped like w, per-channel scale (C,))."""
        s = self.scale(w)
        shape = (-1,) + (1,) * (w.dim() - 1)
        return torch.clamp(torch.round(w.detach() / s.view(shape)), -self.qmax, self.qmax), s

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q, s = self.integers(w)
        return w + (q * s.view((-1,) + (1,) * (w.dim() - 1)) - w).detach()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, pow2={self.pow2}, per_layer={self.per_layer}"


class ActFakeQuant(nn.Module):
    """Per-tensor activation quantizer with a calibrated range (EMA of the batch max while training)."""

    def __init__(self, bits: int, pow2: bool = False, momentum: float = 0.9):
        super().__init__()
        self.bits = check_bits(bits, "activation")
        self.pow2 = bool(pow2)
        self.momentum = momentum
        self.observing = False  # calibration: record ranges, pass values through unchanged
        self.register_buffer("range", torch.zeros(()))
        self.register_buffer("signed", torch.zeros((), dtype=torch.bool))

    def bounds(self) -> tuple[int, int]:
        if bool(self.signed):
            return -(2 ** (self.bits - 1) - 1), 2 ** (self.bits - 1) - 1
        return 0, 2 ** self.bits - 1

    def scale(self) -> torch.Tensor:
        s = self.range.clamp_min(1e-8) / self.bounds()[1]
        return pow2_ceil(s) if self.pow2 else s

    @torch.no_grad()
    def observe(self, x: torch.Tensor, ema: bool) -> None:
        if bool((x < 0).any()):
            self.signed.fill_(True)
        batch = x.abs().max() if bool(self.signed) else x.clamp_min(0).max()
        if ema and float(self.range) > 0:
            self.range.mul_(self.momentum).add_((1 - self.momentum) * batch)
        else:
            self.range.copy_(torch.maximum(self.range, batch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.observe(x, ema=False)
            return x
        if self.training:
            self.observe(x, ema=True)
        qmin, qmax = self.bounds()
        s = self.scale()
        y = torch.clamp(x, qmin * s, qmax * s)  # gradient 0 outside the range
        return y + (torch.round(y / s) * s - y).detach()

    def onnx_spec(self) -> dict:
        qmin, qmax = self.bounds()
        return {"kind": "qdq", "scale": float(self.scale()), "qmin": qmin, "qmax": qmax}

    def extra_repr(self) -> str:
        return f"bits={self.bits}, pow2={self.pow2}"


def levels_per_channel(q: torch.Tensor) -> int:
    """Largest number of distinct values in any output channel (tests, reports)."""
    return max(len(torch.unique(c)) for c in q.detach().flatten(1))


def packed_bits(levels: int) -> int:
    """Bits needed to store one of `levels` values."""
    return max(1, math.ceil(math.log2(levels)))
