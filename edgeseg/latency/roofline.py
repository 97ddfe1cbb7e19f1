"""Per-kernel time on a device: a roofline with shape-dependent efficiency plus a fixed launch cost.

    t = max(FLOPs / (gain x peak x eff_class x util), bytes / (bandwidth x eff_memory)) + launch_us
    (backends with `launch_overlaps`: t = max(compute, memory, launch_us), the host enqueuing ahead of the GPU)
    util = work / (work + saturation) x min(1, K / 32) x min(1, Cout / tile_channels)

`gain` is the backend's `winograd_gain` for dense 3x3 stride-1 convs (the multiplies Winograd saves, a
constant of the algorithm: 2.25 for F(2x2,3x3)), 1 otherwise, so every efficiency is a fraction of the peak <= 1.

Concat traffic is scaled by eff_concat (0 when the runtime writes producers into the output in place).
`work` is the kernel's output elements (small feature maps cannot fill the machine), K the reduction
length per output (MACs per output element: small-channel convs and depthwise convs starve the ALUs),
Cout the output channels of a conv/gemm (depthwise convs excepted: their own efficiency covers this) (a GPU GEMM tile is ~64 channels wide, a CPU
micro-kernel ~8; fewer channels leave part of it idle; `tile_channels` is a fixed, documented profile value).
eff_class comes from the op class (dense 3x3 conv, other conv, depthwise, gemm, standalone
activation, resize, other), or from the backend's `op_efficiency` table when it names the kernel's op
(plain-layout ops whose speed no class shares, e.g. PRelu or DepthToSpace on ONNX Runtime CPU, each
measured by its own calibration probe); the values are fitted per device (fit.py) and stored in the
device profile. On backends with layout reorders, a blocked conv's channel fill (layout.py: padding
to the NCHWc block) replaces the Cout / tile_channels factor; other blocked kernels' times are divided by it.
"""
from __future__ import annotations

from edgeseg.latency.device import BYTES, Backend, Precision
from edgeseg.latency.fusion import ACTIVATIONS, Kernel
from edgeseg.latency.graph import Graph
from edgeseg.latency.kernel_time import KernelTime
from edgeseg.latency.layout import channel_fill, layouts, reorder_times

COPIES = frozenset({"Concat"})  # ops a runtime may elide by writing producers in place
K_FULL = 32  # reduction length at which a conv/gemm stops being starved
GEMM_SHAPED = frozenset({"conv3x3", "conv", "gemm"})  # depthwise & co: their own efficiency covers it
CHANNEL_AXIS = {"gemm": -1}  # where the output channels are (conv: axis 1)


def _conv_class(k: Kernel, g: Graph) -> str:
    a = k.anchor.attrs
    groups = a.get("group", 1)
    cin = (g.shape(k.anchor.inputs[0]) or (0, 0))[1]
    if groups > 1 and groups == cin:
        return "depthwise"
    w = g.shape(k.anchor.inputs[1]) or ()
    dense3 = tuple(w[2:]) == (3, 3) and groups == 1
    if dense3 and set(a.get("strides", [1])) == {1} and set(a.get("dilations", [1])) == {1}:
        return "conv3x3"
    return "conv"


CLASSIFY = {
    "Conv": _conv_class,
    "ConvTranspose": lambda k, g: "conv",
    "Gemm": lambda k, g: "gemm",
    "MatMul": lambda k, g: "gemm",
    "Resize": lambda k, g: "resize",
    "Upsample": lambda k, g: "resize",
    **{op: (lambda k, g: "activation") for op in ACTIVATIONS | {"Relu6", "Mish", "Gelu", "Erf", "Softplus"}},
}


def op_class(k: Kernel, g: Graph) -> str:
    fn = CLASSIFY.get(k.anchor.op)
    return fn(k, g) if fn else "other"


def kernel_time(k: Kernel, g: Graph, backend: Backend, precision: Precision, fill: float | None = None,
                op: str | None = None) -> KernelTime:
    """`fill`: fraction of the GEMM tile doing real work, when the layout knows it (else Cout / tile_channels);
    `op`: the op_efficiency key when not the anchor's op type (layout.py: `Nchwc<op>` for blocked kernels)."""
    eff, c = backend.efficiency, k.cost
    size = BYTES[precision.name]
    nbytes = (c.read + c.written + c.weights) * size * (eff.concat if k.anchor.op in COPIES else 1.0)
    out = g.numel(k.anchor.outputs[0]) if k.anchor.outputs else 0
    work = max(out, 1)
    kdim = c.macs / work if c.macs else K_FULL
    cls = op_class(k, g)
    out_shape = g.shape(k.anchor.outputs[0]) or ()
    cout = out_shape[CHANNEL_AXIS.get(cls, 1)] if cls != "other" and len(out_shape) > 1 else eff.tile_channels
    util = work / (work + eff.saturation)
    if cls in GEMM_SHAPED:  # short reductions and narrow outputs waste the GEMM tile
        util *= min(1.0, kdim / K_FULL) * (min(1.0, cout / eff.tile_channels) if fill is None else fill)
    rate = precision.peak_gflops * 1e9 * backend.op_efficiency.get(op or k.anchor.op, getattr(eff, cls)) * max(util, 1e-6)
    compute = c.flops / rate / (backend.winograd_gain if cls == "conv3x3" else 1.0)  # Winograd: fewer multiplies
    memory = nbytes / (backend.bandwidth_gbs * 1e9 * eff.memory)
    if fill is not None and cls not in GEMM_SHAPED:  # other blocked kernels move the padding channels too
        compute, memory = compute / fill, memory / fill
    launch = eff.launch_us * 1e-6
    # a GPU runtime enqueues kernel k+1 while kernel k runs: the host's per-kernel cost shows only where it is longer
    total = max(compute, memory, launch) if backend.launch_overlaps else max(compute, memory) + launch
    if k.anchor.op in COPIES and eff.concat == 0:  # concatenated in place (TensorRT): no kernel at all
        total = compute = memory = 0.0
    return KernelTime(k.name, k.ops, cls, total, compute, memory, c.flops, nbytes, not c.known)


def total_seconds(times, backend: Backend) -> float:
    """One inference: the kernels one after another (batch 1, one stream) plus the backend's per-inference cost."""
    return sum(t.seconds for t in times) + backend.efficiency.inference_us * 1e-6


def kernel_times(fg, backend: Backend, precision: Precision) -> tuple[KernelTime, ...]:
    """Every kernel's time on the backend, plus its layout reorders when it has them (layout.py)."""
    if not backend.layout_reorders:
        return tuple(kernel_time(k, fg.graph, backend, precision) for k in fg.kernels)
    block, g = backend.nchwc_block, fg.graph
    sides = layouts(fg, block)
    blocked = sides[0]
    return tuple(kernel_time(k, g, backend, precision, channel_fill(k, g, block) if k.name in blocked else None,
                             layout_key(k, g, k.name in blocked)) for k in fg.kernels) \
        + reorder_times(fg, backend, precision, sides)


def layout_key(k: Kernel, g: Graph, blocked: bool) -> str:
    """op_efficiency key of a kernel on a layout backend: `Nchwc<op>` when it runs blocked, `GroupedConv` for a
    plain grouped conv (ORT: one small GEMM per group), else its op type (a plain Conv: im2col + GEMM)."""
    if blocked:
        return "Nchwc" + k.anchor.op
    return "GroupedConv" if k.anchor.op == "Conv" and k.anchor.attrs.get("group", 1) > 1 else k.anchor.op
