"""Post-training Tucker-2 decomposition of conv kernels (Weber et al. 2024), numpy/torch SVD only.

A k x k conv W (C_out, C_in, k, k) becomes 1x1 (C_in -> R_in, no bias) -> k x k core (R_in -> R_out,
original stride/padding/dilation) -> 1x1 (R_out -> C_out, original bias). Factors: HOSVD of the
mode-0 and mode-1 unfoldings, then `hooi_iters` HOOI sweeps. Ranks: a global factor DF,
R = ceil(C * DF) floored at `min_rank` and capped at C (Weber's rule), or the smallest rank keeping
`energy` of the squared singular values of each unfolding; then rounded up to a multiple of
`rank_multiple`. ConvTranspose2d (groups 1) is decomposed the same way (1x1 -> transposed core -> 1x1).
Grouped / depthwise convs and layers where the three pieces would not have fewer parameters than the
original are left as they are.
"""
from __future__ import annotations

import fnmatch
import math

import torch
from torch import nn


def _unfold(w: torch.Tensor, mode: int) -> torch.Tensor:
    return w.movedim(mode, 0).reshape(w.shape[mode], -1)


def _leading(m: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    u, s, _ = torch.linalg.svd(m, full_matrices=False)
    return u[:, :rank], s


def tucker2(w: torch.Tensor, r_out: int, r_in: int, hooi_iters: int = 2):
    """w (C_out, C_in, kh, kw) float64-safe -> (core (r_out, r_in, kh, kw), U_out (C_out, r_out), U_in (C_in, r_in))."""
    w = w.detach().double()
    u_out, _ = _leading(_unfold(w, 0), r_out)
    u_in, _ = _leading(_unfold(w, 1), r_in)
    for _ in range(hooi_iters):
        u_out, _ = _leading(_unfold(torch.einsum("oikl,is->oskl", w, u_in), 0), r_out)
        u_in, _ = _leading(_unfold(torch.einsum("oikl,or->rikl", w, u_out), 1), r_in)
    core = torch.einsum("oikl,or,is->rskl", w, u_out, u_in)
    return core, u_out, u_in


def rank_for(c: int, singular_values: torch.Tensor, df: float, energy: float, min_rank: int, multiple: int = 1) -> int:
    """`multiple` > 1 rounds up: ONNX Runtime's x86 CPU kernels run convs in a channel-blocked layout (8 channels
    with AVX2) only when the channel counts divide by the block; other ranks leave the layout, and the reorders cost
    more than the MACs saved (docs/compression.md, Tucker)."""
    if energy > 0:
        e = torch.cumsum(singular_values.double() ** 2, 0)
        r = int(torch.searchsorted(e / e[-1], torch.tensor(energy, dtype=e.dtype)).item()) + 1
    else:
        r = math.ceil(c * df)
    r = max(r, min_rank)
    return max(1, min(c, multiple * math.ceil(r / multiple)))


def decomposed_params(c_out: int, c_in: int, k: int, r_out: int, r_in: int, bias: bool) -> int:
    """Parameters of 1x1 (C_in->R_in) + k x k core (R_in->R_out) + 1x1 (R_out->C_out, bias)."""
    return c_in * r_in + r_in * r_out * k + r_out * c_out + (c_out if bias else 0)


def decompose_conv(conv: nn.Module, df: float = 0.5, energy: float = 0.0, min_rank: int = 4, hooi_iters: int = 2,
                   ranks: tuple[int, int] | None = None, force: bool = False, rank_multiple: int = 1) -> nn.Module | None:
    """-> nn.Sequential replacing `conv`, or None when it is skipped (grouped, or no parameter saving unless `force`)."""
    transposed = isinstance(conv, nn.ConvTranspose2d)
    if conv.groups != 1 or getattr(conv, "padding_mode", "zeros") != "zeros":
        return None
    w = conv.weight.detach()
    if transposed:  # (C_in, C_out, kh, kw) -> (C_out, C_in, kh, kw)
        w = w.transpose(0, 1)
    c_out, c_in, kh, kw = w.shape
    if ranks is None:
        s_out = torch.linalg.svdvals(_unfold(w.double(), 0))
        s_in = torch.linalg.svdvals(_unfold(w.double(), 1))
        ranks = tuple(rank_for(c, sv, df, energy, min_rank, rank_multiple) for c, sv in ((c_out, s_out), (c_in, s_in)))
    r_out, r_in = ranks
    bias = conv.bias is not None
    if not force and decomposed_params(c_out, c_in, kh * kw, r_out, r_in, bias) >= sum(p.numel() for p in conv.parameters()):
        return None
    core, u_out, u_in = tucker2(w, r_out, r_in, hooi_iters)
    dtype = conv.weight.dtype
    first = nn.Conv2d(c_in, r_in, 1, bias=False)
    first.weight.data = u_in.t().reshape(r_in, c_in, 1, 1).to(dtype).contiguous()
    if transposed:
        mid = nn.ConvTranspose2d(r_in, r_out, (kh, kw), stride=conv.stride, padding=conv.padding,
                                 output_padding=conv.output_padding, dilation=conv.dilation, bias=False)
        mid.weight.data = core.transpose(0, 1).to(dtype).contiguous()
    else:
        mid = nn.Conv2d(r_in, r_out, (kh, kw), stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=False)
        mid.weight.data = core.to(dtype).contiguous()
    last = nn.Conv2d(r_out, c_out, 1, bias=bias)
    last.weight.data = u_out.reshape(c_out, r_out, 1, 1).to(dtype).contiguous()
    if bias:
        last.bias.data = conv.bias.detach().clone()
    return nn.Sequential(first, mid, last)


def decompose_model(model: nn.Module, df: float = 0.5, energy: float = 0.0, min_rank: int = 4, hooi_iters: int = 2,
                    skip: tuple[str, ...] = (), rank_multiple: int = 1) -> list[dict]:
    """Decompose every eligible conv of `model` in place; -> one record per conv (decomposed or why not).
    `rank_multiple`: see `rank_for`."""
    records = []
    targets = [(n, m) for n, m in model.named_modules() if type(m) in (nn.Conv2d, nn.ConvTranspose2d)]
    for name, conv in targets:
        before = sum(p.numel() for p in conv.parameters())
        if any(fnmatch.fnmatchcase(name, p) for p in skip):
            records.append({"layer": name, "params": before, "decomposed": False, "why": "skip list"})
            continue
        new = decompose_conv(conv, df, energy, min_rank, hooi_iters, rank_multiple=rank_multiple)
        if new is None:
            why = "grouped" if conv.groups != 1 else "no parameter saving"
            records.append({"layer": name, "params": before, "decomposed": False, "why": why})
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
        records.append({"layer": name, "params": before, "decomposed": True, "params_after": sum(p.numel() for p in new.parameters()),
                        "ranks": [new[1].weight.shape[1 if isinstance(new[1], nn.ConvTranspose2d) else 0],
                                  new[0].weight.shape[0]]})
    return records
