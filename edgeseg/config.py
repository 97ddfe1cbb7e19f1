"""Frozen dataclass configs loaded from TOML recipes; unknown keys are rejected by name."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path

from edgeseg.errors import EdgesegError, nearest_key


def from_dict(cls, data: dict, where: str):
    """Build dataclass `cls` from a dict, rejecting unknown keys and converting lists to tuples."""
    if not isinstance(data, dict):
        raise EdgesegError(f"{where}: expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise EdgesegError(f"{where}: unknown key '{key}'{nearest_key(key, fields)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise EdgesegError(f"{where}: {exc}") from exc


def to_dict(obj) -> dict:
    """Dataclass -> plain dict of builtins (tuples become lists), JSON/TOML friendly."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def read_toml(path: str | Path) -> dict:
    """A recipe file (edgeseg.io.read_toml)."""
    from edgeseg.io import read_toml as _read

    return _read(path, "recipe file")


def recipe_hash(recipe: dict) -> str:
    """Short stable hash of a recipe dict (key order does not matter)."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
