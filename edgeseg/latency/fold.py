"""Constant folding and control-flow resolution before costing (exact values from onnx's reference evaluator).

Exported graphs carry small shape computations (Shape -> Gather -> Equal -> If, ConstantOfShape, Range...)
that a runtime folds away at build time (TensorRT, onnxsim). This pass does the same without needing
the weights' data (validation graphs carry shape-only weights):
- `Shape` / `Size` of a tensor whose static shape is known become constants;
- a node whose inputs are all small constants is evaluated once by `onnx.reference` and becomes constants;
- an `If` whose condition folded to a constant is replaced by the nodes of the branch it takes
  (branch-internal tensors renamed under the If's name, outputs forwarded by Identity);
- an `If`/`Loop` that cannot be resolved is left in place and reported, so the caller can warn.
`fold(model)` returns (folded model, names of unresolved control-flow nodes); shapes are re-inferred by the caller.
"""
from __future__ import annotations

from collections import deque

MAX_FOLD_ELEMENTS = 1 << 16  # only small tensors (shape arithmetic) are evaluated, never activations
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
NEVER_FOLD = CONTROL_FLOW | {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}


def _static_shapes(model) -> dict:
    shapes = {}
    g = model.graph
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            if None not in dims:
                shapes[vi.name] = tuple(dims)
    return shapes


def _constant_values(g) -> dict:
    """Initializers that carry their data (shape-only external weights do not)."""
    from onnx import numpy_helper

    values = {}
    for t in g.initializer:
        if t.data_location == t.EXTERNAL:
            continue
        n = 1
        for d in t.dims:
            n *= d
        if n <= MAX_FOLD_ELEMENTS:
            values[t.name] = numpy_helper.to_array(t)
    return values


def _const_node(name: str, value):
    import numpy as np
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name], name=f"{name}/folded",
                            value=numpy_helper.from_array(np.asarray(value), name))


def _shape_value(node, shapes):
    import numpy as np

    shape = shapes.get(node.input[0])
    if shape is None:
        return None
    if node.op_type == "Size":
        return np.array(int(np.prod(shape)), dtype=np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.array(shape[start:end] if "end" in attrs else shape[start:], dtype=np.int64)


def _evaluate(node, values, opset: int):
    """Run one node on constant inputs; None when onnx's reference evaluator cannot."""
    from onnx.reference import ReferenceEvaluator

    ins = [i for i in node.input if i]
    if any(values[i].size > MAX_FOLD_ELEMENTS for i in ins):
        return None
    try:
        from onnx import helper

        graph = helper.make_graph([node], "fold", [helper.make_tensor_value_info(i, 1, None) for i in ins],
                                  [helper.make_tensor_value_info(o, 1, None) for o in node.output if o])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        outs = ReferenceEvaluator(model).run(None, {i: values[i] for i in ins})
    except Exception:  # unsupported op or attribute in the reference evaluator: leave the node alone
        return None
    if any(getattr(o, "size", MAX_FOLD_ELEMENTS + 1) > MAX_FOLD_ELEMENTS for o in outs):
        return None
    return outs


def _inline_branch(node, take_then: bool, model) -> list:
    """The branch's nodes with internal tensors renamed under the If's name; Identity nodes forward its outputs."""
    from onnx import helper

    attr = next(a for a in node.attribute if a.name == ("then_branch" if take_then else "else_branch"))
    branch, prefix = attr.g, f"{node.name or node.output[0]}/"
    internal = {o for n in branch.node for o in n.output if o} | {t.name for t in branch.initializer}
    rename = lambda t: prefix + t if t in internal else t  # noqa: E731  (outer-scope names stay)
    for t in branch.initializer:
        init = model.graph.initializer.add()
        init.CopyFrom(t)
        init.name = rename(t.name)
    nodes = []
    for n in branch.node:
        m = helper.make_node(n.op_type, [rename(i) if i else "" for i in n.input], [rename(o) for o in n.output],
                             name=prefix + (n.name or n.output[0]), domain=n.domain)
        m.attribute.extend(n.attribute)
        nodes.append(m)
    for src, dst in zip(branch.output, node.output):
        nodes.append(helper.make_node("Identity", [rename(src.name)], [dst], name=f"{dst}/branch"))
    return nodes


def fold(model) -> tuple:
    """Fold shape arithmetic and resolvable If nodes in place of `model` (a copy); returns (model, unresolved)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 13)
    shapes, values = _static_shapes(out), _constant_values(g)
    queue, kept, unresolved = deque(g.node), [], []
    while queue:
        node = queue.popleft()
        ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            res = _evaluate(node, values, opset)
            if res is not None:
                values[node.output[0]] = res[0]
            kept.append(node)
            continue
        if node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx"):
            value = _shape_value(node, shapes)
            if value is not None:
                values[node.output[0]] = value
                kept.append(_const_node(node.output[0], value))
                continue
        if node.op_type == "If" and node.input[0] in values:
            queue.extendleft(reversed(_inline_branch(node, bool(values[node.input[0]].reshape(-1)[0]), out)))
            for t in g.initializer:  # the branch's own initializers, now in the graph
                if t.name not in values and t.name.startswith(f"{node.name or node.output[0]}/"):
                    values.update(_constant_values(type(g)(initializer=[t])))
            continue
        if node.op_type in CONTROL_FLOW:
            unresolved.append(f"{node.op_type} '{node.name or node.output[0]}'")
        elif (node.op_type not in NEVER_FOLD and node.domain in ("", "ai.onnx") and ins
              and all(i in values for i in ins)):
            res = _evaluate(node, values, opset)
            if res is not None:
                for name, value in zip([o for o in node.output if o], res):
                    values[name] = value
                    kept.append(_const_node(name, value))
                continue
        if node.op_type == "Identity" and ins and ins[0] in shapes:  # forwarded If outputs keep their shapes
            shapes.setdefault(node.output[0], shapes[ins[0]])
        kept.append(node)
    del g.node[:]
    g.node.extend(kept)
    return out, tuple(unresolved)
