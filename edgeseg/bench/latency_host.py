"""Host self-check: the calibrated host profile's prediction vs ONNX Runtime's measurement, per registry model.

Each registry model (input 1x1x112x96, scale 2, SR head) is exported in a temporary folder by the product's own
export_onnx + simplify at the target's default opset (what `edgeseg export` ships), then
predicted with the `host` profile (ort-cpu, FP32) and measured by `edgeseg profile` (one thread, p50).
The host profile is calibrated first on single-op probes (not on these models) unless --no-calibrate.
Timing on a loaded machine is noisy: rerun on a quiet one.
"""
from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

COMMAND = "edgeseg bench latency-host"


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="*", help="registry models (default: all)")
    p.add_argument("--runs", type=int, default=60, help="timed runs per model, split over --rounds")
    p.add_argument("--rounds", type=int, default=3, help="models are timed round-robin this many times; "
                                                          "the median of the per-round p50 is reported")
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


def run(args) -> int:
    import warnings

    from edgeseg.bench.report import machine_line, write_section
    from edgeseg.export.check import load_target
    from edgeseg.latency.predict import simulate
    from edgeseg.latency.profile import profile_model
    from edgeseg.models import list_models

    if not args.no_calibrate:
        from edgeseg.latency.calibrate import calibrate

        path, _ = calibrate()
        print(f"host calibrated: {path}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = args.models or list_models()
        paths = {n: export(n, Path(tmp) / f"{n}.onnx", load_target(args.target).default_opset) for n in names}
        meas = {n: [] for n in names}
        for _ in range(max(1, args.rounds)):  # round-robin: load spikes hit every model alike
            for n in names:
                meas[n].append(profile_model(paths[n], runs=max(3, args.runs // args.rounds), warmup=3, threads=1,
                                             op_runs=0))
        for name in names:
            pred = simulate(paths[name], "host", "fp32")
            p50 = statistics.median(m.p50_ms for m in meas[name])
            best = min(m.min_ms for m in meas[name])
            rows.append((name, pred.total_ms, pred.band_ms, p50, best, 100 * (pred.total_ms / p50 - 1)))
            print(f"{name}: predicted {pred.total_ms:.2f} ms, measured p50 {p50:.2f} ms (min {best:.2f}) "
                  f"({rows[-1][-1]:+.1f} %)")
    lines = ["## Latency simulator self-check on this machine", "",
             f"Command: `{COMMAND}` (calibrates the host profile on single-op probes, then predicts each registry "
             "model and measures it with ONNX Runtime, 1 thread, input 1x1x112x96). Target: within 20 %.", "",
             "| model | predicted ms | band ms | measured p50 ms | fastest run ms | error vs p50 | error vs fastest |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, p, band, p50, best, err in rows:
        lines.append(f"| {name} | {p:.2f} | {band[0]:.2f}..{band[1]:.2f} | {p50:.2f} | {best:.2f} | {err:+.1f} % | "
                     f"{100 * (p / best - 1):+.1f} % |")
    errs = [abs(r[-1]) for r in rows]
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        lines += ["", f"**Taken under load** (load average {load:.1f} on {os.cpu_count()} cores: the fastest run is often "
                      "less than half the p50). These errors measure the load as much as the model: rerun "
                      f"`{COMMAND}` on a quiet machine."]
    fast = [abs(100 * (r[1] / r[4] - 1)) for r in rows]
    lines += ["", f"Median |error| vs p50 {statistics.median(errs):.1f} %, max {max(errs):.1f} % over {len(rows)} models; "
              f"vs the fastest run (the least disturbed by other load) median {statistics.median(fast):.1f} %, "
              f"max {max(fast):.1f} %.",
              "", machine_line() + f" Load average when written: {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
              "logical cores (a figure above the core count means the timings were taken under load)."]
    write_section("latency-host", "\n".join(lines), args.docs)
    return 0
