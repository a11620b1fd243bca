"""Image corruptions for the denoising demo, and per-image reconstruction errors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CORRUPTIONS = ("gaussian noise", "salt and pepper", "mask a square")


def corrupt(x: Tensor, kind: str, amount: float, seed: int = 0) -> Tensor:
    """Corrupt images (B, C, H, W) in [0,1]; ``amount`` in [0,1] sets the strength."""
    gen = torch.Generator().manual_seed(seed)
    x = x.detach().cpu().clone()
    if kind == "gaussian noise":
        return (x + amount * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    if kind == "salt and pepper":
        u = torch.rand(x.shape, generator=gen)
        x[u < amount / 2] = 0.0
        x[u > 1 - amount / 2] = 1.0
        return x
    if kind == "mask a square":
        h, w = x.shape[-2:]
        side_h, side_w = max(1, int(h * amount)), max(1, int(w * amount))
        top = int(torch.randint(0, h - side_h + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - side_w + 1, (1,), generator=gen))
        x[..., top : top + side_h, left : left + side_w] = 0.0
        return x
    raise ValueError(f"unknown corruption {kind!r}; choose from {CORRUPTIONS}")


def recon_errors(x: Tensor, x_hat: Tensor, kind: str = "bce") -> Tensor:
    """Per-image error summed over pixels: BCE or squared error. (B, C, H, W) x2 -> (B,)"""
    x_hat = x_hat.clamp(1e-6, 1 - 1e-6)
    if kind == "bce":
        err = F.binary_cross_entropy(x_hat, x, reduction="none")
    else:
        err = (x_hat - x).pow(2)
    return err.flatten(1).sum(1)
