"""Layout conversions a runtime inserts: ONNX Runtime CPU runs convs in a blocked NCHWc layout and
reorders tensors at the boundary with ops that only take plain NCHW (PRelu, Elu, DepthToSpace...).

Backends with `layout_reorders = true` pay, per boundary tensor, one read and one write of the tensor
plus a kernel launch. The rule follows ONNX Runtime's NCHWc transformer in outline only.
"""
from __future__ import annotations

from edgeseg.latency.device import BYTES, Backend, Precision
from edgeseg.latency.fusion import FusedGraph
from edgeseg.latency.roofline import KernelTime

NCHWC_OPS = frozenset({"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Add", "Sum",
                       "Relu", "Clip", "Concat", "Resize", "Upsample", "BatchNormalization"})
BLOCK = 8  # channels per NCHWc block; tensors with other channel counts stay NCHW


def boundary_tensors(fg: FusedGraph) -> list[str]:
    """Tensors crossing between an NCHWc kernel (rooted at a Conv region) and a plain-layout one."""
    g = fg.graph
    producer = {t: k for k in fg.kernels for t in k.outputs}
    consumers: dict[str, list] = {}
    for k in fg.kernels:
        for t in k.inputs:
            consumers.setdefault(t, []).append(k)
    blocked = {k.name for k in fg.kernels if k.anchor.op == "Conv"}
    changed = True
    while changed:  # NCHWc spreads from convs through ops that accept it
        changed = False
        for k in fg.kernels:
            if k.name not in blocked and k.anchor.op in NCHWC_OPS and any(
                    t in producer and producer[t].name in blocked for t in k.inputs):
                blocked.add(k.name)
                changed = True
    out = []
    for t, k in producer.items():
        shape = g.shape(t) or ()
        if len(shape) != 4 or shape[1] % BLOCK:
            continue
        users = consumers.get(t, [])
        plain_users = [u for u in users if u.name not in blocked] + ([None] if t in g.outputs else [])
        if k.name in blocked and plain_users:
            out.append(t)
        elif k.name not in blocked and any(u.name in blocked for u in users):
            out.append(t)
    return out


def reorder_times(fg: FusedGraph, backend: Backend, precision: Precision) -> tuple[KernelTime, ...]:
    eff, size = backend.efficiency, BYTES[precision.name]
    times = []
    for t in boundary_tensors(fg):
        nbytes = 2 * fg.graph.numel(t) * size
        mem = nbytes / (backend.bandwidth_gbs * 1e9 * eff.memory)
        times.append(KernelTime(f"reorder {t}", ("Reorder",), "other", mem + eff.launch_us * 1e-6, 0.0, mem,
                                0, nbytes, False))
    return tuple(times)
