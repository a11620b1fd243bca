"""A model trained elsewhere, seen through the ``BaseVAE`` interface every page and analysis uses."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from explorer.config import ModelConfig
from explorer.errors import CheckpointError
from explorer.models.base import BaseVAE

AE_LOGVAR = -30.0  # the log-variance reported for encoders that give only mu (as the built-in AE does)
PROB_EPS = 1e-6  # probabilities are clamped to [eps, 1 - eps] before taking logits


class ForeignVAE(BaseVAE):
    """Runs on the CPU side of torch: inputs and outputs are CPU tensors whatever ``.to()`` was asked.

    Subclasses implement ``encode_raw`` (-> mu, logvar or None) and ``decode_raw`` (-> decoder output,
    probabilities or logits as ``decoder_output`` says). ``stochastic`` is False when the encoder
    outputs only mu: no KL, no sampling, and pages derive slider ranges from the data (``has_prior``).
    """

    kind = "foreign"

    def __init__(self, config: ModelConfig, stochastic: bool, decoder_output: str = "probabilities") -> None:
        super().__init__(config)
        self.stochastic = stochastic  # shadows the class attribute: per model, not per class
        self.decoder_output = decoder_output

    @property
    def has_prior(self) -> bool:
        """True when the encoder gives a posterior (mu, logvar) trained towards N(0, I); False for mu-only ones."""
        return self.stochastic

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    # --- what subclasses provide -------------------------------------------------------
    def encode_raw(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, C, H, W) -> mu (B, z), logvar (B, z) or None."""
        raise NotImplementedError

    def decode_raw(self, z: Tensor) -> Tensor:
        """(B, z) -> (B, C, H, W) probabilities or logits."""
        raise NotImplementedError

    # --- BaseVAE -----------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encode_raw(x.detach().to("cpu", torch.float32))
        if logvar is None or not self.stochastic:
            logvar = torch.full_like(mu, AE_LOGVAR)
        return mu, logvar

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.decode_raw(z.detach().to("cpu", torch.float32))
        if self.decoder_output == "logits":
            return out
        return torch.logit(out.clamp(PROB_EPS, 1 - PROB_EPS))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.decode_raw(z.detach().to("cpu", torch.float32))
        return torch.sigmoid(out) if self.decoder_output == "logits" else out.clamp(0, 1)

    def reparameterize(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return super().reparameterize(mu, logvar, generator) if self.stochastic else mu

    def kl_per_dim(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return super().kl_per_dim(mu, logvar) if self.stochastic else torch.zeros_like(mu)


def foreign_config(image_shape: tuple[int, int, int], latent_dim: int, **extra: Any) -> ModelConfig:
    """The config an imported model is seen with (validated: sizes within what the app supports)."""
    return ModelConfig(in_shape=tuple(int(s) for s in image_shape), latent_dim=int(latent_dim), **extra)  # type: ignore[arg-type]


PROB_TOLERANCE = 1e-4


@torch.no_grad()
def probe(model: ForeignVAE, x: Tensor, name: str = "model", seed: int = 0) -> None:
    """Run one batch (B, C, H, W) through the encoder and decoder; refuse wrong shapes, NaN, out-of-range output."""
    b, z = len(x), model.latent_dim
    mu, logvar = model.encode_raw(x.to("cpu", torch.float32))
    for t, what in ((mu, "mu"), (logvar, "logvar")):
        if t is None:
            continue
        if tuple(t.shape) != (b, z):
            raise CheckpointError(f"{name}: the encoder returned {what} of shape {tuple(t.shape)}, expected ({b}, {z})")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{name}: the encoder returned NaN or infinite {what} on a probe batch")
    if model.stochastic and logvar is None:
        raise CheckpointError(f"{name}: the encoder returned no logvar; declare it as giving only mu")
    prior = torch.randn(b, z, generator=torch.Generator().manual_seed(seed))  # (B, z)
    out = model.decode_raw(torch.cat([mu, prior]))  # (2B, C, H, W)
    if tuple(out.shape) != (2 * b, *model.config.in_shape):
        raise CheckpointError(
            f"{name}: the decoder returned {tuple(out.shape)}, expected ({2 * b}, {', '.join(map(str, model.config.in_shape))})"
        )
    if not torch.isfinite(out).all():
        raise CheckpointError(f"{name}: the decoder returned NaN or infinite values on a probe batch")
    if model.decoder_output == "probabilities" and (out.min() < -PROB_TOLERANCE or out.max() > 1 + PROB_TOLERANCE):
        raise CheckpointError(
            f"{name}: the decoder returned values in [{float(out.min()):.3g}, {float(out.max()):.3g}], "
            "not probabilities in [0, 1]; if it outputs logits, say so (--decoder-output logits)"
        )
