"""The interface every model shares: encode -> (mu, logvar), decode, loss -> named terms."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.config import ModelConfig
from explorer.models.terms import KL, RECON, Forward, LossTerm, combine


def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent dimension, in nats. (B, z) -> (B, z)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def anchor_scores(x_flat: Tensor, protos: Tensor, kind: str = "overlap") -> Tensor:
    """How much each image looks like each prototype. (B, P), (K, P) -> (B, K).

    ``overlap`` is (x . p) / sum(x); ``cosine`` is the cosine similarity.
    """
    dots = x_flat @ protos.T  # (B, K)
    if kind == "cosine":
        return dots / (x_flat.norm(dim=1, keepdim=True) * protos.norm(dim=1)).clamp_min(1e-8)
    return dots / x_flat.sum(dim=1, keepdim=True).clamp_min(1e-8)


class BaseVAE(nn.Module):
    """A VAE over images (B, C, H, W) in [0, 1]. Subclasses build the networks.

    Subclasses implement ``encode`` and ``decode_logits``; variants override only what
    differs (the AE overrides the posterior, the CVAE sets ``conditional``). The loss is the
    sum of named terms (``own_terms`` plus the extras the config switches on; see terms.py).
    """

    kind: ClassVar[str] = ""
    config_cls: ClassVar[type[ModelConfig]] = ModelConfig
    conditional: ClassVar[bool] = False  # decoder and encoder take a one-hot class
    stochastic: ClassVar[bool] = True  # False for the plain autoencoder
    needs_dataset: ClassVar[bool] = False  # True when the loss needs attach(dataset) first (joint VAE)
    own_terms: ClassVar[tuple[LossTerm, ...]] = (RECON, KL)  # extras (anchors) come from models/terms.py
    unused_options: ClassVar[tuple[str, ...]] = ()  # config options this kind ignores (not offered on /train)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        if config.anchors:
            protos = torch.tensor([a.prototype for a in config.anchors], dtype=torch.float32)
            targets = torch.tensor([a.target for a in config.anchors], dtype=torch.float32)
        else:
            protos = torch.zeros(0, config.n_pixels)
            targets = torch.zeros(0, config.latent_dim)
        # Buffers travel with .to(device) but are not saved: the config holds them.
        self.register_buffer("anchor_protos", protos, persistent=False)  # (K, P)
        self.register_buffer("anchor_targets", targets, persistent=False)  # (K, z)

    # --- what subclasses provide -------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> mu (B, z), logvar (B, z)."""
        raise NotImplementedError

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """(B, z) -> pre-sigmoid pixels (B, C, H, W)."""
        raise NotImplementedError

    @classmethod
    def dataset_config(cls, ds: object) -> dict:
        """Config fields fixed by the dataset (image shape, number of classes)."""
        return {"in_shape": list(ds.in_shape), "n_classes": max(1, ds.n_classes)}  # type: ignore[attr-defined]

    def attach(self, dataset: object) -> None:
        """Hook for models that need more than images and labels from their dataset (the joint VAE)."""

    # --- shared behaviour --------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """(B, z) -> images (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z, y))

    def condition(self, y: Tensor | None, batch: int) -> Tensor | None:
        """One-hot class (B, n_classes) for conditional models, else None."""
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"{self.kind} is conditional: pass class labels y")
        y = y.to(self.device).long().reshape(-1).expand(batch) if y.numel() == 1 else y.to(self.device).long()
        return F.one_hot(y, self.config.n_classes).float()

    def reparameterize(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z = mu + sigma * eps. (B, z) -> (B, z)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    def kl_per_dim(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Per-dimension KL to the prior. (B, z) -> (B, z)."""
        return kl_per_dim(mu, logvar)

    def recon_per_sample(self, logits: Tensor, x: Tensor) -> Tensor:
        """Reconstruction error summed over pixels. (B, C, H, W) -> (B,)."""
        if self.config.recon == "bce":
            err = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            err = (torch.sigmoid(logits) - x).pow(2)
        return err.flatten(1).sum(1)

    def anchor_shift(self, x: Tensor) -> Tensor:
        """rate * sum_k score_k(x) * target_k: where anchors pull each code. (B, ...) -> (B, z)."""
        scores = anchor_scores(x.flatten(1), self.anchor_protos, self.config.anchor_score)  # (B, K)
        return self.config.anchor_rate * scores @ self.anchor_targets  # (B, z)

    def forward_pass(self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None) -> Forward:
        """Encode, draw z and decode once: what the loss terms read."""
        mu, logvar = self.encode(x, y)  # (B, z) each
        z = self.reparameterize(mu, logvar, generator)  # (B, z)
        return Forward(x, y, mu, logvar, z, self.decode_logits(z, y))  # logits (B, C, H, W)

    def terms(self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Per-image loss terms in nats, each (B,): every active term by name, and ``total``."""
        return combine(self, self.forward_pass(x, y, generator))

    def loss(self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Batch-mean loss terms (nats per image); ``total`` is what training minimises."""
        return {k: v.mean() for k, v in self.terms(x, y, generator).items()}

    # --- conveniences (pythae-style) -----------------------------------------------------
    @torch.no_grad()
    def embed(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Posterior means. (B, C, H, W) -> (B, z)."""
        return self.encode(x, y)[0]

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Decode the posterior mean. (B, C, H, W) -> (B, C, H, W)."""
        return self.decode(self.encode(x, y)[0], y)

    @torch.no_grad()
    def sample(
        self, n: int, y: Tensor | None = None, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decode n draws from the prior N(0, temperature^2 I). -> (n, C, H, W)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device) * temperature
        return self.decode(z, y)

    @staticmethod
    def interpolate(z0: Tensor, z1: Tensor, steps: int, mode: str = "linear") -> Tensor:
        """Points from z0 to z1 inclusive. (z,), (z,) -> (steps, z). ``mode``: linear or slerp."""
        t = torch.linspace(0, 1, steps, device=z0.device, dtype=z0.dtype)[:, None]  # (S, 1)
        if mode == "linear":
            return (1 - t) * z0 + t * z1
        if mode != "slerp":
            raise ValueError(f"unknown interpolation mode {mode!r}")
        cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-8)
        omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
        if omega.abs() < 1e-4:
            return (1 - t) * z0 + t * z1
        return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / math.sin(float(omega))
