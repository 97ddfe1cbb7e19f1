"""Per-op cost functions: op_type -> Cost (MACs, FLOPs, activation elements read/written, weight elements).

Counts are in elements, not bytes, so the same graph can be priced at FP32, FP16 or INT8. A MAC is one
multiply-accumulate (2 FLOPs); strided shuffles (Transpose, DepthToSpace) count one index FLOP per element. Unknown ops are still priced (from their tensor sizes) and flagged.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from edgeseg.latency.graph import Graph, Node


@dataclass(frozen=True)
class Cost:
    macs: int = 0
    flops: int = 0
    read: int = 0      # activation elements read
    written: int = 0   # activation elements written
    weights: int = 0   # weight elements read (initializers, constants)
    known: bool = True

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.macs + other.macs, self.flops + other.flops, self.read + other.read,
                    self.written + other.written, self.weights + other.weights, self.known and other.known)


def _io(node: Node, g: Graph) -> tuple[int, int, int]:
    """(activation elements in, elements out, weight elements) from the node's tensors."""
    act = sum(g.numel(t) for t in node.inputs if t and t not in g.weights)
    wts = sum(g.numel(t) for t in node.inputs if t and t in g.weights)
    out = sum(g.numel(t) for t in node.outputs if t)
    return act, out, wts


def conv(node: Node, g: Graph) -> Cost:
    """Out elements x (Cin/groups) x kernel area; groups, depthwise, stride, padding, dilation via the output shape."""
    act, out, wts = _io(node, g)
    w = g.shape(node.inputs[1])
    macs = out * prod(w[1:])  # w = (Cout, Cin/groups, kh, kw)
    bias = out if len(node.inputs) > 2 and node.inputs[2] else 0
    return Cost(macs, 2 * macs + bias, act, out, wts)


def conv_transpose(node: Node, g: Graph) -> Cost:
    """Every input pixel scatters a (Cout/groups) x kernel patch: in elements x (Cout/groups) x kernel area."""
    act, out, wts = _io(node, g)
    w = g.shape(node.inputs[1])  # (Cin, Cout/groups, kh, kw)
    macs = act * prod(w[1:])
    bias = out if len(node.inputs) > 2 and node.inputs[2] else 0
    return Cost(macs, 2 * macs + bias, act, out, wts)


def gemm(node: Node, g: Graph) -> Cost:
    """(M x K) . (K x N): M*K*N MACs, plus the C addition."""
    act, out, wts = _io(node, g)
    a = g.shape(node.inputs[0])
    k = a[0] if node.attrs.get("transA", 0) else a[-1]
    macs = out * k
    extra = out if len(node.inputs) > 2 and node.inputs[2] else 0
    return Cost(macs, 2 * macs + extra, act, out, wts)


def matmul(node: Node, g: Graph) -> Cost:
    act, out, wts = _io(node, g)
    macs = out * g.shape(node.inputs[0])[-1]
    return Cost(macs, 2 * macs, act, out, wts)


def pool(node: Node, g: Graph) -> Cost:
    """One compare/add per kernel tap per output element (no MACs)."""
    act, out, wts = _io(node, g)
    return Cost(0, out * prod(node.attrs.get("kernel_shape", [1])), act, out, wts)


def global_pool(node: Node, g: Graph) -> Cost:
    act, out, wts = _io(node, g)
    return Cost(0, act, act, out, wts)


def resize(node: Node, g: Graph) -> Cost:
    """Nearest: a copy. Linear: 2^d taps (d resized dims), a multiply and an add per tap, per output element."""
    act, out, _ = _io(node, g)
    mode = node.attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    src, dst = g.shape(node.inputs[0]), g.shape(node.outputs[0])
    d = sum(1 for a, b in zip(src or (), dst or ()) if a != b)
    taps = 2 ** d if mode == "linear" else (4 ** d if mode == "cubic" else 0)
    return Cost(0, 2 * taps * out, act, out, 0)


def _elementwise(flops_per_element: int):
    def cost(node: Node, g: Graph) -> Cost:
        act, out, wts = _io(node, g)
        return Cost(0, flops_per_element * out, act, out, wts)

    cost.__doc__ = f"{flops_per_element} FLOP(s) per output element; reads every input, writes the output."
    return cost


def batchnorm(node: Node, g: Graph) -> Cost:
    """y = x*scale + shift after folding: 2 FLOPs per element, 4 x C parameters."""
    act, out, wts = _io(node, g)
    return Cost(0, 2 * out, act, out, wts)


def lrn(node: Node, g: Graph) -> Cost:
    """LocalResponseNorm: a sum of `size` squares across channels, then scale, power and divide per element."""
    act, out, wts = _io(node, g)
    return Cost(0, (2 * int(node.attrs.get("size", 5)) + 4) * out, act, out, wts)


def data_movement(node: Node, g: Graph) -> Cost:
    """Concat, Transpose, Pad, Slice...: no arithmetic, every element read and written once."""
    act, out, wts = _io(node, g)
    return Cost(0, 0, act, out, wts)


def free(node: Node, g: Graph) -> Cost:
    """Metadata-only ops (Reshape, Identity, Shape...): a runtime elides them."""
    return Cost()


def unknown(node: Node, g: Graph) -> Cost:
    """Not in the registry: priced as one FLOP per output element plus its bytes, and flagged."""
    act, out, wts = _io(node, g)
    return Cost(0, out, act, out, wts, known=False)


COSTS = {
    "Conv": conv, "ConvTranspose": conv_transpose, "Gemm": gemm, "MatMul": matmul,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_pool, "GlobalMaxPool": global_pool,
    "Resize": resize, "Upsample": resize, "BatchNormalization": batchnorm,
    "Softmax": _elementwise(5), "LogSoftmax": _elementwise(5),
    "InstanceNormalization": _elementwise(5), "LRN": lrn, "LayerNormalization": _elementwise(8),
    **{op: data_movement for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
                                    "ReduceSumSquare", "ArgMax", "ArgMin", "GatherElements", "ScatterND", "TopK")},
    "Concat": data_movement, "Transpose": _elementwise(1), "Pad": data_movement, "Slice": data_movement,
    "Split": data_movement, "Expand": data_movement, "Tile": data_movement, "Gather": data_movement,
    "Cast": data_movement, "DepthToSpace": _elementwise(1), "SpaceToDepth": _elementwise(1),
    "QuantizeLinear": _elementwise(2), "DequantizeLinear": _elementwise(2),
    "ReorderInput": _elementwise(1), "ReorderOutput": _elementwise(1),  # ONNX Runtime's NCHWc layout shuffles
}
COSTS.update({op: _elementwise(1) for op in (
    "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "PRelu", "Clip", "Max", "Min", "Abs", "Neg", "Sqrt",
    "Pow", "Where", "Equal", "Greater", "Less", "Not", "And", "Or", "Sum", "Mean", "Reciprocal", "Floor", "Ceil",
    "Round", "Sign", "Relu6", "ThresholdedRelu", "Softsign", "GreaterOrEqual", "LessOrEqual", "Xor", "IsNaN")})
COSTS.update({op: _elementwise(4) for op in (
    "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "HardSwish", "Erf", "Exp", "Log", "Gelu", "Softplus", "Mish")})
COSTS.update({op: free for op in (
    "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Dropout", "Constant", "Shape", "Size",
    "ConstantOfShape", "Range", "EyeLike")})


def node_cost(node: Node, g: Graph) -> Cost:
    """Look the op up in COSTS; unknown ops (or ops whose shapes are unknown) are estimated and flagged."""
    fn = COSTS.get(node.op, unknown)
    try:
        return fn(node, g)
    except (TypeError, IndexError):  # a needed shape is missing
        return unknown(node, g)
