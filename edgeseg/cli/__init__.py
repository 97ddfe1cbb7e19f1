"""The `edgeseg` console entry point: a thin argparse layer over the Python API.

Each subcommand lives in its own module exposing `register(subparsers)`; heavy imports (torch, onnx)
happen inside the handlers so `edgeseg run` works with the light base install.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from edgeseg import __version__
from edgeseg.errors import EdgesegError

# Order here is the order in `edgeseg --help`.
COMMAND_MODULES = [
    "edgeseg.cli.train_cmd",
    "edgeseg.cli.evaluate_cmd",
    "edgeseg.cli.export_cmd",
    "edgeseg.cli.check_cmd",
    "edgeseg.cli.run_cmd",
    "edgeseg.cli.simulate_cmd",
    "edgeseg.cli.profile_cmd",
    "edgeseg.cli.devices_cmd",
    "edgeseg.cli.models_cmd",
    "edgeseg.cli.compress_cmd",
    "edgeseg.cli.serve_cmd",
    "edgeseg.cli.bench_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeseg", description="Medical image segmentation from a laptop to a Jetson.")
    parser.add_argument("--version", action="version", version=f"edgeseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdgesegError as exc:
        print(f"edgeseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
