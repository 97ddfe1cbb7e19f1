"""Backbones and SR heads register themselves by name; `create_model` composes backbone + SR head.

One place for both lookups: `get_backbone_class(name)` and `get_head_class(name)` raise an
EdgesegError naming the nearest known name.
"""
from __future__ import annotations

from typing import Callable

from edgeseg.errors import EdgesegError, nearest_key

_BACKBONES: dict[str, Callable] = {}
_HEADS: dict[str, Callable] = {}
DEFAULT_HEAD = "pixelshuffle"


def _register(table: dict, kind: str, name: str):
    def deco(cls):
        if name in table:
            raise ValueError(f"{kind} '{name}' registered twice")
        table[name] = cls
        cls.registry_name = name
        return cls

    return deco


def register_backbone(name: str):
    """Decorator: `@register_backbone("unet")` on a class taking (in_channels, num_classes, width=...)."""
    return _register(_BACKBONES, "backbone", name)


def register_head(name: str):
    """Decorator: `@register_head("jnet")` on a module class taking (num_classes, scale, in_channels=1).

    A head maps (low-res logits, low-res image) to full-resolution logits in `forward`, and returns the
    logits at every scale it produces (1x first, full resolution last) from `pyramid`, for deep supervision.
    """
    return _register(_HEADS, "head", name)


def list_models() -> list[str]:
    return sorted(_BACKBONES)


def list_heads() -> list[str]:
    return sorted(_HEADS)


def get_backbone_class(name: str):
    if name not in _BACKBONES:
        raise EdgesegError(f"unknown model '{name}'{nearest_key(name, _BACKBONES)}; known: {', '.join(list_models())}")
    return _BACKBONES[name]


def get_head_class(name: str):
    if name not in _HEADS:
        raise EdgesegError(f"unknown SR head '{name}'{nearest_key(name, _HEADS)}; known: {', '.join(list_heads())}")
    return _HEADS[name]


def create_model(name: str, in_channels: int = 1, num_classes: int = 3, scale: int = 2, sr_head: bool = True,
                 head: str = DEFAULT_HEAD, **backbone_kwargs):
    """Build a segmentation model by name.

    The backbone runs on the low-resolution input (H/scale, W/scale). With `sr_head=True` the tiny
    learned head registered as `head` returns full-resolution logits; without it the logits are
    upsampled bilinearly (scale > 1) or returned as they are (scale == 1, full-resolution input).
    """
    from edgeseg.models.segmodel import SegModel

    if scale not in (1, 2, 4, 8):
        raise EdgesegError(f"scale must be 1, 2, 4 or 8, got {scale}")
    head_class = get_head_class(head)  # an unknown name is an error even where no head is built
    backbone = get_backbone_class(name)(in_channels=in_channels, num_classes=num_classes, **backbone_kwargs)
    sr = head_class(num_classes=num_classes, scale=scale, in_channels=in_channels) if (sr_head and scale > 1) else None
    return SegModel(backbone, sr, scale=scale, name=name)
