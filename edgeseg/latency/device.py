"""Device profiles: one TOML file per device in edgeseg/latency/devices/, loaded into frozen dataclasses.

A profile lists backends (e.g. `trt`, `ort-cpu`), each with its memory bandwidth, the precisions it
accepts (peak GFLOP/s, or `runs_as` another precision with a note saying why) and the roofline
efficiencies (fitted or assumed, the file says which). A calibrated host profile in the user cache
(`edgeseg simulate --calibrate`) takes precedence over the shipped `host.toml`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from edgeseg.errors import EdgesegError, nearest_key

DEVICES_DIR = Path(__file__).with_name("devices")
PRECISIONS = ("fp32", "fp16", "int8")
BYTES = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class Efficiency:
    """Roofline parameters of one backend (see roofline.py for how each is used)."""

    conv3x3: float     # dense 3x3 stride-1 conv (Winograd-eligible), fraction of peak; may exceed 1
    conv: float        # other dense conv / ConvTranspose
    depthwise: float   # grouped conv with one channel per group
    gemm: float        # Gemm / MatMul
    activation: float  # standalone activations (PRelu, Elu, Sigmoid... not fused into a conv)
    resize: float      # Resize / Upsample
    other: float       # everything else (pooling, elementwise, resize...)
    memory: float      # fraction of the nominal bandwidth reached
    concat: float      # fraction of Concat traffic really copied (TensorRT writes producers in place: ~0)
    launch_us: float   # fixed cost per kernel
    saturation: float  # output elements at which a kernel reaches half its efficiency
    tile_channels: float  # output channels one GEMM tile covers (GPU ~64, CPU ~8); not fitted
    uncertainty: float  # log-space spread of the fit residuals (band = t*exp(+-u))
    inference_us: float = 0.0  # fixed cost per inference (enqueue, synchronise, input/output copies); optional key


@dataclass(frozen=True)
class Precision:
    name: str
    peak_gflops: float
    runs_as: str
    note: str = ""


@dataclass(frozen=True)
class Backend:
    name: str
    processor: str
    bandwidth_gbs: float
    precisions: dict
    efficiency: Efficiency
    efficiency_source: str
    fused_activations: frozenset = frozenset()  # activation ops fused into conv epilogues (empty: all)
    layout_reorders: bool = False  # runtime reorders tensors between blocked and plain layouts (ORT CPU)
    op_efficiency: dict = field(default_factory=dict)  # op type -> efficiency replacing its class's (probed)
    nchwc_block: int = 8  # channels per NCHWc block (ORT: 8 with AVX2, 16 with AVX-512)
    winograd_gain: float = 1.0  # multiplies a Winograd 3x3 kernel saves (F(2x2,3x3): 2.25); a constant, not fitted
    launch_overlaps: bool = False  # the host enqueues kernels ahead of the device: launch_us is a floor, not added


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    title: str
    memory_gb: float
    backends: dict
    default_backend: str
    sources: dict
    path: Path

    def backend(self, name: str | None) -> Backend:
        name = name or self.default_backend
        if name not in self.backends:
            raise EdgesegError(f"device '{self.name}' has no backend '{name}'; it has: {', '.join(self.backends)}")
        return self.backends[name]

    def precision(self, backend: str | None, requested: str) -> tuple[Precision, tuple[str, ...]]:
        """The precision that actually runs for a request, and warnings when it differs."""
        b = self.backend(backend)
        if requested not in b.precisions:
            raise EdgesegError(f"precision '{requested}' not listed for {self.name}/{b.name}; "
                               f"listed: {', '.join(b.precisions)}")
        asked = b.precisions[requested]
        ran = b.precisions[asked.runs_as]
        warnings = ()
        if asked.runs_as != requested:
            warnings = (f"{requested.upper()} requested on {self.name}/{b.name}: runs as {ran.name.upper()}"
                        f" ({asked.note})",)
        elif asked.note:
            warnings = (f"{requested.upper()} on {self.name}/{b.name}: {asked.note}",)
        return ran, warnings


def cache_dir() -> Path:
    root = os.environ.get("EDGESEG_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                           os.path.expanduser("~/.cache"), "edgeseg")
    return Path(root)


def calibrated_host_path() -> Path:
    return cache_dir() / "host.toml"


def _toml(path: Path) -> dict:
    from edgeseg.io import read_toml

    return read_toml(path, "device profile")


TOP_KEYS = ("name", "title", "memory_gb", "default_backend", "sources", "backends")
BACKEND_KEYS = ("processor", "bandwidth_gbs", "precisions", "efficiency", "fused_activations", "layout_reorders",
                "op_efficiency", "nchwc_block", "winograd_gain", "launch_overlaps")
PRECISION_KEYS = ("peak_gflops", "runs_as", "note")
MAY_BE_ZERO = frozenset({"concat", "inference_us"})
OPTIONAL_EFFICIENCY = frozenset({"inference_us"})  # may be absent (0): profiles written before it existed  # fraction of Concat traffic copied: 0 when the runtime concatenates in place


def _reject_unknown(table, allowed, where: str, path: Path) -> None:
    """Unknown keys are refused by name (a typo would otherwise silently keep a default)."""
    if not isinstance(table, dict):
        raise EdgesegError(f"{path}: key '{where}' must be a table")
    for key in table:
        if key not in allowed:
            at = f"{where}.{key}" if where else key
            raise EdgesegError(f"{path}: unknown key '{at}'{nearest_key(key, allowed)}; known: {', '.join(allowed)}")


def _check_keys(data: dict, path: Path) -> None:
    _reject_unknown(data, TOP_KEYS, "", path)
    eff_keys = tuple(f.name for f in fields(Efficiency)) + ("source",)
    for bname, b in (data.get("backends") or {}).items():
        _reject_unknown(b, BACKEND_KEYS, f"backends.{bname}", path)
        _reject_unknown(b.get("efficiency", {}), eff_keys, f"backends.{bname}.efficiency", path)
        for p, entry in (b.get("precisions") or {}).items():
            _reject_unknown(entry, PRECISION_KEYS, f"backends.{bname}.precisions.{p}", path)


def _get(data: dict, key: str, path: Path, kind=float):
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise EdgesegError(f"{path}: missing key '{key}'")
        node = node[part]
    try:
        value = kind(node)
    except (TypeError, ValueError):
        raise EdgesegError(f"{path}: key '{key}' must be {kind.__name__}, got {node!r}") from None
    if kind is float and (value < 0 if key.rsplit(".", 1)[-1] in MAY_BE_ZERO else value <= 0):
        raise EdgesegError(f"{path}: key '{key}' must be > 0, got {value}")
    return value


def _op_efficiency(data: dict, pre: str, path: Path) -> dict:
    """The optional `op_efficiency` table: op type -> efficiency (> 0) replacing the op class's."""
    table = data["backends"][pre.split(".", 1)[1]].get("op_efficiency") or {}
    return {op: _get(data, f"{pre}.op_efficiency.{op}", path) for op in table}


def _winograd(data: dict, pre: str, path: Path) -> float:
    """Optional `winograd_gain`: 1 (none) .. 4 (F(4x4,3x3), the largest tile cuDNN/TensorRT use)."""
    if "winograd_gain" not in data["backends"][pre.split(".", 1)[1]]:
        return 1.0
    gain = _get(data, f"{pre}.winograd_gain", path)
    if not 1.0 <= gain <= 4.0:
        raise EdgesegError(f"{path}: key '{pre}.winograd_gain' must be in [1, 4] (F(4x4,3x3) saves 4x), got {gain}")
    return gain


def parse_profile(data: dict, path: Path) -> DeviceProfile:
    """Validate a profile dict; every error names the file and the key."""
    _check_keys(data, path)
    backends = {}
    for bname in data.get("backends") or {}:
        pre = f"backends.{bname}"
        precs = {}
        for p in (data["backends"][bname].get("precisions") or {}):
            if p not in PRECISIONS:
                raise EdgesegError(f"{path}: key '{pre}.precisions.{p}': precision must be one of {PRECISIONS}")
            entry = data["backends"][bname]["precisions"][p]
            runs_as = str(entry.get("runs_as", p))
            peak = _get(data, f"{pre}.precisions.{p}.peak_gflops", path) if runs_as == p else 0.0
            precs[p] = Precision(p, peak, runs_as, str(entry.get("note", "")))
        if not precs:
            raise EdgesegError(f"{path}: missing key '{pre}.precisions'")
        for p in precs.values():
            if p.runs_as not in precs or precs[p.runs_as].runs_as != p.runs_as:
                raise EdgesegError(f"{path}: key '{pre}.precisions.{p.name}.runs_as' points to '{p.runs_as}', "
                                   "which is not a precision that runs as itself")
        table = data["backends"][bname].get("efficiency") or {}
        eff = Efficiency(**{f.name: _get(data, f"{pre}.efficiency.{f.name}", path) for f in fields(Efficiency)
                            if f.name in table or f.name not in OPTIONAL_EFFICIENCY})
        backends[bname] = Backend(bname, _get(data, f"{pre}.processor", path, str),
                                  _get(data, f"{pre}.bandwidth_gbs", path), precs, eff,
                                  str(data["backends"][bname]["efficiency"].get("source", "")),
                                  frozenset(data["backends"][bname].get("fused_activations", ())),
                                  bool(data["backends"][bname].get("layout_reorders", False)),
                                  _op_efficiency(data, pre, path),
                                  int(_get(data, f"{pre}.nchwc_block", path)) if "nchwc_block" in data["backends"][bname]
                                  else 8, _winograd(data, pre, path),
                                  bool(data["backends"][bname].get("launch_overlaps", False)))
    if not backends:
        raise EdgesegError(f"{path}: missing key 'backends'")
    default = _get(data, "default_backend", path, str)
    if default not in backends:
        raise EdgesegError(f"{path}: key 'default_backend' names '{default}', not one of {', '.join(backends)}")
    return DeviceProfile(_get(data, "name", path, str), _get(data, "title", path, str),
                         _get(data, "memory_gb", path), backends, default, dict(data.get("sources") or {}), path)


def known_devices() -> list[str]:
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


def device_path(name: str) -> Path:
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise EdgesegError(f"device profile not found: {path}")
        return path
    if name == "host" and calibrated_host_path().is_file():
        return calibrated_host_path()
    path = DEVICES_DIR / f"{name}.toml"
    if not path.is_file():
        raise EdgesegError(f"unknown device '{name}'{nearest_key(name, known_devices())}; "
                           f"known: {', '.join(known_devices())}")
    return path


def load_device(name: str) -> DeviceProfile:
    """Load by name (`jetson-nano`, `host`...) or by a path to a .toml file."""
    path = device_path(name)
    return parse_profile(_toml(path), path)


def list_devices() -> list[DeviceProfile]:
    return [load_device(n) for n in known_devices()]
