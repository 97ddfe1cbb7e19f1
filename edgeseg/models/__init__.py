"""Model registry: `create_model(name, in_channels, num_classes, scale, sr_head=True, head="pixelshuffle")`.

Every module in `edgeseg/models/backbones/` is imported here, so adding a backbone is adding one file
that uses `@register_backbone`; the SR heads (`sr_head.py`, `jnet_head.py`, `onestage_head.py`) register with `@register_head`.
"""
import importlib
import pkgutil

from edgeseg.models import backbones as _backbones
from edgeseg.models import jnet_head as _jnet_head  # noqa: F401  (registers "jnet", "jnet-authors")
from edgeseg.models import onestage_head as _onestage_head  # noqa: F401  (registers "onestage")
from edgeseg.models import sr_head as _sr_head  # noqa: F401  (registers "pixelshuffle")
from edgeseg.models.registry import (DEFAULT_HEAD, create_model, get_backbone_class, get_head_class, list_heads,
                                     list_models, register_backbone, register_head)

for _mod in pkgutil.iter_modules(_backbones.__path__):
    importlib.import_module(f"{_backbones.__name__}.{_mod.name}")

__all__ = ["DEFAULT_HEAD", "create_model", "get_backbone_class", "get_head_class", "list_heads", "list_models",
           "register_backbone", "register_head"]
