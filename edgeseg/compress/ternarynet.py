"""TernaryNet the paper's way (Heinrich et al. 2018): conv -> BN -> tt_beta in place of every ReLU.

The activation works in BN units: no scale of its own, steps at +-0.5, output in {-1, 0, +1}
(binary baseline: sign, {-1, +1}); the next conv's weight scale and BN absorb the unit. While
training, the forward pass is already the hard step and the backward pass is the derivative of the
smooth staircase tt_beta(u) = 1/2 tanh(2 beta u - beta) - 1/2 tanh(-2 beta u - beta) (binary:
tanh(beta u)), a straight-through estimator whose slope beta rises over training (`set_beta`). So BN
sees in training exactly what it sees at test time (`surrogate = "clipped"`: the plain STE, gradient 1 on
|u| <= 1, instead of the staircase's slope). `ste=False` trains with the smooth forward
instead (the authors' released script), hard at eval.
Weights: TWN ternary / sign binary per output filter (edgeseg.compress.ternary), first conv and the
classifier in float, as in the paper. `float_last_act`: the activation feeding the classifier stays a float ReLU,
as in the authors' script (its last conv c7b is followed by F.relu, not the step).
"""
from __future__ import annotations

import torch
from torch import nn

from edgeseg.compress.ternary import hard_ternary, tt


def tt_grad(u: torch.Tensor, beta: float) -> torch.Tensor:
    """d tt_beta / du."""
    a, b = torch.tanh(2 * beta * u - beta), torch.tanh(-2 * beta * u - beta)
    return beta * (1 - a * a) + beta * (1 - b * b)


def tanh_grad(u: torch.Tensor, beta: float) -> torch.Tensor:
    t = torch.tanh(beta * u)
    return beta * (1 - t * t)


SURROGATES = ("staircase", "clipped")


class _Ste(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta: float, ternary: bool, surrogate: str = "staircase"):
        ctx.save_for_backward(x)
        ctx.beta, ctx.ternary, ctx.surrogate = beta, ternary, surrogate
        return hard_ternary(x) if ternary else torch.sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.surrogate == "clipped":  # plain straight-through: 1 inside [-1, 1], 0 outside
            slope = (x.abs() <= 1).to(grad.dtype)
        else:
            slope = tt_grad(x, ctx.beta) if ctx.ternary else tanh_grad(x, ctx.beta)
        return grad * slope, None, None, None


class SignedTernary(nn.Module):
    """tt_beta in BN units: hard {-1, 0, +1} forward, smooth-staircase gradient (or smooth forward, `ste=False`)."""

    levels = 3

    def __init__(self, beta: float = 3.0, ste: bool = True, surrogate: str = "staircase"):
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, not '{surrogate}'")
        self.beta, self.ste, self.surrogate = float(beta), bool(ste), surrogate

    def soft(self, x: torch.Tensor) -> torch.Tensor:
        return tt(x, self.beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return _Ste.apply(x, self.beta, self.levels == 3).detach()
        return _Ste.apply(x, self.beta, self.levels == 3, self.surrogate) if self.ste else self.soft(x)

    def onnx_spec(self) -> dict:
        return {"kind": "qdq", "scale": 1.0, "qmin": -1, "qmax": 1}  # round(clip(u, -1, 1)): 0 for |u| <= 0.5

    def extra_repr(self) -> str:
        return f"beta={self.beta}, ste={self.ste}, surrogate={self.surrogate}"


class SignedBinary(SignedTernary):
    """sign in BN units: {-1, +1} forward, tanh(beta u) gradient."""

    levels = 2

    def soft(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.beta * x)

    def onnx_spec(self) -> dict:
        return {"kind": "sign", "scale": 1.0}


def replace_relus(model: nn.Module, make, prefix: str = "backbone.", keep_last: bool = False) -> list[str]:
    """Every nn.ReLU / nn.ReLU6 under `prefix` -> make(); -> the replaced module names. `keep_last`: the last one
    (in registration order: for the backbones here the classifier's input) stays a float ReLU."""
    relus = [n for n, m in model.named_modules() if n.startswith(prefix) and type(m) in (nn.ReLU, nn.ReLU6)]
    names = relus[:-1] if keep_last else relus
    for name in names:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, make())
    return names


def set_beta(model: nn.Module, beta: float) -> None:
    for m in model.modules():
        if isinstance(m, SignedTernary):
            m.beta = float(beta)


@torch.no_grad()
def activation_levels(model: nn.Module, x: torch.Tensor) -> dict[str, dict[float, float]]:
    """Share of each output value of every SignedTernary/SignedBinary on input x (eval mode)."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.setdefault(n, o.detach()))
             for n, m in model.named_modules() if isinstance(m, SignedTernary)]
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    out = {}
    for n, o in seen.items():
        values, counts = torch.unique(o, return_counts=True)
        out[n] = {float(v): float(c) / o.numel() for v, c in zip(values, counts)}
    return out
