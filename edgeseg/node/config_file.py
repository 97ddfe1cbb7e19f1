"""The node's configuration file (deploy/edgeseg.toml) -> NodeConfig: the one loader that the command line
(`edgeseg serve --config FILE`), the launcher (deploy/edgeseg_launch.py) and the health check share.

[serve] keys are NodeConfig's field names (ae_title, port, spool, forward = "AE@HOST:PORT" or a list of them, allow_ae as
a list or "A,B", ...); [runtime] trt_cache is the TensorRT engine cache. Defaults live in NodeConfig
only; an unknown table or key is an error naming it and the nearest valid one. Python >= 3.8: tomllib,
else tomli (a dependency there).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from edgeseg.errors import EdgesegError, nearest_key
from edgeseg.node.config import NodeConfig, parse_allow, parse_destination

PATH_FIELDS = {"model", "spool", "out", "tls_cert", "tls_key", "tls_client_ca", "forward_ca", "forward_cert",
               "forward_key", "trt_cache"}
FIELDS = {f.name: f for f in dataclasses.fields(NodeConfig)}


def read_config_file(path) -> dict:
    """The [serve] values of a config file, [runtime] trt_cache folded in; one-line errors."""
    from edgeseg.io import read_toml

    path = Path(path)
    data = read_toml(path, "config file")
    unknown = set(data) - {"serve", "runtime"}
    if unknown:
        table = sorted(unknown)[0]
        raise EdgesegError(f"{path}: unknown table [{table}]{nearest_key(table, ['serve', 'runtime'])}; "
                           "use [serve] and [runtime]")
    runtime = dict(data.get("runtime", {}))
    values = dict(data.get("serve", {}))
    if "trt_cache" in runtime:
        values.setdefault("trt_cache", runtime.pop("trt_cache"))
    if runtime:
        key = sorted(runtime)[0]
        raise EdgesegError(f"{path}: unknown key '{key}' in [runtime] (only trt_cache)")
    check_keys(values, f"{path} [serve]")
    return values


def check_keys(values: dict, where: str) -> None:
    for key in values:
        if key not in FIELDS:
            raise EdgesegError(f"{where}: unknown key '{key}'{nearest_key(key, FIELDS)}")


def node_config(values: dict, where: str = "config") -> NodeConfig:
    """NodeConfig from raw values (file and/or flags): paths, the forward destination and the allow list
    converted; everything else validated by NodeConfig itself."""
    check_keys(values, where)
    kw = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in PATH_FIELDS:
            value = Path(value)
        elif key == "forward":
            items = [value] if isinstance(value, str) else list(value)
            value = tuple(parse_destination(v) for item in items for v in str(item).split(",") if v.strip())
        elif key == "allow_ae":
            value = parse_allow(",".join(value) if isinstance(value, (list, tuple)) else value)
        kw[key] = value
    for required in ("model", "spool"):
        if required not in kw:
            raise EdgesegError(f"{where}: '{required}' is required (MODEL.onnx / --spool DIR)")
    try:
        return NodeConfig(**kw)
    except TypeError as exc:
        raise EdgesegError(f"{where}: {exc}") from exc
