#!/usr/bin/env python3
"""edgeseg-launch: start `edgeseg serve` from a TOML config file (deploy/edgeseg.toml).

    edgeseg-launch [--config FILE] [--health] [--print] [-- EXTRA SERVE FLAGS]

The file is read by edgeseg itself (`edgeseg serve --config FILE`, edgeseg/node/config_file.py): its
[serve] keys are the node's settings (ae_title, port, spool, forward, ...), [runtime] trt_cache the
TensorRT engine cache. This launcher only finds the file, checks it, creates the engine cache folder
and hands over. --health runs `edgeseg serve --health --config FILE` (the Docker HEALTHCHECK and the
systemd readiness probe); --print shows the command and exits.
The config file is --config, else $EDGESEG_CONFIG, else /etc/edgeseg/edgeseg.toml. Python >= 3.8.
"""
import argparse
import os
import sys

DEFAULT_CONFIG = "/etc/edgeseg/edgeseg.toml"


def serve_argv(path, values, health=False):
    """The `edgeseg serve` argument list (without the program name) for a config file."""
    argv = ["serve"]
    if health:
        argv.append("--health")
    elif values.get("model"):
        argv.append(str(values["model"]))
    return argv + ["--config", str(path)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="edgeseg-launch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=os.environ.get("EDGESEG_CONFIG", DEFAULT_CONFIG))
    ap.add_argument("--health", action="store_true", help="probe the configured node with C-ECHO")
    ap.add_argument("--print", action="store_true", help="print the edgeseg command and exit")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="more `edgeseg serve` flags after --")
    args = ap.parse_args(argv)
    from edgeseg.errors import EdgesegError
    from edgeseg.node.config_file import read_config_file

    try:
        values = read_config_file(args.config)
    except EdgesegError as exc:
        print("edgeseg-launch: error: %s" % exc, file=sys.stderr)
        return 2
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    serve = serve_argv(args.config, values, health=args.health) + extra
    if args.print:
        print("edgeseg", " ".join(serve))
        return 0
    if values.get("trt_cache"):
        try:
            os.makedirs(str(values["trt_cache"]), exist_ok=True)
        except OSError:
            pass  # the runtime reports an unwritable cache when TensorRT is used
    from edgeseg.cli import main as edgeseg_main

    return edgeseg_main(serve)


if __name__ == "__main__":
    sys.exit(main())
