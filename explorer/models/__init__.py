"""Model registry. Importing this package registers every built-in model."""

from explorer.models import conv, joint, mlp  # noqa: F401  (registration side effect)
from explorer.models.base import BaseVAE
from explorer.models.registry import build_model, get_model_class, model_names, register

__all__ = ["BaseVAE", "build_model", "get_model_class", "model_names", "register"]
