"""Name -> model class. Model modules register themselves with ``@register``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from explorer.config import Option, config_options
from explorer.errors import ConfigError

if TYPE_CHECKING:
    from explorer.models.base import BaseVAE

_REGISTRY: dict[str, type[BaseVAE]] = {}


def register(name: str) -> Callable[[type[BaseVAE]], type[BaseVAE]]:
    """Class decorator: make a model available under ``name``."""

    def wrap(cls: type[BaseVAE]) -> type[BaseVAE]:
        cls.kind = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def model_names() -> list[str]:
    """Registered model names, in registration order."""
    return list(_REGISTRY)


def get_model_class(name: str) -> type[BaseVAE]:
    """The class registered as ``name``; a clear error for unknown names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model kind {name!r}; known kinds: {', '.join(_REGISTRY)}") from None


def build_model(name: str, config: dict[str, Any] | None = None, **overrides: Any) -> BaseVAE:
    """Instantiate model ``name`` from a (JSON) config dict plus keyword overrides."""
    cls = get_model_class(name)
    data = dict(config or {})
    data.update(overrides)
    return cls(cls.config_cls.from_dict(data))


def model_options() -> dict[str, dict[str, Option]]:
    """Every user-set config field over all kinds: name -> {kind: its option (defaults may differ)}."""
    out: dict[str, dict[str, Option]] = {}
    for kind, cls in _REGISTRY.items():
        for opt in config_options(cls.config_cls):
            out.setdefault(opt.name, {})[kind] = opt
    return out
