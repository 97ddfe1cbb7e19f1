"""Archive scale: series/s of `edgeseg run` locally (one process) vs on a local Ray with 1 and 2 workers.

One run, the same archive (copies of the sample series with their own UIDs) for every engine, a fresh
output folder each; Ray's start-up (starting the cluster and loading the model in every worker) is
reported apart from the segmentation wall time. Per-series overhead of Ray = (Ray 1-worker wall - local
sequential wall) / series.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from edgeseg.bench.report import machine_line, write_section


def add_arguments(p) -> None:
    p.add_argument("--model", default="export/unet-s2-brain-nano/unet-s2-brain-nano.int8.onnx")
    p.add_argument("--series", type=int, default=40, help="series in the archive (default 40)")
    p.add_argument("--slices", type=int, default=8, help="slices per series, from the sample (default 8)")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")


def _archive(root: Path, n: int, slices: int) -> Path:
    from edgeseg.data.copy_series import write_series_copy

    files = sorted(Path("data/sample-mr-brain").glob("*.dcm"))[::max(1, 32 // slices)][:slices]
    for i in range(n):
        write_series_copy(files, root / f"s{i:03d}", f"bench-scale-{i}")
    return root


def run(args) -> int:
    import ray

    from edgeseg.runtime.pipeline import Options
    from edgeseg.runtime.pipeline import run as run_local
    from edgeseg.scale.ray_engine import run as run_ray

    load = os.getloadavg()[0]
    tmp = tempfile.TemporaryDirectory()
    archive = _archive(Path(tmp.name) / "in", args.series, args.slices)
    opts = Options(provider="cpu", threads=1, overlay=True)
    results = {}
    for mode, pipeline in (("local, sequential", False), ("local, pipelined", True)):
        t0 = time.perf_counter()
        rows, info = run_local(args.model, archive, Path(tmp.name) / mode.replace(", ", "-"),
                               Options(**{**opts.__dict__, "pipeline": pipeline}), show_progress=False)
        results[mode] = {"wall": info["segment_wall_s"], "total": time.perf_counter() - t0, "start": info["session_s"],
                         "ok": sum(r.status == "ok" for r in rows)}
    for workers in (1, 2):
        t0 = time.perf_counter()
        rows, info = run_ray(args.model, archive, Path(tmp.name) / f"ray{workers}", opts, workers=workers,
                             show_progress=False)
        results[f"Ray, {workers} worker(s)"] = {"wall": info["segment_wall_s"], "total": time.perf_counter() - t0,
                                                "start": info["ray_start_s"], "ok": sum(r.status == "ok" for r in rows)}
        ray.shutdown()
    base = results["local, sequential"]
    lines = ["## Archive scale (`edgeseg run --engine ray`)", "",
             f"`edgeseg bench scale --series {args.series} --slices {args.slices}` — {args.series} series of "
             f"{args.slices} slices (copies of the sample with their own UIDs), model `{Path(args.model).name}`, CPU, "
             "1 inference thread per process/worker, SEG + overlay + report per series.", "",
             "| engine | series ok | start-up s (apart) | segmentation wall s | series/s | x local sequential |",
             "|---|---:|---:|---:|---:|---:|"]
    for mode, r in results.items():
        lines.append(f"| {mode} | {r['ok']} | {r['start']:.1f} | {r['wall']:.1f} | {r['ok'] / r['wall']:.2f} | "
                     f"{base['wall'] / r['wall']:.2f} |")
    r1, r2 = results["Ray, 1 worker(s)"], results["Ray, 2 worker(s)"]
    per_series = (r1["wall"] - base["wall"]) / args.series
    lines += ["", f"Ray's overhead per series (1 worker vs local sequential): {1000 * per_series:.0f} ms, "
              f"{100 * per_series / (base['wall'] / args.series):.0f} % of a series' local time (target < 10 %); "
              f"Ray with 2 workers vs local sequential: x{base['wall'] / r2['wall']:.2f} (target >= 1.6).", "",
              f"{machine_line()} 1-minute load average when the bench started: {load:.1f} (other work on the "
              "machine counts: on 2 cores, two workers only help when the cores are free)."]
    md = "\n".join(lines)
    write_section("scale", md, args.docs)
    print(md)
    tmp.cleanup()
    return 0
