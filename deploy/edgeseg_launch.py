#!/usr/bin/env python3
"""edgeseg-launch: start `edgeseg serve` from a TOML config file (deploy/edgeseg.toml).

    edgeseg-launch [--config FILE] [--health] [--print] [-- EXTRA SERVE FLAGS]

Every key of the [serve] table becomes the `edgeseg serve` flag of the same name (ae_title ->
--ae-title; lists are joined with commas; true -> a bare flag; false/absent -> serve's default).
[runtime] trt_cache is exported as EDGESEG_TRT_CACHE (the TensorRT engine cache folder).
--health runs `edgeseg serve --health` against the configured port, AE title and first allowed AE
(the Docker HEALTHCHECK and the systemd readiness probe). --print shows the command and exits.
The config file is --config, else $EDGESEG_CONFIG, else /etc/edgeseg/edgeseg.toml.
Runs on Python >= 3.8 (tomllib, else tomli, else a parser for the flat subset this file uses).
"""
import argparse
import ast
import os
import re
import sys

DEFAULT_CONFIG = "/etc/edgeseg/edgeseg.toml"
HEALTH_KEYS = ("port", "ae_title", "allow_ae", "bind")


def _parse_flat_toml(text):
    """Tables of `key = value` with strings, numbers, booleans and one-line lists (no nesting)."""
    data = {}
    current = data
    for n, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if not line:
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line)
        if m:
            current = data.setdefault(m.group(1), {})
            continue
        m = re.fullmatch(r"([A-Za-z0-9_-]+)\s*=\s*(.+)", line)
        if not m:
            raise ValueError("line %d: cannot parse %r" % (n, raw))
        value = m.group(2).strip()
        value = {"true": "True", "false": "False"}.get(value, value)
        try:
            current[m.group(1)] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError("line %d: unsupported value %r" % (n, m.group(2)))
    return data


def _strip_comment(raw):
    out, quoted = [], False
    for ch in raw:
        if ch == '"':
            quoted = not quoted
        if ch == "#" and not quoted:
            break
        out.append(ch)
    return "".join(out).strip()


def load_config(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        import tomllib  # novm (Python >= 3.11; tomli or the flat parser below otherwise)
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            tomllib = None
    if tomllib is not None:
        return tomllib.loads(raw.decode("utf-8"))
    return _parse_flat_toml(raw.decode("utf-8"))


def flag_value(value):
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def serve_argv(config, health=False):
    """The `edgeseg serve` argument list (without the program name) for a loaded config."""
    serve = dict(config.get("serve", {}))
    unknown = set(config) - {"serve", "runtime"}
    if unknown:
        raise ValueError("unknown table(s) %s: use [serve] and [runtime]" % ", ".join(sorted(unknown)))
    argv = ["serve"]
    model = serve.pop("model", None)
    if health:
        argv.append("--health")
        serve = {k: v for k, v in serve.items() if k in HEALTH_KEYS}
    elif model:
        argv.append(str(model))
    for key, value in serve.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        else:
            argv += [flag, flag_value(value)]
    return argv


def runtime_env(config):
    env = {}
    cache = config.get("runtime", {}).get("trt_cache")
    if cache:
        env["EDGESEG_TRT_CACHE"] = str(cache)
    return env


def main(argv=None):
    ap = argparse.ArgumentParser(prog="edgeseg-launch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=os.environ.get("EDGESEG_CONFIG", DEFAULT_CONFIG))
    ap.add_argument("--health", action="store_true", help="probe the configured node with C-ECHO")
    ap.add_argument("--print", action="store_true", help="print the edgeseg command and exit")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="more `edgeseg serve` flags after --")
    args = ap.parse_args(argv)
    try:
        config = load_config(args.config)
        serve = serve_argv(config, health=args.health)
    except (OSError, ValueError) as exc:
        print("edgeseg-launch: error: %s: %s" % (args.config, exc), file=sys.stderr)
        return 2
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    serve += extra
    env = runtime_env(config)
    if args.print:
        print(" ".join("%s=%s" % kv for kv in sorted(env.items())), "edgeseg", " ".join(serve))
        return 0
    os.environ.update(env)
    if env.get("EDGESEG_TRT_CACHE"):
        try:
            os.makedirs(env["EDGESEG_TRT_CACHE"], exist_ok=True)
        except OSError:
            pass  # the runtime reports an unwritable cache when TensorRT is used
    from edgeseg.cli import main as edgeseg_main

    return edgeseg_main(serve)


if __name__ == "__main__":
    sys.exit(main())
