"""Backbones register themselves by name; `create_model` composes backbone + SR head."""
from __future__ import annotations

from typing import Callable

from edgeseg.errors import EdgesegError, nearest_key

_BACKBONES: dict[str, Callable] = {}


def register_backbone(name: str):
    """Decorator: `@register_backbone("unet")` on a class taking (in_channels, num_classes, width=...)."""

    def deco(cls):
        if name in _BACKBONES:
            raise ValueError(f"backbone '{name}' registered twice")
        _BACKBONES[name] = cls
        cls.registry_name = name
        return cls

    return deco


def list_models() -> list[str]:
    return sorted(_BACKBONES)


def get_backbone_class(name: str):
    if name not in _BACKBONES:
        raise EdgesegError(f"unknown model '{name}'{nearest_key(name, _BACKBONES)}; known: {', '.join(list_models())}")
    return _BACKBONES[name]


def create_model(name: str, in_channels: int = 1, num_classes: int = 3, scale: int = 2, sr_head: bool = True, **backbone_kwargs):
    """Build a segmentation model by name.

    The backbone runs on the low-resolution input (H/scale, W/scale). With `sr_head=True` a tiny
    learned head returns full-resolution logits; without it the logits are upsampled bilinearly
    (scale > 1) or returned as they are (scale == 1, full-resolution input).
    """
    from edgeseg.models.segmodel import SegModel
    from edgeseg.models.sr_head import SRHead

    if scale not in (1, 2, 4, 8):
        raise EdgesegError(f"scale must be 1, 2, 4 or 8, got {scale}")
    backbone = get_backbone_class(name)(in_channels=in_channels, num_classes=num_classes, **backbone_kwargs)
    head = SRHead(num_classes=num_classes, scale=scale, in_channels=in_channels) if (sr_head and scale > 1) else None
    return SegModel(backbone, head, scale=scale, name=name)
