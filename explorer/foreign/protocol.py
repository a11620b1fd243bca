"""The contract a trusted torch model meets to be explored (``explorer serve --model pkg.module:factory``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class ExplorableVAE(Protocol):
    """What the factory in ``--model pkg.module:factory`` returns.

    - ``encode(x)``: images (B, C, H, W) in [0, 1] -> ``(mu, logvar)``, each (B, z); return
      ``(mu, None)`` for a deterministic encoder (it is then explored like an autoencoder: no KL).
    - ``decode(z)``: codes (B, z) -> images (B, C, H, W) with values in [0, 1].
    - ``latent_dim``: z.
    - ``image_shape``: (C, H, W).

    Optional: ``dataset`` (a dataset name such as ``"mnist"``; by default the first built-in one
    with this image shape). Both methods are called under ``torch.no_grad()`` on CPU tensors.
    """

    latent_dim: int
    image_shape: tuple[int, int, int]

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor | None]: ...

    def decode(self, z: Tensor) -> Tensor: ...
