"""Trusted torch models: ``--model pkg.module:factory`` on the command line imports the user's own code.

The import is trusted because the user named the module on their own command line. The app never
takes a module name from anywhere else: the CLI passes it in ``TRUSTED_ENV`` and the loader reads it
only from there (never from a file, an upload or a URL).
"""

from __future__ import annotations

import importlib
import os
import re
import sys

import torch
from torch import Tensor

from explorer.errors import CheckpointError, ConfigError
from explorer.foreign.base import ForeignVAE, foreign_config
from explorer.foreign.protocol import ExplorableVAE

TRUSTED_ENV = "EXPLORER_TRUSTED_MODEL"  # set by the CLI only
SPEC_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


def check_spec(spec: str) -> str:
    """``pkg.module:factory`` or a one-line error."""
    if not isinstance(spec, str) or not SPEC_RE.match(spec):
        raise ConfigError(f"--model wants pkg.module:factory (a Python module and a callable in it), got {spec!r}")
    return spec


def call_factory(spec: str) -> ExplorableVAE:
    """Import the module, call the factory, check the result against ``ExplorableVAE``."""
    module_name, attr = check_spec(spec).split(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules beside the user's shell
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--model {spec}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"--model {spec}: {module_name} has no callable {attr!r}")
    try:
        obj = factory()
    except Exception as exc:  # noqa: BLE001 - the user's code: its error becomes one line
        raise ConfigError(f"--model {spec}: the factory raised {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, ExplorableVAE):
        missing = [n for n in ("encode", "decode", "latent_dim", "image_shape") if not hasattr(obj, n)]
        raise ConfigError(
            f"--model {spec}: the factory's result lacks {', '.join(missing)} (see explorer.foreign.protocol)"
        )
    return obj


class AdapterVAE(ForeignVAE):
    """A trusted torch object meeting ``ExplorableVAE``, seen as a ``BaseVAE``."""

    kind = "torch-adapter"

    def __init__(self, obj: ExplorableVAE, stochastic: bool) -> None:
        try:
            shape = tuple(int(s) for s in obj.image_shape)
            z = int(obj.latent_dim)
        except (TypeError, ValueError):
            raise ConfigError("the model's image_shape must be (C, H, W) and latent_dim an int") from None
        if len(shape) != 3:
            raise ConfigError(f"the model's image_shape must be (C, H, W), got {shape}")
        super().__init__(foreign_config(shape, z), stochastic, "probabilities")
        object.__setattr__(self, "wrapped", obj)  # not a submodule: .to()/.train() never reach the user's model

    def _call(self, fn, arg: Tensor):
        try:
            with torch.no_grad():
                return fn(arg)
        except Exception as exc:  # noqa: BLE001 - the user's code: its error becomes one line
            raise CheckpointError(f"the model's {fn.__name__}() raised {type(exc).__name__}: {exc}") from None

    def encode_raw(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        out = self._call(self.wrapped.encode, x)
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise CheckpointError("the model's encode(x) must return (mu, logvar) or (mu, None)")
        mu, logvar = out
        return mu.detach().float().cpu(), None if logvar is None else logvar.detach().float().cpu()

    def decode_raw(self, z: Tensor) -> Tensor:
        out = self._call(self.wrapped.decode, z)
        return out.detach().float().cpu().reshape(len(z), *self.config.in_shape)


def build_adapter(spec: str) -> AdapterVAE:
    """Import and wrap the trusted model; whether it is stochastic is seen on one image."""
    obj = call_factory(spec)
    if callable(getattr(obj, "eval", None)):
        obj.eval()
    model = AdapterVAE(obj, stochastic=True)
    x = torch.full((1, *model.config.in_shape), 0.5)
    _, logvar = model.encode_raw(x)
    model.stochastic = logvar is not None
    model.eval()
    return model
