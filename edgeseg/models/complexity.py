"""Parameter and MAC counts of a torch model (convolutions and linear layers; the rest is negligible here)."""
from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass for an input of `input_shape` (N=1 recommended)."""
    total = 0

    def conv_hook(module, inputs, output):
        nonlocal total
        k = module.weight.shape[2] * module.weight.shape[3]
        if isinstance(module, nn.ConvTranspose2d):
            # every input pixel scatters a k*k*out/groups patch
            total += inputs[0].numel() * k * module.out_channels // module.groups
        else:
            total += output.numel() * k * module.in_channels // module.groups

    def linear_hook(module, inputs, output):
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
