"""Fully connected models: the classic MNIST VAE, its conditional variant, and a plain AE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from explorer.config import ModelConfig, check_hidden, option
from explorer.models.base import BaseVAE
from explorer.models.registry import register

AE_LOGVAR = -30.0  # a point-mass posterior: sigma ~ 3e-7


@dataclass(frozen=True)
class MLPConfig(ModelConfig):
    """Fully connected encoder/decoder: pixels-hidden...-z (ReLU, sigmoid output)."""

    hidden: tuple[int, ...] = option((400, 100), "hidden layer sizes, e.g. 400,100", "Hidden layers")

    def validate(self) -> None:
        super().validate()
        check_hidden(self.hidden)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers through ``sizes`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register("vae-mlp")
class VAEMLP(BaseVAE):
    """pixels-400-100-z by default (ReLU), Gaussian posterior, sigmoid/Bernoulli decoder."""

    config_cls = MLPConfig

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        cond = config.n_classes if self.conditional else 0
        hidden = list(config.hidden)
        self.encoder = mlp([config.n_pixels + cond, *hidden, 2 * config.latent_dim])
        self.decoder = mlp([config.latent_dim + cond, *reversed(hidden), config.n_pixels])

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = x.flatten(1)  # (B, P)
        c = self.condition(y, len(x))
        if c is not None:
            h = torch.cat([h, c], dim=1)  # (B, P + classes)
        mu, logvar = self.encoder(h).chunk(2, dim=1)  # (B, z) each
        return mu, logvar

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        c = self.condition(y, len(z))
        if c is not None:
            z = torch.cat([z, c], dim=1)  # (B, z + classes)
        return self.decoder(z).view(-1, *self.config.in_shape)  # (B, C, H, W)


@register("cvae-mlp")
class CVAEMLP(VAEMLP):
    """The MLP VAE with a one-hot class fed to both encoder and decoder."""

    conditional = True


@register("ae-mlp")
class AEMLP(VAEMLP):
    """A deterministic autoencoder: no sampling, no KL. For setting AE against VAE."""

    stochastic = False
    unused_options = ("beta",)  # no KL term to weigh

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, _ = super().encode(x, y)
        return mu, torch.full_like(mu, AE_LOGVAR)

    def reparameterize(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return mu

    def kl_per_dim(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return torch.zeros_like(mu)
