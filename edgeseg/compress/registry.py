"""Compression schemes by name: the one place a scheme is looked up ("module:Class", imported on use).

A scheme class has a frozen `Params` dataclass (its keys of the recipe's [scheme] table) and
`apply(model, input_shape) -> records`, `rebuild(model, input_shape, records)`,
`calibrate(model, batches)`, `on_epoch(model, epoch, epochs)`, `export_kind` ("qdq" or "float").
Adding a scheme is adding its file and one line here.
"""
from __future__ import annotations

import importlib

from edgeseg.config import from_dict
from edgeseg.errors import EdgesegError, nearest_key

SCHEMES = {
    "float": "edgeseg.compress.schemes:Float",
    "fixedpoint": "edgeseg.compress.schemes:FixedPoint",
    "perone": "edgeseg.compress.schemes:PeroneFixedPoint",
    "ternary": "edgeseg.compress.schemes:Ternary",
    "binary": "edgeseg.compress.schemes:Binary",
    "ternarynet": "edgeseg.compress.schemes:TernaryNet",
    "binarynet": "edgeseg.compress.schemes:BinaryNet",
    "tucker": "edgeseg.compress.schemes:Tucker",
}


def list_schemes() -> list[str]:
    return sorted(SCHEMES)


def scheme_class(name: str):
    if name not in SCHEMES:
        raise EdgesegError(f"unknown compression scheme '{name}'{nearest_key(name, SCHEMES)}; known: {', '.join(list_schemes())}")
    module, _, attr = SCHEMES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_scheme(table: dict, where: str = "[scheme]"):
    """[scheme] table (name = ..., then the scheme's own keys) -> scheme instance; unknown keys are errors."""
    table = dict(table)
    name = table.pop("name", "")
    if not name:
        raise EdgesegError(f"{where}: needs name = one of {', '.join(list_schemes())}")
    cls = scheme_class(name)
    return cls(from_dict(cls.Params, table, f"{where} ({name})"))
