"""Fuse the node list into the kernels a runtime would launch (TensorRT / ONNX Runtime style).

Rules, each a small table entry or function:
- elision: metadata ops (Reshape, Identity, Flatten, Dropout...) launch nothing;
- QDQ folding: QuantizeLinear/DequantizeLinear pairs are folded into their neighbours (DQ on a weight
  makes it an INT8 weight), the model is marked as quantized;
- epilogue fusion: Conv/ConvTranspose/Gemm/MatMul absorb a following BatchNormalization, residual Add and
  activation (Conv+BN+ReLU, Conv+Add+ReLU); a standalone BN absorbs its activation; an Add its ReLU.
A node is absorbed only when the tensor between them has one consumer and is not a graph output; the
intermediate tensor's traffic then disappears.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from edgeseg.latency.costs import COSTS, Cost, free, node_cost
from edgeseg.latency.graph import Graph, Node

QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})
ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "HardSigmoid", "Elu", "Tanh", "PRelu"})
ANCHORS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})



def followers(activations=ACTIVATIONS) -> dict:
    """Op at the tail of a kernel -> ops that may be fused after it (the backend names its activations)."""
    acts = frozenset(activations)
    return {**{op: frozenset({"BatchNormalization", "Add"}) | acts for op in ANCHORS},
            "BatchNormalization": frozenset({"Add"}) | acts, "Add": acts}


FOLLOWERS = followers()


@dataclass(frozen=True)
class Kernel:
    name: str
    ops: tuple[str, ...]
    anchor: Node
    cost: Cost
    inputs: tuple[str, ...]   # activation tensors read from other kernels / graph inputs
    outputs: tuple[str, ...]  # tensors produced


@dataclass(frozen=True)
class FusedGraph:
    graph: Graph
    kernels: tuple[Kernel, ...]
    quantized: bool
    unknown_ops: tuple[str, ...]


def is_elided(node: Node) -> bool:
    return COSTS.get(node.op) is free or node.op in QDQ


def _aliases(g: Graph) -> tuple[dict, set]:
    """Map each elided node's output to the tensor it forwards; collect tensors that are really weights."""
    alias, weights = {}, set(g.weights)
    for n in g.nodes:
        if is_elided(n) and n.inputs and n.outputs:
            src = alias.get(n.inputs[0], n.inputs[0])
            for out in n.outputs:
                alias[out] = src
            if src in weights or n.op == "Constant":
                weights.update(n.outputs)
    return alias, weights


def can_fuse(tail: Node, nxt: Node, tensor: str, consumers: dict, g: Graph, rules: dict = FOLLOWERS) -> bool:
    """The fusion rule: allowed op pair, single consumer, not a graph output."""
    return (nxt.op in rules.get(tail.op, ()) and len(consumers.get(tensor, ())) == 1
            and tensor not in g.outputs)


def fuse(g: Graph, activations=ACTIVATIONS) -> FusedGraph:
    """Group nodes into kernels; `activations`: the activation ops this backend fuses into a conv epilogue."""
    rules = FOLLOWERS if activations is ACTIVATIONS else followers(activations)
    alias, weights = _aliases(g)
    g = replace(g, weights=frozenset(weights))
    resolve = lambda t: alias.get(t, t)  # noqa: E731
    live = [n for n in g.nodes if not is_elided(n)]
    consumers: dict[str, list[Node]] = {}
    for n in live:
        for t in n.inputs:
            if t and resolve(t) not in weights:
                consumers.setdefault(resolve(t), []).append(n)
    taken, kernels, unknown = set(), [], []
    for n in live:
        if n.name in taken:
            continue
        group, cost, tail = [n], node_cost(n, g), n
        while tail.outputs and can_fuse(tail, (consumers.get(resolve(tail.outputs[0])) or [n])[0],
                                        resolve(tail.outputs[0]), consumers, g, rules):
            nxt = consumers[resolve(tail.outputs[0])][0]
            if nxt.name in taken:
                break
            between = g.numel(tail.outputs[0])
            cost = cost + node_cost(nxt, g)
            cost = replace(cost, read=cost.read - between, written=cost.written - between)
            group.append(nxt)
            taken.add(nxt.name)
            tail = nxt
        taken.add(n.name)
        for m in group:
            if m.op not in COSTS or not node_cost(m, g).known:
                unknown.append(m.op)
        produced = {resolve(t) for m in group for t in m.outputs}
        ins = tuple(dict.fromkeys(resolve(t) for m in group for t in m.inputs
                                  if t and resolve(t) not in weights and resolve(t) not in produced))
        kernels.append(Kernel(n.name, tuple(m.op for m in group), n, cost, ins, tuple(resolve(t) for t in tail.outputs)))
    quantized = any(n.op in QDQ for n in g.nodes)
    return FusedGraph(g, tuple(kernels), quantized, tuple(dict.fromkeys(unknown)))
