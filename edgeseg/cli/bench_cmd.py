"""edgeseg bench NAME: run a benchmark that writes its section of docs/BENCHMARKS.md."""
from __future__ import annotations

import importlib

# name -> module with `add_arguments(parser)` and `run(args) -> int`; adding a benchmark is adding a line + a file
BENCHMARKS = {
    "srhead": "edgeseg.bench.srhead",
    "runner": "edgeseg.bench.runner",
    "export": "edgeseg.bench.export_table",
    "int8-cpu": "edgeseg.bench.int8_cpu",
    "latency-validation": "edgeseg.bench.latency_validation",
    "latency-host": "edgeseg.bench.latency_host",
    "compression": "edgeseg.bench.compression",
    "node": "edgeseg.bench.node",
    "robustness": "edgeseg.bench.robustness",
    "scale": "edgeseg.bench.scale",
}


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark; writes docs/BENCHMARKS.md and a PNG",
                       description="Run a benchmark. Each writes its own section of docs/BENCHMARKS.md.")
    names = p.add_subparsers(dest="bench", metavar="NAME")
    names.required = True
    for name, module in BENCHMARKS.items():
        mod = importlib.import_module(module)
        q = names.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        mod.add_arguments(q)
        q.set_defaults(func=mod.run)
