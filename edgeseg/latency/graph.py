"""Load an ONNX model into a flat node list with static shapes: the input fixed, onnx shape inference, then
constant folding and If resolution (fold.py) with inference again, so shapes and MACs come from onnx itself."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.errors import EdgesegError

# onnx TensorProto data type -> bytes per element (for the model's own precision)
ITEMSIZE = {1: 4, 2: 1, 3: 1, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order; `shapes` maps every tensor name with a known static shape."""

    name: str
    nodes: tuple[Node, ...]
    shapes: dict
    dtypes: dict
    weights: frozenset  # names of initializers / constants
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    unresolved: tuple[str, ...] = ()  # control flow (If/Loop) constant folding could not resolve

    def shape(self, tensor: str) -> tuple[int, ...] | None:
        return self.shapes.get(tensor)

    def numel(self, tensor: str) -> int:
        shape = self.shapes.get(tensor)
        if shape is None:
            return 0
        n = 1
        for d in shape:
            n *= d
        return n


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' or '1,3,224,224' -> (1, 3, 224, 224)."""
    try:
        dims = tuple(int(d) for d in text.replace(",", "x").split("x") if d.strip())
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise EdgesegError(f"bad --input-shape '{text}': expected positive integers like 1x3x224x224")
    return dims


def _read(model_or_path):
    import onnx

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path, model_or_path.graph.name or "model"
    path = Path(model_or_path)
    if not path.is_file():
        raise EdgesegError(f"model file not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=False), path.stem
    except Exception as exc:  # onnx raises DecodeError and friends
        raise EdgesegError(f"{path}: not a readable ONNX model ({exc.__class__.__name__})") from None


def _dims(value_info) -> tuple:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return ()
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)


def load_graph(model_or_path, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Parse the model; fix the (single) graph input to `input_shape` when given, else require static shapes."""
    import onnx
    from onnx import numpy_helper  # noqa: F401  (keeps onnx submodules loaded)

    model, name = _read(model_or_path)
    g = model.graph
    real_inputs = [i for i in g.input if i.name not in {t.name for t in g.initializer}]
    for vi in real_inputs:
        dims = _dims(vi)
        if input_shape is not None and vi is real_inputs[0]:
            if len(dims) != len(input_shape):
                raise EdgesegError(f"--input-shape has {len(input_shape)} dims, input '{vi.name}' has {len(dims)}")
            for d, v in zip(vi.type.tensor_type.shape.dim, input_shape):
                d.ClearField("dim_param")
                d.dim_value = v
        elif None in dims or not vi.type.tensor_type.HasField("shape"):  # a scalar (shape ()) is static
            raise EdgesegError(f"{name}: input '{vi.name}' has dynamic shape {tuple(d or '?' for d in dims)}; "
                               "pass --input-shape, e.g. --input-shape 1x3x224x224")
    inferred, unresolved = _infer_and_fold(model, name)
    shapes, dtypes = {}, {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = _dims(vi)
        if dims and None not in dims or (vi.type.tensor_type.HasField("shape") and not dims):
            shapes[vi.name] = tuple(dims)
        dtypes[vi.name] = vi.type.tensor_type.elem_type
    g = inferred.graph  # the folded graph: shape arithmetic is constants, resolved If nodes are their branch
    weights = {t.name for t in g.initializer}
    for t in g.initializer:
        shapes[t.name], dtypes[t.name] = tuple(t.dims), t.data_type
    nodes = []
    for n in g.node:  # outputs shape inference could not reach (custom ops): assume the first input's shape
        for out in n.output:
            if out and out not in shapes and n.input and n.input[0] in shapes:
                shapes[out] = shapes[n.input[0]]
    for i, n in enumerate(g.node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Constant":
            weights.update(n.output)
            val = attrs.get("value")
            if val is not None:
                shapes[n.output[0]], dtypes[n.output[0]] = tuple(val.dims), val.data_type
        nodes.append(Node(n.name or f"{n.op_type}_{i}", n.op_type, tuple(n.input), tuple(n.output), attrs))
    return Graph(name, tuple(nodes), shapes, dtypes, frozenset(weights),
                 tuple(i.name for i in real_inputs), tuple(o.name for o in g.output), unresolved)


def _infer(model, name: str):
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        raise EdgesegError(f"{name}: ONNX shape inference failed ({exc})") from None


def _infer_and_fold(model, name: str, passes: int = 4):
    """Shape inference, then constant folding (fold.py) and inference again until nothing more folds."""
    from edgeseg.latency.fold import fold

    inferred, unresolved = _infer(model, name), ()
    for _ in range(passes):
        folded, unresolved = fold(inferred)
        if [n.op_type for n in folded.graph.node] == [n.op_type for n in inferred.graph.node]:
            break
        inferred = _infer(folded, name)
    return inferred, unresolved
