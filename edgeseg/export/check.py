"""`edgeseg check MODEL.onnx --target T [--backend B]`: list nodes a target runtime is known not to run.

A target is a data file `edgeseg/export/targets/<name>.toml`, one per device profile of the latency
simulator (`edgeseg/latency/devices/<name>.toml`, same names), with one rule table per backend, named as
in the profile: `trt` (the TensorRT ONNX parser of the oldest JetPack the board runs), `ort-cpu` (the
oldest ONNX Runtime the board runs). Adding a target is adding a file. Each rule below is a small function
in `RULES`; a backend's table only supplies data (maximum opset, refused ops, accepted attribute values ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.errors import EdgesegError, nearest_key


TARGETS_DIR = Path(__file__).with_name("targets")
DEFAULT_DOMAINS = ("", "ai.onnx")
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                           "MatMulInteger", "DynamicQuantizeLinear"})


@dataclass(frozen=True)
class Backend:
    """What one runtime on the target accepts."""

    runtime: str
    max_opset: int
    max_ir_version: int = 0                 # 0: not checked
    precisions: tuple[str, ...] = ()
    domains: dict = field(default_factory=dict)  # other domain -> highest version its nodes / imports may use
    check_imports: bool = False            # the runtime refuses a file importing a domain version above `domains` (ORT)
    quantized: str = ""                    # set: any Q/DQ or integer op is a finding, for this reason
    quantized_warning: str = ""            # set: Q/DQ runs, but the user should know this (printed, exit code 0)
    unsupported_ops: dict = field(default_factory=dict)
    allowed_attributes: dict = field(default_factory=dict)
    zero_point_zero: tuple[str, ...] = ()
    initializer_inputs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    device: str                            # the latency profile of the same board
    default_backend: str
    default_opset: int
    backends: dict                         # backend name -> Backend
    sources: tuple[str, ...] = ()
    quantize: dict = field(default_factory=dict)  # [quantize] defaults of an export for this target (a recipe overrides)
    # TensorRT versions to write an INT8 calibration cache for (export/trt_calib.py; empty: none), e.g. ["8.5.2"]
    tensorrt_calibration: tuple[str, ...] = ()
    # files ("fp32-sim", "int8") this target runs on ONNX Runtime's CPU provider: their sub-pixel stages become
    # one ConvTranspose (export/subpixel.py); the others keep Conv + DepthToSpace for TensorRT
    ort_cpu_files: tuple[str, ...] = ()

    def backend(self, name: str | None = None) -> Backend:
        name = name or self.default_backend
        if name not in self.backends:
            raise EdgesegError(f"target '{self.name}' has no backend '{name}'; it has: {', '.join(self.backends)}")
        return self.backends[name]

    @property
    def max_opset(self) -> int:
        """The highest opset every backend of the target parses (what an export for the target may use)."""
        return min(b.max_opset for b in self.backends.values())

    @property
    def runtime(self) -> str:
        return self.backend().runtime


def list_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


def load_target(name: str) -> Target:
    from edgeseg.config import from_dict
    from edgeseg.io import read_toml

    path = TARGETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise EdgesegError(f"unknown target '{name}'{nearest_key(name, list_targets())}; known: {', '.join(list_targets())}")
    data = read_toml(path, "target file")
    where = f"target {name}"
    tables = data.pop("backends", None) or {}
    if not tables:
        raise EdgesegError(f"{path}: no [backends.*] table")
    backends = {k: from_dict(Backend, v, f"{where}.backends.{k}") for k, v in tables.items()}
    target = from_dict(Target, {**data, "backends": {}}, where)
    target = Target(**{**target.__dict__, "backends": backends})
    target.backend()  # the default backend exists
    unknown = set(target.ort_cpu_files) - {"fp32-sim", "int8"}
    if unknown:
        raise EdgesegError(f"{path}: ort_cpu_files names {', '.join(sorted(unknown))}; it takes 'fp32-sim' and 'int8'")
    if "fp32-sim" in target.ort_cpu_files and target.tensorrt_calibration:
        raise EdgesegError(f"{path}: the fp32-sim file is TensorRT's calibration model here; it cannot be in ort_cpu_files")
    if target.quantize:
        from edgeseg.export.recipe import QuantizeConfig

        from_dict(QuantizeConfig, target.quantize, f"{where}.quantize")  # unknown keys named now, not at export
    return target


@dataclass(frozen=True)
class Finding:
    node: str       # node name ('' for a model-level finding)
    op_type: str
    problem: str
    severity: str = "error"   # "error" (exit code 1) or "warning" (printed only)

    def __str__(self) -> str:
        where = f"{self.node} ({self.op_type})" if self.node else "model"
        return f"{where}: {self.problem}" if self.severity == "error" else f"warning: {where}: {self.problem}"


def _attr_value(attr):
    import onnx

    value = onnx.helper.get_attribute_value(attr)
    return value.decode() if isinstance(value, bytes) else value


class _Graph:
    """Lookups shared by the rules."""

    def __init__(self, model):
        self.model = model
        self.nodes = [(n.name or f"#{i}", n) for i, n in enumerate(model.graph.node)]
        self.inits = {i.name: i for i in model.graph.initializer}
        self.constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
        self.producer = {o: n for n in model.graph.node for o in n.output}


def _opset(g: _Graph, b: Backend):
    for imp in g.model.opset_import:
        if imp.domain in DEFAULT_DOMAINS and imp.version > b.max_opset:
            yield Finding("", "", f"opset {imp.version} > {b.max_opset}, the highest {b.runtime} parses")


def _ir_version(g: _Graph, b: Backend):
    if b.max_ir_version and g.model.ir_version > b.max_ir_version:
        yield Finding("", "", f"IR version {g.model.ir_version} > {b.max_ir_version}, the highest {b.runtime} loads")


def _imports(g: _Graph, b: Backend):
    if not b.check_imports:
        return
    for imp in g.model.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            continue
        top = b.domains.get(imp.domain)
        if top is not None and imp.version > top:
            yield Finding("", "", f"opset import {imp.domain} {imp.version}: {b.runtime} refuses the file (it knows "
                                  f"{imp.domain} up to {top}); strip imports no node uses (edgeseg.export.validate.tidy)")
        elif top is None:
            yield Finding("", "", f"opset import {imp.domain} {imp.version}: a domain {b.runtime} is not known to "
                                  "implement; strip it if no node uses it", "warning")


def _domains(g: _Graph, b: Backend):
    for name, node in g.nodes:
        if node.domain not in DEFAULT_DOMAINS and node.domain not in b.domains:
            yield Finding(name, node.op_type, f"custom domain '{node.domain}' is not run by {b.runtime} (no plugin)")


def _quantized(g: _Graph, b: Backend):
    hits = [(name, n.op_type) for name, n in g.nodes if n.op_type in QUANTIZED_OPS]
    if hits and b.quantized:
        yield Finding(hits[0][0], hits[0][1], f"{len(hits)} quantized node(s): {b.quantized}")
    elif hits and b.quantized_warning:
        yield Finding(hits[0][0], hits[0][1], f"{len(hits)} quantized node(s): {b.quantized_warning}", "warning")


def _ops(g: _Graph, b: Backend):
    for name, node in g.nodes:
        if node.domain in DEFAULT_DOMAINS and node.op_type in b.unsupported_ops:
            yield Finding(name, node.op_type, b.unsupported_ops[node.op_type])


def _attributes(g: _Graph, b: Backend):
    for name, node in g.nodes:
        for attr in node.attribute:
            allowed = b.allowed_attributes.get(f"{node.op_type}.{attr.name}")
            if allowed is not None and _attr_value(attr) not in allowed:
                yield Finding(name, node.op_type, f"{attr.name}={_attr_value(attr)!r} not supported "
                                                  f"(allowed: {', '.join(map(str, allowed))})")


def _zero_points(g: _Graph, b: Backend):
    import numpy as np
    from onnx import numpy_helper

    for name, node in g.nodes:
        if node.op_type in b.zero_point_zero and len(node.input) > 2 and node.input[2]:
            zp = g.inits.get(node.input[2])
            if zp is None and node.input[2] in g.constants:
                zp = g.constants[node.input[2]].attribute[0].t
            if zp is None or np.any(numpy_helper.to_array(zp) != 0):
                yield Finding(name, node.op_type, "zero point must be a zero initializer (symmetric INT8)")


def _initializers(g: _Graph, b: Backend):
    for name, node in g.nodes:
        for idx in b.initializer_inputs.get(node.op_type, ()):
            x = node.input[idx] if idx < len(node.input) else ""
            if x and x not in g.inits and x not in g.constants:
                producer = g.producer.get(x)  # QDQ weights come through a DequantizeLinear of an initializer: fine
                if producer is None or producer.op_type != "DequantizeLinear":
                    yield Finding(name, node.op_type, f"input {idx} ({x}) must be an initializer")


RULES = (_opset, _ir_version, _imports, _domains, _quantized, _ops, _attributes, _zero_points, _initializers)


def check_model(model, target: Target, backend: str | None = None) -> list[Finding]:
    """Findings for an onnx.ModelProto on one backend of `target` (errors first; none: nothing known to fail)."""
    b = target.backend(backend)
    g = _Graph(model)
    found = [f for rule in RULES for f in rule(g, b)]
    return sorted(found, key=lambda f: f.severity != "error")


def errors(findings) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def check_file(path: str | Path, target_name: str, backend: str | None = None) -> tuple[Target, list[Finding]]:
    import onnx

    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise EdgesegError(f"{path}: not an ONNX model ({type(exc).__name__})") from exc
    target = load_target(target_name)
    return target, check_model(model, target, backend)
