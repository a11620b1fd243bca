"""Model registry. Importing this package registers every model: each module in it is one family.

A new model kind is one file here that defines its config and class and decorates the class
with ``@register("name")``; nothing else needs to list it.
"""

import importlib
import pkgutil

from explorer.models.base import BaseVAE
from explorer.models.registry import build_model, get_model_class, model_names, model_options, register

_SUPPORT = {"base", "registry", "terms"}
for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):  # registration side effect
    if _m.name not in _SUPPORT:
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["BaseVAE", "build_model", "get_model_class", "model_names", "model_options", "register"]
