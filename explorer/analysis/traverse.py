"""Latent traversals: dimension ranking by KL, start codes, batched traversal grids, GIF export."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from explorer.analysis.evaluate import encode_split, mean_kl_per_dim
from explorer.data import Split
from explorer.figures.viz import image_grid
from explorer.models import BaseVAE


def dims_by_kl(model: BaseVAE, split: Split, limit: int = 2000) -> tuple[list[int], np.ndarray]:
    """Latent dimensions ordered by average KL (most informative first), and the KL per dimension."""
    mu, logvar = encode_split(model, split.subset(limit, seed=0))
    kl = mean_kl_per_dim(model, mu, logvar)  # (z,)
    if not model.stochastic:  # the AE has no KL: rank by the spread of its codes instead
        kl = mu.var(0)
    return [int(i) for i in np.argsort(-kl, kind="stable")], kl


FEW_SLIDERS, MOST_SLIDERS = 16, 32  # sliders shown by default, and at most (a z=784 AE gets 32, not 784)


def slider_dims(order: list[int], more: bool = False) -> list[int]:
    """The dimensions that get a slider: the top FEW_SLIDERS of ``order``, or with ``more`` up to MOST_SLIDERS."""
    return order[: MOST_SLIDERS if more else FEW_SLIDERS]


def slider_caption(n_shown: int, zdim: int, prior: bool) -> str:
    """Says which dimensions have sliders when not all of them do, else an empty string."""
    if n_shown >= zdim:
        return ""
    by = "mean KL" if prior else "spread of the test codes"
    return (
        f"Sliders for the top {n_shown} of {zdim} dimensions by {by}; the other {zdim - n_shown} keep the start "
        "code's values (the grid and GIF below can reach any of them)."
    )


def pick_index(split: Split, cls: int, draw: int) -> int:
    """The ``draw``-th seeded random index among images of class ``cls``."""
    idx = torch.nonzero(split.labels == cls).flatten()
    if len(idx) == 0:
        raise ValueError(f"no images of class {cls}")
    perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(draw))
    return int(idx[perm[0]])


@torch.no_grad()
def code_of(model: BaseVAE, split: Split, index: int) -> Tensor:
    """Posterior mean of one image. -> (z,)"""
    x = split.images[index : index + 1].to(model.device)
    y = split.labels[index : index + 1].to(model.device)
    return model.embed(x, y)[0].cpu()


def prior_code(latent_dim: int, seed: int) -> Tensor:
    """One seeded draw from N(0, I). -> (z,)"""
    return torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed))


def random_code(ranges: np.ndarray, prior: bool, generator: torch.Generator | None = None) -> Tensor:
    """A draw for the sliders: from N(0, I) with a prior, else uniform within each dimension's range.

    ranges: (z, 2) as ``slider_ranges`` gives them. -> (z,)
    """
    r = torch.as_tensor(np.asarray(ranges), dtype=torch.float32)  # (z, 2)
    if prior:
        return torch.randn(len(r), generator=generator)
    return r[:, 0] + torch.rand(len(r), generator=generator) * (r[:, 1] - r[:, 0])


@torch.no_grad()
def decode_codes(model: BaseVAE, z: Tensor, y: int | None = None) -> Tensor:
    """Decode codes (N, z) on the model's device; ``y`` is the class for conditional models. -> (N, C, H, W)"""
    z = z.to(model.device, torch.float32)
    labels = torch.full((len(z),), y if y is not None else 0, device=model.device) if model.conditional else None
    return model.decode(z, labels).cpu()


def has_prior(model: BaseVAE) -> bool:
    """Whether the model has a prior to measure codes against (a VAE); False for a plain AE.

    Keyed on the model's ``stochastic`` property, so any imported model that sets it is handled.
    """
    return bool(getattr(model, "stochastic", True))


def slider_ranges(
    model: BaseVAE, span: float, codes: np.ndarray | Tensor | None = None, q: tuple[float, float] = (1.0, 99.0)
) -> np.ndarray:
    """Per-dimension slider range (lo, hi). -> (z, 2)

    With a prior: ±``span`` prior SDs. Without one (an AE), the codes' own ``q`` percentiles,
    since "±3 SD of the prior" means nothing there; ``codes`` (N, z) are then required.
    """
    zdim = model.latent_dim
    if has_prior(model):
        return np.tile(np.array([-span, span], dtype=np.float64), (zdim, 1))
    if codes is None or len(codes) == 0:
        raise ValueError("a model without a prior needs the data's codes to set its slider ranges")
    lo, hi = np.percentile(np.asarray(codes, dtype=np.float64), q, axis=0)  # (z,) each
    hi = np.maximum(hi, lo + 1e-3)
    return np.stack([lo, hi], axis=1)


def range_values(ranges: np.ndarray, steps: int) -> Tensor:
    """Evenly spaced values across each dimension's range. (R, 2) -> (R, steps)"""
    r = torch.as_tensor(np.asarray(ranges), dtype=torch.float32)
    t = torch.linspace(0, 1, steps)[None, :]  # (1, V)
    return r[:, :1] + t * (r[:, 1:] - r[:, :1])


def traversal_values(span: float, steps: int) -> Tensor:
    """Evenly spaced offsets from -span to +span. -> (steps,)"""
    return torch.linspace(-span, span, steps)


def traversal_codes(z: Tensor, dims: list[int], values: Tensor) -> Tensor:
    """Codes for a grid: row r sets dimension dims[r] to each value in turn. -> (len(dims) * V, z)

    ``values`` is (V,) for every row, or (len(dims), V) for a range per row.
    """
    n = values.shape[-1]
    grid = z.repeat(len(dims) * n, 1)  # (R*V, z)
    for r, d in enumerate(dims):
        grid[r * n : (r + 1) * n, d] = values if values.dim() == 1 else values[r]
    return grid


def traversal_grid(model: BaseVAE, z: Tensor, dims: list[int], values: Tensor, y: int | None = None) -> Tensor:
    """Decode a whole traversal grid in one batch. -> (len(dims) * V, C, H, W)"""
    return decode_codes(model, traversal_codes(z, dims, values), y)


def gif_bytes(frames: Tensor, scale: int = 6, ms: int = 90, bounce: bool = True) -> bytes:
    """An animated GIF of frames (N, C, H, W), played forth and back by default."""
    seq = list(frames) + (list(frames)[-2:0:-1] if bounce else [])
    images = [Image.fromarray(image_grid(f[None], nrow=1, pad=0, scale=scale)) for f in seq]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=ms, loop=0)
    return buf.getvalue()
