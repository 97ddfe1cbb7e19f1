"""Layout conversions a runtime inserts: ONNX Runtime CPU runs convs in a blocked NCHWc layout and
reorders tensors at the boundary with ops that only take plain NCHW (PRelu, Elu, DepthToSpace...).

Rules (after ONNX Runtime's NCHWc transformer, in outline; `block` = the backend's `nchwc_block`):
- a Conv runs blocked when it is dense (group 1) with Cin < block or Cin a multiple of 4, or depthwise
  with C a multiple of 4 (ORT's channel alignment; checked against its transformer: Cin 17 or 129 and a
  3-channel depthwise conv stay plain); its output channels are padded up to the block, and so are its
  input channels when Cin >= block (a conv with Cin < block reads the plain tensor directly); a conv
  left plain is priced at the backend's `Conv` op efficiency (im2col + GEMM), a plain grouped conv at
  `GroupedConv` (one small GEMM per group), when the backend has them;
- pooling, Add, Concat, Resize, BatchNormalization... stay blocked when all their inputs are blocked
  tensors whose channels are a multiple of the block (Resize: any blocked tensor); a blocked kernel is
  priced at the backend's `Nchwc<op>` op efficiency when it has one (ORT's NCHWc Upsample is not its Resize);
- a blocked tensor read by a plain op (or a graph output) pays a ReorderOutput, a plain tensor (or graph
  input) read by a blocked op a ReorderInput: the plain tensor read (written) and the blocked one, its
  channels padded up to the block, written (read), plus a launch, and one index op per blocked element
  at the backend's op efficiency for that op when it has one (calibration times both ops on their own).
"""
from __future__ import annotations

from edgeseg.latency.device import BYTES, Backend, Precision
from edgeseg.latency.fusion import FusedGraph, Kernel
from edgeseg.latency.graph import Graph
from edgeseg.latency.kernel_time import KernelTime

NCHWC_OPS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Add", "Sum",
                       "Relu", "Clip", "Concat", "Resize", "Upsample", "BatchNormalization"})
PADDED_OK = frozenset({"Resize", "Upsample"})  # run blocked on a conv's channel-padded output too
ALIGN = 4  # ORT's NCHWc transformer leaves a conv plain when its input channels are not a multiple of this


def _pad(c: int, block: int) -> int:
    return -(-c // block) * block


def _conv_channels(k: Kernel, g: Graph) -> tuple[int, int] | None:
    """(Cin, Cout) of a 2-D Conv kernel, None for anything else."""
    if k.anchor.op != "Conv":
        return None
    x, y = g.shape(k.anchor.inputs[0]) or (), g.shape(k.anchor.outputs[0]) or ()
    return (x[1], y[1]) if len(x) == 4 and len(y) == 4 else None


def blocked_conv(k: Kernel, g: Graph, block: int) -> bool:
    ch = _conv_channels(k, g)
    if ch is None:
        return False
    group, (cin, cout) = k.anchor.attrs.get("group", 1), ch
    if group == 1:
        return cin < block or cin % ALIGN == 0
    return group == cin == cout and cin % ALIGN == 0


def channel_fill(k: Kernel, g: Graph, block: int) -> float:
    """Fraction of a blocked kernel's work spent on real channels (the rest is block padding)."""
    if _conv_channels(k, g) is None:  # e.g. a Resize on a conv's padded output
        c = (g.shape(k.anchor.inputs[0]) or (0, block))[1]
        return c / _pad(c, block)
    cin, cout = _conv_channels(k, g)
    fill = cout / _pad(cout, block)
    return fill * cin / _pad(cin, block) if cin >= block and k.anchor.attrs.get("group", 1) == 1 else fill


def layouts(fg: FusedGraph, block: int) -> tuple[set, set]:
    """(kernels writing blocked tensors, kernels reading blocked tensors), by kernel name."""
    g = fg.graph
    producer = {t: k for k in fg.kernels for t in k.outputs}
    writes, reads = set(), set()
    for k in fg.kernels:  # kernels are in topological order
        if blocked_conv(k, g, block):
            writes.add(k.name)
            if _conv_channels(k, g)[0] >= block:
                reads.add(k.name)
        elif k.anchor.op in NCHWC_OPS and k.inputs and all(
                t in producer and producer[t].name in writes and len(g.shape(t) or ()) == 4
                and (g.shape(t)[1] % block == 0 or k.anchor.op in PADDED_OK) for t in k.inputs):
            writes.add(k.name)
            reads.add(k.name)
    return writes, reads


def boundary_tensors(fg: FusedGraph, block: int = 8, sides: tuple[set, set] | None = None) -> list[tuple[str, str]]:
    """(tensor, "ReorderOutput" | "ReorderInput") for each tensor crossing between the two layouts;
    `sides`: `layouts(fg, block)` when the caller has it already."""
    g = fg.graph
    writes, reads = sides or layouts(fg, block)
    producer = {t: k.name for k in fg.kernels for t in k.outputs}
    users: dict[str, list[str]] = {}
    for k in fg.kernels:
        for t in k.inputs:
            users.setdefault(t, []).append(k.name)
    out = []
    for t in list(g.inputs) + list(producer):
        if len(g.shape(t) or ()) != 4:
            continue
        if producer.get(t) in writes:
            if t in g.outputs or any(u not in reads for u in users.get(t, [])):
                out.append((t, "ReorderOutput"))
        elif any(u in reads for u in users.get(t, [])):
            out.append((t, "ReorderInput"))
    return out


def reorder_times(fg: FusedGraph, backend: Backend, precision: Precision,
                  sides: tuple[set, set] | None = None) -> tuple[KernelTime, ...]:
    eff, size = backend.efficiency, BYTES[precision.name]
    times = []
    for t, op in boundary_tensors(fg, backend.nchwc_block, sides):  # priced as the op itself (costs.py, roofline.py)
        n, rate, c = fg.graph.numel(t), backend.op_efficiency.get(op), fg.graph.shape(t)[1]
        padded = n // c * _pad(c, backend.nchwc_block)  # the blocked side carries the channels padded to the block
        mem = (n + padded) * size / (backend.bandwidth_gbs * 1e9 * eff.memory)
        compute = padded / (precision.peak_gflops * 1e9 * rate * padded / (padded + eff.saturation)) if rate else 0.0
        times.append(KernelTime(f"{op} {t}", (op,), "other", max(mem, compute) + eff.launch_us * 1e-6, compute,
                                mem, padded, (n + padded) * size, False))
    return tuple(times)
