"""`simulate(model, device, precision, backend, input_shape) -> Prediction`: the public simulator."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edgeseg.latency.device import BYTES, load_device
from edgeseg.latency.fusion import ACTIVATIONS, FusedGraph, fuse
from edgeseg.latency.graph import load_graph
from edgeseg.latency.kernel_time import KernelTime
from edgeseg.latency.roofline import kernel_times, total_seconds

UNRELIABLE_SHARE = 0.10  # above this fraction of the time priced by fallback, the prediction is flagged unreliable


@dataclass(frozen=True)
class Prediction:
    model: str
    input_shape: tuple
    device: str
    backend: str
    requested_precision: str
    precision: str
    warnings: tuple[str, ...]
    total_ms: float
    band_ms: tuple[float, float]  # total x exp(-/+ uncertainty): the fit's log-residual spread
    fps: float
    macs: int
    kernels: int
    weights_bytes: int
    peak_activation_bytes: int
    device_memory_bytes: int
    estimated_ops: tuple[str, ...]
    layers: tuple[KernelTime, ...]
    estimated_share: float = 0.0  # fraction of total_ms priced by the fallback (ops the cost model does not know)
    inference_ms: float = 0.0  # the backend's fixed cost per inference, included in total_ms (not a layer)

    @property
    def peak_memory_bytes(self) -> int:
        return self.weights_bytes + self.peak_activation_bytes

    def top_layers(self, n: int = 10) -> list[KernelTime]:
        return sorted(self.layers, key=lambda k: -k.seconds)[:n]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["peak_memory_bytes"] = self.peak_memory_bytes
        d["layers"] = [dict(asdict(k), bound=k.bound, ms=k.seconds * 1e3) for k in self.layers]
        return d


def peak_activations(fg: FusedGraph, size: int) -> int:
    """Largest set of activation tensors alive at once, walking kernels in order (simple liveness)."""
    g, last = fg.graph, {}
    for i, k in enumerate(fg.kernels):
        for t in k.inputs:
            last[t] = i
    for t in g.outputs:
        last[t] = len(fg.kernels)
    live = {t: g.numel(t) for t in g.inputs}
    peak = sum(live.values())
    for i, k in enumerate(fg.kernels):
        for t in k.outputs:
            live[t] = g.numel(t)
        peak = max(peak, sum(live.values()))
        live = {t: n for t, n in live.items() if last.get(t, -1) > i}
    return peak * size


def default_precision(profile, backend: str | None) -> str:
    """FP16 where the backend runs it natively (TensorRT), else FP32."""
    b = profile.backend(backend)
    return "fp16" if b.precisions.get("fp16") and b.precisions["fp16"].runs_as == "fp16" else "fp32"


def simulate(model, device, precision: str | None = None, backend: str | None = None,
             input_shape: tuple[int, ...] | None = None) -> Prediction:
    """Predict the latency of an ONNX model (path or ModelProto) on a device (name, path or profile)."""
    profile = load_device(device) if isinstance(device, str) else device
    b = profile.backend(backend)
    precision = precision or default_precision(profile, b.name)
    prec, warnings = profile.precision(b.name, precision)
    g = load_graph(model, input_shape)
    fg = fuse(g, b.fused_activations or ACTIVATIONS)
    times = kernel_times(fg, b, prec)
    total = total_seconds(times, b)
    share = sum(t.seconds for t in times if t.estimated) / total if total else 0.0
    if fg.unknown_ops:
        warnings += (f"estimate: the cost model does not know {', '.join(fg.unknown_ops)}; priced from tensor sizes "
                     f"only: {100 * share:.1f} % of the predicted time"
                     + (f" (above {100 * UNRELIABLE_SHARE:.0f} %: the prediction is unreliable)"
                        if share > UNRELIABLE_SHARE else ""),)
    if g.unresolved:
        warnings += (f"control flow not resolved by constant folding: {', '.join(g.unresolved)}; "
                     "its branches/body are not priced",)
    if fg.quantized and prec.name != "int8":
        warnings += (f"the model has Q/DQ nodes; priced as {prec.name.upper()} on {profile.name}/{b.name}",)
    size = BYTES[prec.name]
    weights = sum(fg.graph.numel(t) for t in fg.graph.weights if t in fg.graph.shapes) * size
    u = b.efficiency.uncertainty
    shape = fg.graph.shape(g.inputs[0]) if g.inputs else ()
    return Prediction(g.name, tuple(shape or ()), profile.name, b.name, precision, prec.name, warnings,
                      total * 1e3, (total * 1e3 * math.exp(-u), total * 1e3 * math.exp(u)), 1.0 / total,
                      sum(k.cost.macs for k in fg.kernels), len(times), weights,
                      peak_activations(fg, size), int(profile.memory_gb * 2**30), fg.unknown_ops, times, share,
                      b.efficiency.inference_us * 1e-3)
