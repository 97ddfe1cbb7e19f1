"""Host self-check: the calibrated host profile's prediction vs ONNX Runtime's measurement, per registry model.

Each registry model (input 1x1x112x96, scale 2, SR head) is exported in a temporary folder by the product's own
export_onnx + simplify at the target's default opset (what `edgeseg export` ships), predicted with the `host`
profile (ort-cpu, FP32) and measured with ONNX Runtime (one thread) by edgeseg.ort.interleaved_medians, the
models taking turns run by run; the error is against the median thread-CPU time (the probes are timed the same
way), the median wall time is reported beside it. The host profile is calibrated on single-op probes (not on
these models) --calibrations times and the models are timed between each calibration's probe rounds, so each
prediction meets a measurement taken under the same load; the last calibration is stored. --no-calibrate: the
stored profile, one measurement. On a shared machine pin the process to one core (taskset).
"""
from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

COMMAND = "edgeseg bench latency-host"


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="*", help="registry models (default: all)")
    p.add_argument("--runs", type=int, default=100,
                   help="timed runs per model and calibration (the models take turns, in the probe rounds)")
    p.add_argument("--calibrations", type=int, default=3, help="calibrate this many times (the last one is stored) "
                                                                "and report the spread of parameters and predictions")
    p.add_argument("--no-calibrate", action="store_true", help="use the stored host profile as it is")
    p.add_argument("--target", default="jetson-nano", help="export target whose default opset the models use")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")


def export(name: str, path: Path, opset: int) -> Path:
    """The registry model through the product's own export and simplification (what `edgeseg export` ships)."""
    import numpy as np

    from edgeseg.contract import ModelContract
    from edgeseg.export.simplify import simplify
    from edgeseg.export.to_onnx import export_onnx
    from edgeseg.models import create_model

    model = create_model(name, 1, 3, scale=2, sr_head=True).eval()
    contract = ModelContract(model_name=name, class_names=("bg", "a", "b"), label_values=(0, 1, 2), scale=2,
                             hr_size=(224, 192), input_shape=(1, 1, 112, 96))
    raw = export_onnx(model, contract, path.with_suffix(".raw.onnx"), opset)
    simplify(raw, path, np.zeros((1, 1, 112, 96), np.float32))
    return path


def param_spread(paths: list[Path]) -> list[str]:
    """'name min..max (spread %)' for each fitted parameter of the ort-cpu backend over the calibrations."""
    from edgeseg.latency.device import load_device

    backends = [load_device(str(p)).backend("ort-cpu") for p in paths]
    values = {"peak_gflops": [b.precisions["fp32"].peak_gflops for b in backends],
              "bandwidth_gbs": [b.bandwidth_gbs for b in backends]}
    for field in backends[0].efficiency.__dataclass_fields__:
        values[field] = [getattr(b.efficiency, field) for b in backends]
    for op in backends[0].op_efficiency:
        values[op] = [b.op_efficiency[op] for b in backends]
    return [f"{k} {min(v):.4g}..{max(v):.4g} ({100 * (max(v) / min(v) - 1):.0f} %)" for k, v in values.items()
            if isinstance(v[0], float) and min(v) > 0 and max(v) != min(v)]


def run(args) -> int:
    import warnings

    import numpy as np

    from edgeseg.bench.report import machine_line, write_section
    from edgeseg.export.check import load_target
    from edgeseg.latency.calibrate import ROUNDS, calibrate
    from edgeseg.latency.device import device_path
    from edgeseg.latency.predict import simulate
    from edgeseg.models import list_models
    from edgeseg.ort import cpu_session, interleaved_medians

    rows = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = args.models or list_models()
        paths = {n: export(n, Path(tmp) / f"{n}.onnx", load_target(args.target).default_opset) for n in names}
        sessions = {n: cpu_session(paths[n], 1) for n in names}
        rng = np.random.default_rng(0)
        feeds = {n: {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in s.get_inputs()}
                 for n, s in sessions.items()}
        n_cal = 1 if args.no_calibrate else max(1, args.calibrations)
        cals, loads = [], []
        for i in range(n_cal):  # the models are timed between the calibration's probe rounds: the same load
            times = []
            measure = lambda: times.append(interleaved_medians(sessions, feeds, max(3, args.runs // ROUNDS)))  # noqa: E731
            cals.append(device_path("host") if args.no_calibrate else
                        calibrate(out_path=None if i == n_cal - 1 else Path(tmp) / f"host{i}.toml", between=measure)[0])
            if not times:
                measure()
            loads.append(os.getloadavg()[0])
            for name in names:
                pred = simulate(paths[name], str(cals[-1]), "fp32")
                cpu, wall = (statistics.median(t[k][name] for t in times) for k in (1, 0))
                rows.setdefault(name, []).append((pred.total_ms, cpu, wall))
                print(f"calibration {i + 1}: {name}: predicted {pred.total_ms:.2f} ms, measured thread-CPU median "
                      f"{cpu:.2f} ms (wall {wall:.2f}) ({100 * (pred.total_ms / cpu - 1):+.1f} %)")
        print(f"host profile: {cals[-1]}")
        spread = param_spread(cals) if len(cals) > 1 else []
    lines = ["## Latency simulator self-check on this machine", "",
             f"Command: `{COMMAND}` ({n_cal} calibration(s) of the host profile on single-op probes; "
             "a measurement of every registry model with ONNX Runtime, 1 thread, input 1x1x112x96, the models taking "
             "turns run by run between the calibration's probe rounds; error = prediction vs the median thread-CPU "
             "time measured during that calibration). "
             "Target: within 20 %.", "",
             "| model | predicted ms, per calibration | measured thread-CPU ms, per calibration | measured wall ms | "
             "error, per calibration | error of the medians |", "|---|---:|---:|---:|---:|---:|"]
    last, worst = [], 0.0
    for name, runs in rows.items():
        e = [100 * (p / c - 1) for p, c, _ in runs]
        med = 100 * (statistics.median(r[0] for r in runs) / statistics.median(r[1] for r in runs) - 1)
        last.append(abs(e[-1]))
        worst = max([worst] + [abs(v) for v in e])
        lines.append(f"| {name} | {' / '.join(f'{r[0]:.2f}' for r in runs)} | "
                     f"{' / '.join(f'{r[1]:.2f}' for r in runs)} | {' / '.join(f'{r[2]:.1f}' for r in runs)} | "
                     f"{' / '.join(f'{v:+.1f} %' for v in e)} | {med:+.1f} % |")
    lines += ["", f"Stored (last) calibration: median |error| {statistics.median(last):.1f} %, max {max(last):.1f} % "
              f"over {len(rows)} models; worst over every calibration {worst:.1f} %."]
    lines += ["", "Load average (1 min) after each calibration: " + " / ".join(f"{v:.1f}" for v in loads) + "."]
    if spread:
        lines += ["", f"Fitted parameters that moved over the {len(cals)} calibrations (min..max, spread): "
                  + "; ".join(spread) + "."]
    lines += ["", machine_line() + f" Load average when written: {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
              "logical cores (thread-CPU time does not count other processes' time, but they share caches and "
              "memory bandwidth)."]
    write_section("latency-host", "\n".join(lines), args.docs)
    return 0
