"""TernaryNet (Heinrich et al. 2018) weights and activations, and the binary baseline.

Weights, per output filter (TWN): delta = 0.7 * mean|W|, alpha = mean of |W| above delta,
W_t = alpha * sign(W) * [|W| > delta]; gradients go straight through to full-precision shadow weights.
Binary: W_b = mean|W| * sign(W).

Activations (the input of each quantized conv, as for fixed point): with a per-layer learned scale s,
a = s * tt_beta(x / s), tt_beta(u) = 1/2 tanh(2 beta u - beta) - 1/2 tanh(-2 beta u - beta), a smooth
staircase with steps at u = +-0.5 whose slope beta is raised during training (about 3 -> 8, passed in
with `set_beta`); in eval mode the hard step s * sign(u) * [|u| > 0.5]. Why a scale: in our nets the
conv input follows BN + ReLU, whose output has no fixed unit, so the step must sit where the data is;
s starts at 1.4 * mean|x| (threshold 0.5 s = TWN's 0.7 mean) from calibration and is then learned.
After ReLU only {0, s} is reachable; signed inputs use all three levels. Binary activation: s * tanh(beta u)
while training, s * sign(u) at eval (the paper's sign() baseline; after ReLU it is 1 wherever x > 0).
"""
from __future__ import annotations

import torch
from torch import nn


def tt(u: torch.Tensor, beta: float) -> torch.Tensor:
    """TernaryNet's smooth ternary staircase; tends to sign(u) * [|u| > 0.5] as beta grows."""
    return 0.5 * torch.tanh(2 * beta * u - beta) - 0.5 * torch.tanh(-2 * beta * u - beta)


def hard_ternary(u: torch.Tensor) -> torch.Tensor:
    return torch.sign(u) * (u.abs() > 0.5).to(u.dtype)


def _per_channel(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return v.view((-1,) + (1,) * (w.dim() - 1))


class TernaryWeight(nn.Module):
    bits = 2  # packed 2 bits per weight (1.58 with base-3 packing, 5 trits per byte)

    def integers(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = w.detach().abs().flatten(1)
        delta = 0.7 * a.mean(1)
        mask = a > delta[:, None]
        alpha = (a * mask).sum(1) / mask.sum(1).clamp_min(1)
        q = torch.sign(w.detach()) * (w.detach().abs() > _per_channel(delta, w)).to(w.dtype)
        return q, alpha.clamp_min(1e-12)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q, alpha = self.integers(w)
        return w + (q * _per_channel(alpha, w) - w).detach()


class BinaryWeight(TernaryWeight):
    bits = 1

    def integers(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = w.detach().abs().flatten(1).mean(1).clamp_min(1e-12)
        q = torch.where(w.detach() >= 0, 1.0, -1.0).to(w.dtype)
        return q, alpha


class TernaryAct(nn.Module):
    """s * tt_beta(x / s) while training, hard ternary step at eval; s learned, initialised by calibration."""

    def __init__(self, beta: float = 3.0):
        super().__init__()
        self.beta = float(beta)
        self.observing = False
        self.hard_in_training = False  # BN re-estimation runs train-mode BN on the eval-time (hard) activations
        self.scale = nn.Parameter(torch.ones(()))
        self.register_buffer("abs_sum", torch.zeros(()))
        self.register_buffer("count", torch.zeros(()))

    def _init_scale(self) -> None:
        if float(self.count) > 0:
            with torch.no_grad():
                self.scale.fill_(max(1.4 * float(self.abs_sum / self.count), 1e-4))
            self.count.zero_()

    def soft(self, u: torch.Tensor) -> torch.Tensor:
        return tt(u, self.beta)

    def hard(self, u: torch.Tensor) -> torch.Tensor:
        return hard_ternary(u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            with torch.no_grad():
                self.abs_sum += x.abs().mean()
                self.count += 1
            return x
        self._init_scale()
        s = self.scale.abs().clamp_min(1e-6)
        u = x / s
        return s * (self.soft(u) if self.training and not self.hard_in_training else self.hard(u))

    def onnx_spec(self) -> dict:
        s = float(self.scale.detach().abs().clamp_min(1e-6))
        return {"kind": "qdq", "scale": s, "qmin": -1, "qmax": 1}  # round(u) clamped to [-1, 1] = hard step

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class BinaryAct(TernaryAct):
    def soft(self, u: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.beta * u)

    def hard(self, u: torch.Tensor) -> torch.Tensor:
        return torch.sign(u)

    def onnx_spec(self) -> dict:
        return {"kind": "sign", "scale": float(self.scale.detach().abs().clamp_min(1e-6))}


def set_beta(model: nn.Module, beta: float) -> None:
    for m in model.modules():
        if isinstance(m, TernaryAct):
            m.beta = float(beta)


def beta_schedule(epoch: int, epochs: int, start: float, end: float) -> float:
    """Linear continuation start -> end over the epochs (epoch counts from 0)."""
    return start if epochs <= 1 else start + (end - start) * epoch / (epochs - 1)


@torch.no_grad()
def reestimate_bn(model: nn.Module, batches) -> None:
    """Recompute BN running statistics with the hard (eval-time) activations.

    While training, BN sees the smooth tt_beta staircase; at eval the hard step. Without this the
    running statistics describe inputs the eval network never produces (worst at small beta).
    """
    acts = [m for m in model.modules() if isinstance(m, TernaryAct)]
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [b.momentum for b in bns]
    for a in acts:
        a.hard_in_training = True
    for b in bns:
        b.reset_running_stats()
        b.momentum = None  # cumulative average over the batches
    was = model.training
    model.train()
    try:
        for x in batches:
            model(x)
    finally:
        for a in acts:
            a.hard_in_training = False
        for b, m in zip(bns, momenta):
            b.momentum = m
        model.train(was)
