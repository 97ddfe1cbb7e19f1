"""Swap the convolutions of a trained model for QuantConv2d (weight + input-activation quantizers).

Which layers: every nn.Conv2d except, by default, the first conv the input meets and the last conv
of the backbone (the classifier), both kept in float as in Perone et al. and TernaryNet, and the SR
head (< 200 parameters; `quantize_head=True` includes it). Per-layer overrides map module-name globs
to "float" or "w<bits>a<bits>". The activation quantizer sits on the conv's *input*, so the rule is
the same for every registry model whatever its block order (conv-BN-ReLU here, conv-ReLU-BN in Perone).
ConvTranspose2d layers stay in float (none of the quantized paper models use them mid-network).
"""
from __future__ import annotations

import fnmatch
import re
from typing import Callable

import torch
from torch import nn

from edgeseg.errors import EdgesegError


class QuantConv2d(nn.Conv2d):
    """nn.Conv2d whose weight and input pass through fake-quantizers (either may be None = float)."""

    def __init__(self, *args, weight_q: nn.Module | None = None, act_q: nn.Module | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_q = weight_q
        self.act_q = act_q

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, weight_q, act_q) -> "QuantConv2d":
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None, padding_mode=conv.padding_mode,
                weight_q=weight_q, act_q=act_q)
        q.load_state_dict(conv.state_dict(), strict=False)
        return q

    def quantized_weight(self) -> torch.Tensor:
        return self.weight_q(self.weight) if self.weight_q is not None else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_q is not None:
            x = self.act_q(x)
        return self._conv_forward(x, self.quantized_weight(), self.bias)


def execution_order(model: nn.Module, input_shape) -> list[str]:
    """Names of the nn.Conv2d modules in the order a forward pass runs them."""
    order, handles = [], []
    for name, m in model.named_modules():
        if type(m) in (nn.Conv2d, QuantConv2d):
            handles.append(m.register_forward_hook(lambda mod, i, o, n=name: order.append(n) if n not in order else None))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return order


def parse_layer_setting(value: str, where: str) -> tuple[int, int] | None:
    """'float' -> None; 'w4a8' -> (4, 8)."""
    if value == "float":
        return None
    m = re.fullmatch(r"w([2-8])a([2-8])", value)
    if not m:
        raise EdgesegError(f"{where}: layer setting '{value}' must be 'float' or 'w<2-8>a<2-8>', e.g. 'w4a8'")
    return int(m.group(1)), int(m.group(2))


def plan_layers(model: nn.Module, input_shape, default, keep_first_last: bool = True, quantize_head: bool = False,
                layers: dict | None = None) -> dict[str, object]:
    """-> {conv name: setting} for the convs to quantize; `default` is what a layer gets unless overridden."""
    order = execution_order(model, input_shape)
    backbone = [n for n in order if n.startswith("backbone.")] or order
    float_names = {backbone[0], backbone[-1]} if keep_first_last and backbone else set()
    plan = {}
    for name in order:
        setting = default
        if name in float_names or (name.startswith("sr_head.") and not quantize_head):
            setting = None
        for pattern, value in (layers or {}).items():
            if fnmatch.fnmatchcase(name, pattern):
                setting = parse_layer_setting(value, f"layers['{pattern}']") if isinstance(value, str) else value
        if setting is not None:
            plan[name] = setting
    for pattern in layers or {}:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in order):
            raise EdgesegError(f"layers: '{pattern}' matches no conv (convs: {', '.join(order)[:300]})")
    return plan


def swap_convs(model: nn.Module, plan: dict, make: Callable[[str, object], tuple]) -> nn.Module:
    """Replace each planned conv by QuantConv2d; `make(name, setting)` -> (weight_q, act_q)."""
    for name, setting in plan.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        conv = getattr(parent, child)
        weight_q, act_q = make(name, setting)
        setattr(parent, child, QuantConv2d.from_conv(conv, weight_q, act_q))
    return model


def quant_convs(model: nn.Module) -> list[tuple[str, QuantConv2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantConv2d)]


@torch.no_grad()
def calibrate(model: nn.Module, batches) -> None:
    """Run float passes (eval mode) recording activation ranges; then quantization is live."""
    observers = [m for m in model.modules() if hasattr(m, "observing")]
    for o in observers:
        o.observing = True
    was = model.training
    model.eval()
    try:
        for x in batches:
            model(x)
    finally:
        for o in observers:
            o.observing = False
        model.train(was)
