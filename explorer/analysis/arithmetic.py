"""Latent arithmetic, attribute vectors and interpolation: batched tensor operations on the device."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from explorer.analysis.evaluate import per_sample_terms
from explorer.data import Split
from explorer.errors import ExplorerError
from explorer.models import BaseVAE
from explorer.storage import atomic_write_json, home_dir


@torch.no_grad()
def codes_of(model: BaseVAE, split: Split, indices: list[int], sample: bool = False, seed: int = 0) -> Tensor:
    """Codes of some images: posterior means, or one draw z ~ q(z|x) each. -> (n, z)"""
    x = split.images[indices].to(model.device)
    y = split.labels[indices].to(model.device)
    mu, logvar = model.encode(x, y)
    if not sample:
        return mu.cpu()
    return model.reparameterize(mu, logvar, torch.Generator(device=model.device).manual_seed(seed)).cpu()


def analogy(za: Tensor, zb: Tensor, zc: Tensor) -> Tensor:
    """z_A - z_B + z_C. (z,) x3 -> (z,)"""
    return za - zb + zc


def nearest_rows(codes: np.ndarray, z: np.ndarray, k: int = 5) -> np.ndarray:
    """Rows of ``codes`` (N, z) nearest to z (z,) in Euclidean distance. -> (k,)"""
    return np.argsort(np.linalg.norm(codes - z, axis=1))[:k]


def attribute_vector(codes: np.ndarray, rows_a: np.ndarray | list[int], rows_b: np.ndarray | list[int]) -> np.ndarray:
    """Mean code of set A minus mean code of set B. -> (z,)"""
    if len(rows_a) == 0 or len(rows_b) == 0:
        raise ExplorerError("both sets need at least one image")
    return (codes[np.asarray(rows_a)].mean(0) - codes[np.asarray(rows_b)].mean(0)).astype(np.float32)


def strength_codes(z: Tensor, v: Tensor, strengths: Tensor) -> Tensor:
    """z + s * v for each strength s. -> (S, z)"""
    return z[None] + strengths[:, None] * v[None]


def interpolate(z0: Tensor, z1: Tensor, steps: int, mode: str = "linear") -> Tensor:
    """Linear or spherical interpolation, endpoints included. -> (steps, z)"""
    return BaseVAE.interpolate(z0, z1, steps, mode)


@torch.no_grad()
def path_elbo(model: BaseVAE, path: Tensor, y: int | None = None, seed: int = 0) -> np.ndarray:
    """-ELBO (nats) of the image decoded at each point of a path: high where the path leaves the data. -> (S,)"""
    from explorer.analysis.traverse import decode_codes

    images = decode_codes(model, path, y)
    labels = torch.full((len(path),), y if y is not None else 0)
    return per_sample_terms(model, Split(images, labels), seed=seed)["elbo"].numpy()


@torch.no_grad()
def decoded_elbo_reference(model: BaseVAE, split: Split, n: int = 500, seed: int = 0) -> float:
    """Median -ELBO of decode(mu(x)) over n test images: what ``path_elbo`` gives at a real image's code.

    ``path_elbo`` scores decoded images, which are smoother than real ones; comparing a path with
    this (not with the -ELBO of the real images) measures the same quantity on both sides.
    """
    from explorer.analysis.evaluate import encode_split
    from explorer.analysis.traverse import decode_codes

    sub = split.subset(min(n, len(split)), seed=seed)
    mu = torch.from_numpy(encode_split(model, sub)[0])  # (n, z)
    if model.conditional:  # decode each class with its own label
        images = torch.empty_like(sub.images)
        for y in torch.unique(sub.labels).tolist():
            rows = sub.labels == y
            images[rows] = decode_codes(model, mu[rows], int(y)).cpu()
    else:
        images = decode_codes(model, mu).cpu()
    return float(np.median(per_sample_terms(model, Split(images, sub.labels), seed=seed)["elbo"].numpy()))


def path_log_prior(path: Tensor) -> np.ndarray:
    """log N(z; 0, I) at each point of a path (S, z), in nats: low where a path crosses the improbable centre. -> (S,)"""
    d = path.shape[-1]
    return (-0.5 * path.pow(2).sum(-1) - 0.5 * d * math.log(2 * math.pi)).detach().cpu().numpy()


def typical_log_prior(d: int, mass: float = 0.95) -> tuple[float, float]:
    """The range of log N(z; 0, I) that holds ``mass`` of the prior's samples in d dimensions.

    ||z||^2 follows a chi-square with d degrees of freedom, so almost no sample sits near the
    centre, where the density is highest: a path whose log p(z) climbs above this band goes
    through codes as untypical as ones far out in the tails.
    """
    from scipy.stats import chi2

    lo, hi = chi2.ppf([(1 - mass) / 2, (1 + mass) / 2], d)
    const = -0.5 * d * math.log(2 * math.pi)
    return float(const - 0.5 * hi), float(const - 0.5 * lo)


# --- saved vectors ---------------------------------------------------------------------


def vectors_dir(checkpoint_hash: str) -> Path:
    return home_dir() / "vectors" / checkpoint_hash


def save_vector(checkpoint_hash: str, name: str, v: np.ndarray, about: str = "") -> str:
    """Save a named vector for a checkpoint; returns the cleaned name."""
    clean = re.sub(r"[^A-Za-z0-9 _.+-]+", "", name).strip()[:40]
    if not clean:
        raise ExplorerError("give the vector a name (letters, digits, spaces, - _ . +)")
    if not np.isfinite(v).all():
        raise ExplorerError("the vector has non-finite values")
    atomic_write_json(
        vectors_dir(checkpoint_hash) / f"{clean}.json", {"name": clean, "vector": [float(x) for x in v], "about": about}
    )
    return clean


def load_vectors(checkpoint_hash: str, latent_dim: int) -> dict[str, np.ndarray]:
    """Saved vectors of a checkpoint that fit its latent size, by name."""
    out = {}
    for f in sorted(vectors_dir(checkpoint_hash).glob("*.json")) if vectors_dir(checkpoint_hash).is_dir() else []:
        try:
            d = json.loads(f.read_text())
            v = np.asarray(d["vector"], dtype=np.float32)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if v.shape == (latent_dim,) and np.isfinite(v).all():
            out[str(d["name"])] = v
    return out
