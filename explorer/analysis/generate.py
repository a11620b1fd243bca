"""Decoding helpers: reconstructions and prior samples, batched on the model's device."""

from __future__ import annotations

import torch
from torch import Tensor

from explorer.data import Split
from explorer.models import BaseVAE


@torch.no_grad()
def reconstruct(model: BaseVAE, x: Tensor, y: Tensor | None = None) -> Tensor:
    """Decoded posterior means of images (labels for a conditional model): (B, C, H, W) on the CPU."""
    return model.reconstruct(x.to(model.device), None if y is None else y.to(model.device)).cpu()


@torch.no_grad()
def reconstructions(model: BaseVAE, split: Split, n: int = 16, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """n seeded test images, their reconstructions (decoded posterior means), and their indices."""
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    x = split.images[idx]  # (n, C, H, W)
    return x, reconstruct(model, x, split.labels[idx]), idx


@torch.no_grad()
def prior_samples(model: BaseVAE, n: int = 64, seed: int = 0, temperature: float = 1.0) -> tuple[Tensor, Tensor | None]:
    """n decoded draws from N(0, T^2 I). Conditional models get a row per class (labels returned)."""
    gen = torch.Generator(device=model.device).manual_seed(seed)
    if not model.conditional:
        return model.sample(n, temperature=temperature, generator=gen).cpu(), None
    k = model.config.n_classes
    per = max(1, n // k)
    y = torch.arange(k, device=model.device).repeat_interleave(per)  # (k*per,)
    z = torch.randn(len(y), model.latent_dim, generator=gen, device=model.device) * temperature
    return model.decode(z, y).cpu(), y.cpu()


@torch.no_grad()
def style_rows(model: BaseVAE, n_styles: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A conditional model's style codes, each decoded with every class in one batch.

    Code r is a seeded draw from N(0, I) (the first is ``prior_code(z, seed)``); image r*K + c is code r
    decoded as class c. -> codes (S, z), images (S * K, C, H, W)
    """
    if not model.conditional:
        raise ValueError("style rows need a conditional model (one that decodes a class)")
    k = model.config.n_classes
    z = torch.randn(n_styles, model.latent_dim, generator=torch.Generator().manual_seed(seed))  # (S, z)
    codes = z.repeat_interleave(k, 0).to(model.device)  # (S*K, z): code r, K times
    y = torch.arange(k, device=model.device).repeat(n_styles)  # (S*K,): classes 0..K-1 per row
    return z, model.decode(codes, y).cpu()
