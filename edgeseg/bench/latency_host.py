"""Host self-check: the calibrated host profile's prediction vs ONNX Runtime's measurement, per registry model.

Each registry model (input 1x1x112x96, scale 2, SR head) is exported to ONNX in a temporary folder,
predicted with the `host` profile (ort-cpu, FP32) and measured by `edgeseg profile` (one thread, p50).
The host profile is calibrated first on single-op probes (not on these models) unless --no-calibrate.
Timing on a loaded machine is noisy: rerun on a quiet one.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

COMMAND = "edgeseg bench latency-host"


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="*", help="registry models (default: all)")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--no-calibrate", action="store_true", help="use the stored host profile as it is")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")


def export(name: str, path: Path) -> Path:
    import torch

    from edgeseg.models import create_model

    model = create_model(name, 1, 3, scale=2, sr_head=True).eval()
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 1, 112, 96), str(path), dynamo=False, opset_version=17)
    return path


def run(args) -> int:
    import warnings

    from edgeseg.bench.report import machine_line, write_section
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
        for name in args.models or list_models():
            onnx_path = export(name, Path(tmp) / f"{name}.onnx")
            pred = simulate(onnx_path, "host", "fp32")
            meas = profile_model(onnx_path, runs=args.runs, warmup=5, threads=1, op_runs=0)
            rows.append((name, pred.total_ms, pred.band_ms, meas.p50_ms, meas.p90_ms,
                         100 * (pred.total_ms / meas.p50_ms - 1)))
            print(f"{name}: predicted {pred.total_ms:.2f} ms, measured p50 {meas.p50_ms:.2f} ms ({rows[-1][-1]:+.1f} %)")
    lines = ["## Latency simulator self-check on this machine", "",
             f"Command: `{COMMAND}` (calibrates the host profile on single-op probes, then predicts each registry "
             "model and measures it with ONNX Runtime, 1 thread, input 1x1x112x96). Target: within 20 %.", "",
             "| model | predicted ms | band ms | measured p50 ms | p90 ms | error |", "|---|---:|---:|---:|---:|---:|"]
    for name, p, band, p50, p90, err in rows:
        lines.append(f"| {name} | {p:.2f} | {band[0]:.2f}..{band[1]:.2f} | {p50:.2f} | {p90:.2f} | {err:+.1f} % |")
    errs = [abs(r[-1]) for r in rows]
    lines += ["", f"Median |error| {statistics.median(errs):.1f} %, max {max(errs):.1f} % over {len(rows)} models.",
              "", machine_line()]
    write_section("latency-host", "\n".join(lines), args.docs)
    return 0
