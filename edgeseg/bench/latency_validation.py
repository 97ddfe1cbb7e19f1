"""Latency simulator vs published Jetson Nano measurements (fit rows and held-out rows apart).

The networks of benchmarks/data/jetson_nano_published.csv are rebuilt (edgeseg/latency/zoo.py,
architecture only) and priced with the jetson-nano profile. With --fit the TensorRT efficiencies are
first refitted on the rows marked split=fit and written back into edgeseg/latency/devices/jetson-nano.toml;
the held-out rows never enter the fit.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

COMMAND = "edgeseg bench latency-validation --fit"


def add_arguments(p) -> None:
    p.add_argument("--fit", action="store_true", help="refit the jetson-nano trt efficiencies first (writes the profile)")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")
    p.add_argument("--plot", default="docs/latency_validation.png")


def summary(errors: list[float]) -> str:
    a = [abs(e) for e in errors]
    return f"median |error| {statistics.median(a):.1f} %, max {max(a):.1f} % ({len(a)} rows)"


def evaluate(profile, prepared) -> list[dict]:
    from edgeseg.latency.fit import predict_ms

    rows = []
    for row, fg in prepared:
        prec, _ = profile.precision("trt", row.precision)
        pred = predict_ms(fg, profile.backend("trt"), prec)
        rows.append(dict(id=row.id, network=row.network, input=row.input_chw, split=row.split,
                         published_ms=row.published_ms, predicted_ms=pred,
                         error=100 * (pred / row.published_ms - 1), source=row.source))
    return rows


def run(args) -> int:
    from edgeseg.bench.report import machine_line, write_section
    from edgeseg.latency.device import load_device
    from edgeseg.latency.fit import fit_backend, load_rows, prepare, targets, write_efficiency
    from edgeseg.latency.plot import validation_chart

    prepared = prepare(load_rows())
    profile = load_device("jetson-nano")
    if args.fit:
        fit_rows = [p for p in prepared if p[0].split == "fit"]
        backend = fit_backend(profile, "trt", targets(fit_rows))
        write_efficiency(profile.path, backend, f"fitted by `{COMMAND}` on the split=fit rows of "
                                                "benchmarks/data/jetson_nano_published.csv")
        profile = load_device("jetson-nano")
        print(f"fitted and written: {profile.path}")
    rows = evaluate(profile, prepared)
    e = profile.backend("trt").efficiency
    lines = ["## Latency simulator vs published Jetson Nano measurements", "",
             f"Command: `{COMMAND}` (without `--fit`: evaluate the stored profile). Networks rebuilt from their "
             "architecture (random weights do not matter for timing), priced by the jetson-nano `trt` profile at "
             "FP16. Published FPS converted to ms; error = predicted / published - 1.", "",
             "| row | network | input | split | published ms | predicted ms | error |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['id']} | {r['network']} | {'x'.join(map(str, r['input']))} | {r['split']} | "
                     f"{r['published_ms']:.1f} | {r['predicted_ms']:.1f} | {r['error']:+.1f} % |")
    fit_err = [r["error"] for r in rows if r["split"] == "fit"]
    held_err = [r["error"] for r in rows if r["split"] == "held-out"]
    lines += ["", f"- fit rows: {summary(fit_err)}", f"- held-out rows: {summary(held_err)}",
              f"- all rows: {summary(fit_err + held_err)}", "",
              "Fitted TensorRT efficiencies: " + ", ".join(f"{k} {getattr(e, k):.3g}" for k in e.__dataclass_fields__)
              + f". The band printed by `edgeseg simulate` is t x exp(+-{e.uncertainty:.3f}), the RMS log residual "
              "of the fit rows. Sources of every row: benchmarks/data/jetson_nano_published.csv.", "",
              f"![predicted vs published]({Path(args.plot).name})", "", machine_line() +
              " (The simulation is deterministic; the machine does not affect these figures.)"]
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    validation_chart(rows, args.plot)
    write_section("latency-validation", "\n".join(lines), args.docs)
    print("\n".join(lines[6:6 + len(rows)]))
    print(f"fit: {summary(fit_err)}\nheld-out: {summary(held_err)}")
    return 0 if all(abs(x) <= 35 for x in fit_err + held_err) and statistics.median(map(abs, fit_err + held_err)) <= 15 \
        else (print("target missed: median <= 15 %, max <= 35 %") or 0)
