"""Model registry: `create_model(name, in_channels, num_classes, scale, sr_head=True)`.

Every module in `edgeseg/models/backbones/` is imported here, so adding a backbone is adding one file
that uses `@register_backbone`.
"""
import importlib
import pkgutil

from edgeseg.models import backbones as _backbones
from edgeseg.models.registry import create_model, get_backbone_class, list_models, register_backbone

for _mod in pkgutil.iter_modules(_backbones.__path__):
    importlib.import_module(f"{_backbones.__name__}.{_mod.name}")

__all__ = ["create_model", "get_backbone_class", "list_models", "register_backbone"]
