"""The one gate every ONNX file edgeseg writes goes through: tidy, save, then prove it valid.

`save_checked(model, path)` (used by every writer: FP32, simplified FP32, INT8, FP16, compressed QDQ/INT4)
1. sorts the nodes topologically (stable: a sorted graph is left as it is) -- the float16 converter
   appends its input Cast at the end of the node list, which ONNX Runtime tolerates and the checker
   (and other consumers) do not;
2. keeps only the opset imports some node uses (plus the default domain): ONNX Runtime's quantizer
   leaves ai.onnx.ml 5, com.microsoft.*, org.pytorch.aten ... imports behind, and a runtime that does
   not know one of those versions refuses the whole file (onnxruntime 1.11.1, the JetPack 4.6.x floor,
   implements ai.onnx.ml up to 2);
3. saves, then `validate`s: `onnx.checker.check_model(full_check=True)`, strict shape inference with
   type checks, and the opset-import rule again on what was written.
"""
from __future__ import annotations

import heapq
from pathlib import Path

from edgeseg.errors import EdgesegError


def _subgraph_inputs(node) -> set[str]:
    """Names a node's subgraphs (If/Loop/Scan bodies) read from the enclosing scope."""
    import onnx

    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            inner = {i.name for i in g.input} | {i.name for i in g.initializer}
            for n in g.node:
                names |= {x for x in n.input if x and x not in inner} | (_subgraph_inputs(n) - inner)
                inner |= set(n.output)
    return names


def topological_sort(graph) -> bool:
    """Reorder `graph.node` so every node comes after the producers of its inputs, keeping the original
    order wherever it already allows (Kahn's algorithm, smallest original index first). -> changed?"""
    nodes = list(graph.node)
    producer = {out: i for i, n in enumerate(nodes) for out in n.output if out}
    deps = [{producer[x] for x in set(n.input) | _subgraph_inputs(n) if x in producer} - {i} for i, n in enumerate(nodes)]
    users: list[list[int]] = [[] for _ in nodes]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise EdgesegError(f"graph '{graph.name}' has a cycle: cannot sort its nodes")
    if order == list(range(len(nodes))):
        return False
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)
    return True


def used_domains(model) -> set[str]:
    """Domains of every node, subgraphs included ('' for the default domain)."""
    import onnx

    def walk(graph):
        for n in graph.node:
            yield "" if n.domain == "ai.onnx" else n.domain
            for attr in n.attribute:
                for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                    yield from walk(g)

    return set(walk(model.graph))


def unused_opset_imports(model) -> list[tuple[str, int]]:
    used = used_domains(model) | {""}
    return [(i.domain, i.version) for i in model.opset_import if ("" if i.domain == "ai.onnx" else i.domain) not in used]


def strip_unused_opsets(model) -> list[tuple[str, int]]:
    """Drop opset imports of domains no node uses; -> what was dropped."""
    dropped = unused_opset_imports(model)
    keep = [i for i in model.opset_import if (i.domain, i.version) not in dropped]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return dropped


def tidy(model) -> None:
    """Topological order and only the opset imports in use (in place)."""
    topological_sort(model.graph)
    strip_unused_opsets(model)


def validate(path: str | Path) -> None:
    """Full checker, strict typed shape inference, no unused opset import; raises EdgesegError naming the file."""
    import onnx

    path = Path(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:
        raise EdgesegError(f"{path}: ONNX check failed ({str(exc).strip().splitlines()[0][:200]})") from exc
    unused = unused_opset_imports(model)
    if unused:
        listed = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in unused)
        raise EdgesegError(f"{path}: opset imports no node uses: {listed} (strip them: edgeseg.export.validate.tidy)")


def save_checked(model, path: str | Path) -> Path:
    """Tidy `model` (an onnx.ModelProto, changed in place), write it to `path` and validate the file."""
    import onnx

    path = Path(path)
    tidy(model)
    onnx.save(model, str(path))
    validate(path)
    return path
