"""Fit a backend's roofline efficiencies to published measurements and store them in the device file.

Least squares on log(predicted / published) over the rows marked `split=fit` in
benchmarks/data/jetson_nano_published.csv, by a deterministic coordinate search in log space (no
scipy needed). The held-out rows are never seen by the fit. `uncertainty` is the RMS log residual of
the fit rows, so the band t*exp(+-u) is about a one-sigma band.
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
from edgeseg.latency.roofline import kernel_times

PUBLISHED = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "jetson_nano_published.csv"
# fitted parameter -> physical bounds (Winograd F(2x2,3x3) saves at most 2.25x the multiplies; no backend
# beats the nominal bandwidth; a kernel launch costs microseconds)
BOUNDS = {"conv3x3": (0.05, 2.25), "conv": (0.05, 1.0), "gemm": (0.01, 1.0), "other": (0.001, 1.0),
          "memory": (0.2, 1.0), "concat": (0.0, 1.0), "launch_us": (2.0, 500.0), "saturation": (100.0, 1e6)}


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
    return 1e3 * sum(t.seconds for t in kernel_times(fg, backend, precision))


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
    """A fitted parameter: an Efficiency field, or `op:TYPE` for an entry of the op_efficiency table."""
    return b.op_efficiency[name[3:]] if name.startswith("op:") else getattr(b.efficiency, name)


def with_param(b: Backend, name: str, value: float) -> Backend:
    if name.startswith("op:"):
        return replace(b, op_efficiency={**b.op_efficiency, name[3:]: value})
    return replace(b, efficiency=replace(b.efficiency, **{name: value}))


def fit_backend(profile: DeviceProfile, backend_name: str, items, rounds: int = 200, bounds=None) -> Backend:
    """Coordinate search: multiply/divide each parameter (see `param`) by a shrinking step while the loss drops."""
    backend = profile.backend(backend_name)
    loss = lambda b: sum(r * r for r in log_residuals(items, profile, b))  # noqa: E731
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
