"""Honest weight storage: packed bits x parameters, plus the float scales the low-bit values need.

FP32 model: 32 bits x every parameter. Compressed: each quantized conv weight costs its packed bits
(fixed point b, ternary 2, binary 1) plus one 32-bit scale per output channel (one per layer with a
per-layer Q-format); its input-activation
quantizer one 32-bit scale; every other parameter (biases, BN affine, float layers, SR head) 32 bits.
BN running statistics are not counted in either (they fold into the conv at export).
"""
from __future__ import annotations

from torch import nn


def fp32_storage(model: nn.Module) -> dict:
    """The float model's storage: 32 bits x every parameter."""
    bits = 32 * sum(p.numel() for p in model.parameters())
    return {"bits": bits, "kb": bits / 8 / 1024}


def storage(model: nn.Module) -> dict:
    """-> {'bits', 'kb', 'quantized_weights', 'quantized_bits', 'float_params', 'scales'} for any model."""
    from edgeseg.compress.qat import QuantConv2d

    quant_bits = quant_weights = scales = 0
    counted = set()
    for m in model.modules():
        if isinstance(m, QuantConv2d):
            if m.weight_q is not None:
                quant_weights += m.weight.numel()
                quant_bits += m.weight_q.bits * m.weight.numel()
                scales += m.weight_q.scale_count(m.out_channels) if hasattr(m.weight_q, "scale_count") else m.out_channels
                counted.add(id(m.weight))
            if m.act_q is not None:
                scales += 1
                counted.update(id(p) for p in m.act_q.parameters())
    float_params = sum(p.numel() for p in model.parameters() if id(p) not in counted)
    bits = quant_bits + 32 * (scales + float_params)
    return {"bits": int(bits), "kb": bits / 8 / 1024, "quantized_weights": int(quant_weights),
            "quantized_bits": int(quant_bits), "float_params": int(float_params), "scales": int(scales)}
