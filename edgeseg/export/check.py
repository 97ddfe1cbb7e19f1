"""`edgeseg check MODEL.onnx --target T`: list nodes a target runtime is known not to parse.

Target capability tables are data files in `edgeseg/export/targets/<name>.toml` (max opset, unsupported
ops, accepted attribute values, sources); adding a target is adding a file.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.errors import EdgesegError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TARGETS_DIR = Path(__file__).with_name("targets")


@dataclass(frozen=True)
class Target:
    name: str
    runtime: str
    max_opset: int
    default_opset: int
    precisions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    unsupported_ops: dict = field(default_factory=dict)
    allowed_attributes: dict = field(default_factory=dict)
    zero_point_zero: tuple[str, ...] = ()
    initializer_inputs: dict = field(default_factory=dict)


def list_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


def load_target(name: str) -> Target:
    path = TARGETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise EdgesegError(f"unknown target '{name}': use one of {', '.join(list_targets())}")
    from edgeseg.config import from_dict

    return from_dict(Target, tomllib.loads(path.read_text()), f"target {name}")


@dataclass(frozen=True)
class Finding:
    node: str       # node name ('' for a model-level finding)
    op_type: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.node} ({self.op_type})" if self.node else "model"
        return f"{where}: {self.problem}"


def _attr_value(attr):
    import onnx

    value = onnx.helper.get_attribute_value(attr)
    return value.decode() if isinstance(value, bytes) else value


def check_model(model, target: Target) -> list[Finding]:
    """Findings for an onnx.ModelProto (an empty list means nothing known to be unsupported)."""
    import numpy as np
    from onnx import numpy_helper

    found: list[Finding] = []
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > target.max_opset:
            found.append(Finding("", "", f"opset {imp.version} > {target.max_opset}, the highest {target.runtime} parses"))
    inits = {i.name: i for i in model.graph.initializer}
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    for i, node in enumerate(model.graph.node):
        name = node.name or f"#{i}"
        if node.domain not in ("", "ai.onnx"):
            found.append(Finding(name, node.op_type, f"custom domain '{node.domain}' is not parsed (no plugin)"))
            continue
        if node.op_type in target.unsupported_ops:
            found.append(Finding(name, node.op_type, target.unsupported_ops[node.op_type]))
        for attr in node.attribute:
            allowed = target.allowed_attributes.get(f"{node.op_type}.{attr.name}")
            if allowed is not None and _attr_value(attr) not in allowed:
                found.append(Finding(name, node.op_type, f"{attr.name}={_attr_value(attr)!r} not supported (allowed: {', '.join(map(str, allowed))})"))
        if node.op_type in target.zero_point_zero and len(node.input) > 2 and node.input[2]:
            zp = inits.get(node.input[2])
            if zp is None and node.input[2] in constants:
                zp = constants[node.input[2]].attribute[0].t
            if zp is None or np.any(numpy_helper.to_array(zp) != 0):
                found.append(Finding(name, node.op_type, "zero point must be a zero initializer (symmetric INT8)"))
        for idx in target.initializer_inputs.get(node.op_type, ()):
            if idx < len(node.input) and node.input[idx] and node.input[idx] not in inits and node.input[idx] not in constants:
                # QDQ weights come through a DequantizeLinear of an initializer: fine for TensorRT
                producer = next((n for n in model.graph.node if node.input[idx] in n.output), None)
                if producer is None or producer.op_type != "DequantizeLinear":
                    found.append(Finding(name, node.op_type, f"input {idx} ({node.input[idx]}) must be an initializer"))
    return found


def check_file(path: str | Path, target_name: str) -> tuple[Target, list[Finding]]:
    import onnx

    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise EdgesegError(f"{path}: not an ONNX model ({type(exc).__name__})") from exc
    target = load_target(target_name)
    return target, check_model(model, target)
