"""Compressed model -> ONNX that ONNX Runtime runs, and its Dice there.

Quantized models (fixed point, ternary, binary): every QuantConv2d becomes DequantizeLinear(int8
initializer holding the low-bit integers, per-channel float scale, axis 0) -> Conv, its input
Clip(qmin*s, qmax*s) -> QuantizeLinear -> DequantizeLinear with the exact scale and zero point 0
(uint8 container when unsigned, int8 when signed; the Clip gives the low-bit saturation an 8-bit
container lacks); a binary activation is Sign -> Mul(s). The conv bias is a separate Add, kept in float. A BatchNorm2d right after a quantized conv
is folded into that conv's per-channel scale and bias (integers unchanged), as a deployment would.
Opset 13 by default (what the Jetson Nano's TensorRT parses); `int4_weights` rewrites the weight
initializers to INT4 at opset 21 where they fit. Tucker models are ordinary float models: they go
through the export package (ONNX -> onnxsim -> INT8 QDQ) like any other.
"""
from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


class _ActQDQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float, qmin: int, qmax: int):
        s = torch.tensor(scale, dtype=x.dtype)
        return torch.clamp(torch.round(torch.clamp(x, qmin * s, qmax * s) / s), qmin, qmax) * s

    @staticmethod
    def symbolic(g, x, scale, qmin, qmax):
        f = lambda v: g.op("Constant", value_t=torch.tensor(v, dtype=torch.float32))  # noqa: E731
        zp = g.op("Constant", value_t=torch.tensor(0, dtype=torch.int8 if qmin < 0 else torch.uint8))
        x = g.op("Clip", x, f(qmin * scale), f(qmax * scale))
        q = g.op("QuantizeLinear", x, f(scale), zp)
        return g.op("DequantizeLinear", q, f(scale), zp)


class _ActSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float):
        return torch.sign(x) * scale

    @staticmethod
    def symbolic(g, x, scale):
        return g.op("Mul", g.op("Sign", x), g.op("Constant", value_t=torch.tensor(scale, dtype=torch.float32)))


class _WeightDQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w_int, scale, zero):
        return w_int.to(torch.float32) * scale.view(-1, 1, 1, 1)

    @staticmethod
    def symbolic(g, w_int, scale, zero):
        return g.op("DequantizeLinear", w_int, scale, zero, axis_i=0)


class ExportQConv(nn.Module):
    """Export form of a QuantConv2d: int8 weight buffer + per-channel scale (+ folded BN), activation spec."""

    def __init__(self, qconv, bn: nn.BatchNorm2d | None = None):
        super().__init__()
        if qconv.weight_q is None:
            raise ValueError("a QuantConv2d without weight quantizer cannot be exported as QDQ")
        q, s = qconv.weight_q.integers(qconv.weight.detach())
        bias = qconv.bias.detach().clone() if qconv.bias is not None else torch.zeros(qconv.out_channels)
        if bn is not None:
            k = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            bias = (bias - bn.running_mean) * k + bn.bias.detach()
            q = q * torch.sign(k).view(-1, 1, 1, 1)  # keep scales positive
            s = s * k.abs()
        self.register_buffer("w_int", q.round().to(torch.int8))
        self.register_buffer("w_scale", s.to(torch.float32).contiguous())
        self.register_buffer("w_zero", torch.zeros(len(s), dtype=torch.int8))
        self.register_buffer("bias", bias.to(torch.float32))
        self.conv = dict(stride=qconv.stride, padding=qconv.padding, dilation=qconv.dilation, groups=qconv.groups)
        self.act = qconv.act_q.onnx_spec() if qconv.act_q is not None else None

    def forward(self, x):
        if self.act is not None and self.act["kind"] == "qdq":
            x = _ActQDQ.apply(x, self.act["scale"], self.act["qmin"], self.act["qmax"])
        elif self.act is not None:
            x = _ActSign.apply(x, self.act["scale"])
        w = _WeightDQ.apply(self.w_int, self.w_scale, self.w_zero)
        # bias as a separate Add: ORT's WeightBiasQuantization would otherwise round a Conv's bias onto the
        # int32 accumulator grid (s_x * s_w), which flips hard ternary thresholds; TensorRT keeps bias in float too
        return nn.functional.conv2d(x, w, None, **self.conv) + self.bias.view(1, -1, 1, 1)


class ExportAct(nn.Module):
    """Export form of a stand-alone activation quantizer (TernaryNet placement: in place of a ReLU)."""

    def __init__(self, act):
        super().__init__()
        self.act = act.onnx_spec()

    def forward(self, x):
        if self.act["kind"] == "qdq":
            return _ActQDQ.apply(x, self.act["scale"], self.act["qmin"], self.act["qmax"])
        return _ActSign.apply(x, self.act["scale"])


def export_form(model: nn.Module) -> nn.Module:
    """A copy of `model` with every QuantConv2d replaced by ExportQConv (BN folded where it follows)."""
    from edgeseg.compress.qat import QuantConv2d

    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            child = parent._modules[name]
            if hasattr(child, "onnx_spec") and not isinstance(parent, QuantConv2d):
                parent._modules[name] = ExportAct(child)
                continue
            if not isinstance(child, QuantConv2d):
                continue
            nxt = parent._modules[names[i + 1]] if isinstance(parent, nn.Sequential) and i + 1 < len(names) else None
            bn = nxt if isinstance(nxt, nn.BatchNorm2d) else None
            parent._modules[name] = ExportQConv(child, bn)
            if bn is not None:
                parent._modules[names[i + 1]] = nn.Identity()
    return model


def export_qdq(model: nn.Module, contract, path: str | Path, opset: int = 13, precision: str = "qdq") -> Path:
    """QAT/ternary/binary torch model -> QDQ ONNX with the contract in its metadata; checked by onnx.checker."""
    import onnx

    from edgeseg.export.to_onnx import set_metadata
    from edgeseg.export.validate import save_checked

    path = Path(path)
    _, c, h, w = contract.input_shape
    x = torch.zeros(1, int(c), int(h), int(w))
    form = export_form(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(form, (x,), str(path), dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=[contract.input_name], output_names=[contract.output_name])
    proto = onnx.load(str(path))
    set_metadata(proto, dataclasses.replace(contract, precision=precision))
    return save_checked(proto, path)


def pack_int4(values: np.ndarray) -> bytes:
    """Two's-complement nibbles, two per byte, first element in the low nibble (ONNX INT4 raw layout)."""
    v = (np.asarray(values, dtype=np.int8).ravel() & 0x0F).astype(np.uint8)
    if len(v) % 2:
        v = np.append(v, np.uint8(0))
    return (v[0::2] | (v[1::2] << 4)).tobytes()


def int4_weights(src: str | Path, dst: str | Path) -> dict:
    """Opset 21: each DequantizeLinear whose INT8 weight initializer fits [-8, 7] gets INT4 weight and zero point."""
    import onnx
    from onnx import helper, numpy_helper, version_converter

    from edgeseg.export.validate import save_checked

    model = version_converter.convert_version(onnx.load(str(src)), 21)
    inits = {i.name: i for i in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 3 or node.input[0] not in inits or node.input[1] not in inits:
            continue
        w = inits[node.input[0]]
        values = numpy_helper.to_array(w)
        if w.data_type != onnx.TensorProto.INT8 or values.min() < -8 or values.max() > 7:
            continue
        zero = np.zeros(numpy_helper.to_array(inits[node.input[1]]).shape, dtype=np.int8)  # our zero points are 0
        w.CopyFrom(helper.make_tensor(w.name, onnx.TensorProto.INT4, values.shape, pack_int4(values), raw=True))
        zname = f"{node.input[0]}_zero_int4"
        model.graph.initializer.append(helper.make_tensor(zname, onnx.TensorProto.INT4, zero.shape, pack_int4(zero), raw=True))
        node.input[2] = zname
        changed += 1
    save_checked(model, dst)
    return {"opset": 21, "int4_weights": changed}


def ort_predict(path: str | Path, lowres: np.ndarray) -> np.ndarray:
    """(N, h, w) low-res slices -> (N, H, W) uint8 labels through ONNX Runtime (1 thread, batch 1)."""
    from edgeseg.export.simplify import ort_session, run_onnx

    logits = run_onnx(ort_session(path), np.ascontiguousarray(lowres[:, None], dtype=np.float32))
    return logits.argmax(1).astype(np.uint8)


def ort_dice(path: str | Path, slice_set, scale: int) -> float:
    from edgeseg.metrics import mean_foreground_dice

    pred = ort_predict(path, slice_set.lowres(scale))
    return mean_foreground_dice(pred, slice_set.label, len(slice_set.class_names))
