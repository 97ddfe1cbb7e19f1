"""Fit a backend's roofline efficiencies to published measurements and store them in the device file.

Least squares on log(predicted / published) over the rows marked `split=fit` in
edgeseg/latency/published/jetson_nano.csv, by a deterministic coordinate search in log space (no
scipy needed), over a few physically bounded parameters (TRT_FIT). The held-out rows (whole network
families) are never seen by the fit. `leave_one_out` refits without each row (or each family) to give the
cross-validated error; the bench stores its RMS as `uncertainty`, so the band t*exp(+-u) is about one sigma
of the error on a network the fit has not seen.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from edgeseg.errors import EdgesegError
from edgeseg.latency.device import Backend, DeviceProfile
from edgeseg.latency.fusion import FusedGraph, fuse
from edgeseg.latency.graph import load_graph
from edgeseg.latency.roofline import kernel_times, total_seconds

# package data (pyproject package-data), so the fit rows travel with a wheel
PUBLISHED = Path(__file__).resolve().parent / "published" / "jetson_nano.csv"
# TensorRT on the Nano: the free parameters and their physical bounds (shared/jetson/hardware.md). A name
# joined by '+' is one parameter tied across those fields. Efficiencies are fractions of the nominal peak,
# at most 1 (Winograd's saving is the profile's constant `winograd_gain`, not an efficiency above 1); memory
# is a fraction of the 25.6 GB/s datasheet bandwidth, at most 1; a kernel costs at least launch_us (below); a
# Maxwell SM needs ~2048 resident threads, each computing 1..32 outputs, to be busy: saturation in
# [2048, 65536] output elements. Fixed, not fitted: tile_channels (the narrowest cuDNN/TensorRT Maxwell GEMM
# tile, 128x32), concat (0: TensorRT concatenates in place). depthwise is free since the Fast-SCNN rows
# (split=fit, the only fit family with depthwise convs) joined: with it fixed at 0.1 they were predicted 21-27 %
# too fast and dragged every other efficiency off (held-out median 40 %); lower bound 0.01 of the FP16 peak.
# launch_us: the host's per-kernel enqueue (jetson-nano.toml sets launch_overlaps: a floor under each kernel, hidden
# behind longer GPU kernels). Measured range: a CPU-side CUDA launch of 5-20 us on desktop/server hosts
# (facebookresearch/HolisticTraceAnalysis docs, cuda_kernel_launch_stats) up to a whole TensorRT 8.2.1 enqueue on a
# Nano's A57: 1.546 ms for a 26-layer engine, the minimum over 35 inferences (henryzhuhr/deep-lane-detection
# docs/onnx2engine.md, trtexec "Enqueue Time"), i.e. 59.5 us per layer. Bound chosen in session 8, after the
# held-out errors were known (docs/latency.md says so); it rests on the sources, not on those errors.
LAUNCH_FLOOR_US, LAUNCH_CEIL_US = 5.0, 60.0
TRT_FIT = {"conv3x3": (0.05, 1.0), "conv+gemm": (0.05, 1.0), "activation+resize+other": (0.1, 1.0),
           "memory": (0.1, 1.0), "launch_us": (LAUNCH_FLOOR_US, LAUNCH_CEIL_US), "saturation": (2048.0, 65536.0),
           "inference_us": (0.0, 2000.0), "depthwise": (0.01, 1.0)}
BOUNDS = TRT_FIT


@dataclass(frozen=True)
class Row:
    id: str
    network: str
    input_chw: tuple[int, int, int]
    num_classes: int
    precision: str
    published_ms: float
    split: str
    source: str


def load_rows(path: Path = PUBLISHED) -> list[Row]:
    if not path.is_file():
        raise EdgesegError(f"published measurements not found: {path}")
    with open(path, newline="") as f:
        return [Row(r["id"], r["network"], tuple(int(v) for v in r["input_chw"].split("x")), int(r["num_classes"]),
                    r["precision"], 1000.0 / float(r["published_fps"]), r["split"], r["source"])
                for r in csv.DictReader(f)]


def prepare(rows: list[Row]) -> list[tuple[Row, FusedGraph]]:
    """Build and fuse each row's network once (the fit then only re-prices kernels)."""
    from edgeseg.latency import zoo

    return [(r, fuse(load_graph(zoo.build(r.network, r.input_chw, r.num_classes)))) for r in rows]


def predict_ms(fg: FusedGraph, backend: Backend, precision) -> float:
    return 1e3 * total_seconds(kernel_times(fg, backend, precision), backend)


def targets(prepared) -> list[tuple[FusedGraph, str, float]]:
    """(fused graph, precision, measured ms) for each published row."""
    return [(fg, row.precision, row.published_ms) for row, fg in prepared]


def log_residuals(items, profile: DeviceProfile, backend: Backend) -> list[float]:
    """log(predicted / measured) for each (fused graph, precision, measured ms)."""
    out = []
    for fg, precision, measured_ms in items:
        prec, _ = profile.precision(backend.name, precision)
        out.append(math.log(predict_ms(fg, backend, prec) / measured_ms))
    return out


def param(b: Backend, name: str) -> float:
    """A fitted parameter: an Efficiency field, `a+b` (fields tied to one value: the first's), or `op:TYPE` for an
    entry of the op_efficiency table."""
    name = name.split("+")[0]
    return b.op_efficiency[name[3:]] if name.startswith("op:") else getattr(b.efficiency, name)


def with_param(b: Backend, name: str, value: float) -> Backend:
    for part in name.split("+"):
        if part.startswith("op:"):
            b = replace(b, op_efficiency={**b.op_efficiency, part[3:]: value})
        else:
            b = replace(b, efficiency=replace(b.efficiency, **{part: value}))
    return b


def fit_backend(profile: DeviceProfile, backend_name: str, items, rounds: int = 200, bounds=None) -> Backend:
    """Coordinate search: multiply/divide each parameter (see `param`) by a shrinking step while the loss drops."""
    backend = profile.backend(backend_name)
    for name, (lo, hi) in (bounds or BOUNDS).items():  # start inside the bounds
        backend = with_param(backend, name, min(hi, max(lo, param(backend, name))))
    loss = lambda b: fit_loss(profile, b, items)  # noqa: E731
    best, best_loss, step = backend, loss(backend), 2.0
    for _ in range(rounds):
        improved = False
        for name, (lo, hi) in (bounds or BOUNDS).items():
            for factor in (step, 1 / step):
                cand = with_param(best, name, min(hi, max(lo, param(best, name) * factor)))
                cand_loss = loss(cand)
                if cand_loss < best_loss - 1e-12:
                    best, best_loss, improved = cand, cand_loss, True
        if not improved:
            step = math.sqrt(step)
            if step < 1.001:
                break
    res = log_residuals(items, profile, best)
    u = math.sqrt(sum(r * r for r in res) / len(res))
    return replace(best, efficiency=replace(best.efficiency, uncertainty=u))


def start_at(profile: DeviceProfile, backend_name: str, fractions, bounds=None) -> DeviceProfile:
    """The profile with each fitted parameter at a fraction of its bounds, in log space (linear where the lower
    bound is 0): `fractions` is one number for every parameter or a dict name -> fraction."""
    backend = profile.backend(backend_name)
    for name, (lo, hi) in (bounds or BOUNDS).items():
        f = fractions[name] if isinstance(fractions, dict) else fractions
        backend = with_param(backend, name, lo * (hi / lo) ** f if lo > 0 else hi * f)
    return replace(profile, backends={**profile.backends, backend_name: backend})


def neutral_start(profile: DeviceProfile, backend_name: str, bounds=None) -> DeviceProfile:
    """The profile with each fitted parameter at the geometric middle of its bounds (arithmetic where the lower
    bound is 0): a start that owes nothing to earlier fits, to test whether the rows identify the parameters."""
    return start_at(profile, backend_name, 0.5, bounds)


def starts(profile: DeviceProfile, backend_name: str, bounds=None) -> dict[str, DeviceProfile]:
    """The deterministic starts of `fit_multistart`: the stored profile, the middle of the bounds, two corners
    (every parameter at 1/5 and at 4/5 of its log range) and two alternating corners (odd/even parameters low)."""
    names = list(bounds or BOUNDS)
    alt = lambda k: {n: (0.2 if i % 2 == k else 0.8) for i, n in enumerate(names)}  # noqa: E731
    return {"stored": profile, "middle": neutral_start(profile, backend_name, bounds),
            "low": start_at(profile, backend_name, 0.2, bounds), "high": start_at(profile, backend_name, 0.8, bounds),
            "alt-a": start_at(profile, backend_name, alt(0), bounds),
            "alt-b": start_at(profile, backend_name, alt(1), bounds)}


@dataclass(frozen=True)
class MultiStart:
    """The lowest-loss fit over deterministic starts, and how far the near-best ends disagree."""
    best: Backend
    best_start: str
    losses: dict  # start name -> fit loss at its end
    ends: dict  # start name -> fitted Backend
    spread: dict  # parameter -> max range_distance to the best value over the ends within `near` of the best loss
    near: float  # loss margin (relative, see equal_loss) that counts an end as equally good

    def identified(self, tol: float) -> bool:
        """True when every equally good end has every parameter within `tol` of its range from the best."""
        return all(v <= tol for v in self.spread.values())


def fit_multistart(profile: DeviceProfile, backend_name: str, items, bounds=None, rounds: int = 200,
                   start_profiles=None, near: float = 0.02) -> MultiStart:
    """fit_backend from every start (`starts`), keeping the lowest loss, so the result does not depend on what
    the stored profile held. Ties keep the first start in order (stored, middle, ...): deterministic."""
    bounds = bounds or BOUNDS
    start_profiles = start_profiles or starts(profile, backend_name, bounds)
    ends, losses = {}, {}
    for name, start in start_profiles.items():
        ends[name] = fit_backend(start, backend_name, items, rounds=rounds, bounds=bounds)
        losses[name] = fit_loss(profile, ends[name], items)
    best_name = min(losses, key=lambda n: (losses[n], list(losses).index(n)))
    best = ends[best_name]
    good = [n for n in ends if losses[n] <= equal_loss(losses[best_name], near, len(items))]
    return MultiStart(best, best_name, losses, ends, {p: max(range_distance(param(ends[n], p), param(best, p),
                                                                            *bounds[p]) for n in good)
                                                     for p in bounds}, near)


def equal_loss(best: float, near: float, n_rows: int) -> float:
    """The largest loss that counts as equally good as `best`: `near` relative, and at least 0.1 % RMS log error
    per row above it (a relative margin alone is empty when the rows fit exactly)."""
    return best * (1 + near) + 1e-6 * n_rows


def range_distance(a: float, b: float, lo: float, hi: float) -> float:
    """|a - b| as a fraction of the bound's range: in log space (linear where the lower bound is 0)."""
    return abs(math.log(a / b)) / math.log(hi / lo) if lo > 0 else abs(a - b) / hi


def fit_loss(profile: DeviceProfile, backend: Backend, items) -> float:
    """Sum of squared log residuals: what fit_backend minimises."""
    return sum(r * r for r in log_residuals(items, profile, backend))


def leave_one_out(profile: DeviceProfile, backend_name: str, items, bounds=None, groups=None) -> list[float]:
    """Cross-validated log residuals: each item predicted by a fit on the others. `groups` (one label per item,
    e.g. the network family) leaves a whole group out at once instead of one item."""
    groups = list(groups) if groups is not None else list(range(len(items)))
    out = [0.0] * len(items)
    for label in dict.fromkeys(groups):
        rest = [it for it, g in zip(items, groups) if g != label]
        fitted = fit_backend(profile, backend_name, rest, bounds=bounds)
        left = [(i, it) for i, (it, g) in enumerate(zip(items, groups)) if g == label]
        for (i, _), r in zip(left, log_residuals([it for _, it in left], profile, fitted)):
            out[i] = r
    return out


def rms(values) -> float:
    values = list(values)
    return math.sqrt(sum(v * v for v in values) / len(values))


def family(network: str) -> str:
    """Network family of a validation row (torchvision.resnet50 -> resnet, vgg16_bn -> vgg, fcn_resnet18 -> fcn)."""
    name = network.removeprefix("torchvision.")
    return "fcn" if name.startswith("fcn") else re.match(r"[a-z]+", name).group(0)


def pct(log_residual: float) -> float:
    """A log residual as a signed error in %."""
    return 100 * (math.exp(log_residual) - 1)


def validation_rows(profile: DeviceProfile, prepared) -> list[dict]:
    """Each published row priced by the profile's `trt` backend: predicted ms and signed error in %."""
    rows = []
    for row, fg in prepared:
        prec, _ = profile.precision("trt", row.precision)
        pred = predict_ms(fg, profile.backend("trt"), prec)
        rows.append(dict(id=row.id, network=row.network, family=family(row.network), input=row.input_chw,
                         split=row.split, published_ms=row.published_ms, predicted_ms=pred,
                         error=100 * (pred / row.published_ms - 1), source=row.source))
    return rows


def cross_validate(profile: DeviceProfile, fit_rows) -> tuple[list[float], list[float]]:
    """(leave-one-out, leave-one-family-out) errors in % of the fit rows, refitting TRT_FIT each time from the
    neutral start, so the figures depend on the rows only, not on the stored profile's earlier fits."""
    items, profile = targets(fit_rows), neutral_start(profile, "trt", TRT_FIT)
    loo = leave_one_out(profile, "trt", items, bounds=TRT_FIT)
    lofo = leave_one_out(profile, "trt", items, bounds=TRT_FIT, groups=[family(r.network) for r, _ in fit_rows])
    return [pct(r) for r in loo], [pct(r) for r in lofo]


def write_efficiency(path: Path, backend: Backend, source: str) -> None:
    """Replace the '# BEGIN fitted NAME' ... '# END fitted NAME' block of the device file."""
    e = backend.efficiency
    lines = [f"# BEGIN fitted {backend.name}", f"[backends.{backend.name}.efficiency]", f'source = "{source}"']
    lines += [f"{k} = {getattr(e, k):.6g}" for k in e.__dataclass_fields__]
    lines.append(f"# END fitted {backend.name}")
    text = Path(path).read_text()
    pattern = re.compile(rf"# BEGIN fitted {re.escape(backend.name)}\n.*?# END fitted {re.escape(backend.name)}", re.S)
    if not pattern.search(text):
        raise EdgesegError(f"{path}: no '# BEGIN fitted {backend.name}' block to update")
    Path(path).write_text(pattern.sub(lambda _: "\n".join(lines), text))
