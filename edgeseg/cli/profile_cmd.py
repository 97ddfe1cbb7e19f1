"""edgeseg profile: measure ONNX models on this machine with ONNX Runtime."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("profile", help="measure ONNX models here with ONNX Runtime (p50/p90/p99, per-op times)",
                       description="Warm up, time repeated runs and break the time down per operator with ONNX "
                                   "Runtime's profiler. Several models are measured in one run, side by side.")
    p.add_argument("models", nargs="+", metavar="MODEL.onnx")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (0: its default)")
    p.add_argument("--input-shape", help="fix a dynamic input, e.g. 1x1x112x96")
    p.add_argument("--op-runs", type=int, default=10, help="runs under ONNX Runtime's profiler (0: skip)")
    p.add_argument("--top-ops", type=int, default=5)
    p.add_argument("--json", help="write all results to this JSON file")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgeseg.latency.graph import parse_shape
    from edgeseg.latency.profile import profile_model

    shape = parse_shape(args.input_shape) if args.input_shape else None
    results = [profile_model(m, args.runs, args.warmup, args.threads, shape, args.op_runs) for m in args.models]
    base = results[0].p50_ms
    print(f"{'model':<24}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'FPS':>8}{'vs first':>9}{'threads':>8}"
          f"{'peak RSS':>11}")
    for r in results:
        print(f"{r.model[:23]:<24}{r.p50_ms:>9.2f}{r.p90_ms:>9.2f}{r.p99_ms:>9.2f}{r.throughput_fps:>8.1f}"
              f"{r.p50_ms / base:>8.2f}x{r.threads:>8}{r.peak_rss_mb:>8.0f} MB")
    print(f"({results[0].runs} runs after {results[0].warmup} warm-up; peak RSS is the process maximum so far)")
    for r in results:
        if r.op_ms:
            total = sum(r.op_ms.values())
            ops = ", ".join(f"{op} {ms:.2f} ms ({100 * ms / total:.0f}%)" for op, ms in list(r.op_ms.items())[:args.top_ops])
            print(f"{r.model}: {ops}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.to_dict() for r in results], f, indent=1)
        print(f"written: {args.json}")
    return 0
