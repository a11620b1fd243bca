"""Core demonstrations for the course: reparameterisation, clustering, architecture, latent sizes, priors.

Each function takes a model and data and returns numbers or tensors; figures live in
``explorer.figures.courseview`` and the page only wires widgets to these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from explorer.analysis.evaluate import ACTIVE_KL, encode_split, mean_kl_per_dim, per_sample_terms
from explorer.data import Split
from explorer.models import BaseVAE

COURSE_SIZES = (1, 2, 4, 8, 16, 32, 64)  # latent sizes of the shipped course models
COURSE_AE = 784  # the course's AE: a latent as large as its input (28 x 28)


# --- reparameterisation -------------------------------------------------------------------
@dataclass
class Reparam:
    """One image through the reparameterisation trick; vectors are (z,), images (C, H, W)."""

    mu: Tensor
    sigma: Tensor
    eps: Tensor
    z: Tensor  # mu + sigma * eps
    decoded: Tensor  # decode(z)
    decoded_mean: Tensor  # decode(mu)
    cloud: Tensor  # (n, z) more draws of q(z|x)
    grad_mu: Tensor  # d recon / d mu  (equals d recon / d z)
    grad_sigma: Tensor  # d recon / d sigma (equals d recon / d z * eps)
    grad_z: Tensor


def reparameterise(model: BaseVAE, x: Tensor, y: int | None = None, seed: int = 0, n_cloud: int = 200) -> Reparam:
    """Encode one image (C, H, W), draw eps ~ N(0, I) with ``seed``, decode z = mu + sigma * eps.

    The gradient of the reconstruction error flows back through z to mu and sigma (eps is a
    constant): returns both, so a lesson can show that d/dmu = d/dz and d/dsigma = d/dz * eps.
    """
    yy = None if y is None else torch.tensor([y])
    with torch.no_grad():
        mu, logvar = model.encode(x[None].to(model.device), yy)  # (1, z) each
    mu = mu[0].detach().clone().requires_grad_(True)  # (z,)
    sigma = torch.exp(0.5 * logvar[0]).detach().clone().requires_grad_(True)  # (z,)
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(mu.shape, generator=gen).to(mu.device)  # (z,)
    z = mu + sigma * eps  # (z,)
    z.retain_grad()
    with torch.enable_grad():
        logits = model.decode_logits(z[None], yy)  # (1, C, H, W)
        recon = model.recon_per_sample(logits, x[None].to(model.device)).sum()
        recon.backward()
    cloud_eps = torch.randn(n_cloud, len(mu), generator=gen).to(mu.device)  # (n, z)
    with torch.no_grad():
        cloud = mu.detach() + sigma.detach() * cloud_eps
        decoded = torch.sigmoid(logits[0]).detach()
        decoded_mean = model.decode(mu.detach()[None], yy)[0]
    return Reparam(
        mu.detach().cpu(),
        sigma.detach().cpu(),
        eps.cpu(),
        z.detach().cpu(),
        decoded.cpu(),
        decoded_mean.cpu(),
        cloud.cpu(),
        mu.grad.cpu(),
        sigma.grad.cpu(),
        z.grad.cpu(),
    )


# --- posterior collapse ---------------------------------------------------------------------
def active_dims(kl_dims: np.ndarray, threshold: float = ACTIVE_KL) -> np.ndarray:
    """Indices of latent dimensions whose mean KL is above ``threshold`` nats."""
    return np.flatnonzero(np.asarray(kl_dims) > threshold)


def collapse_message(kl_dims: np.ndarray, stochastic: bool = True, threshold: float = ACTIVE_KL) -> str | None:
    """A one-line warning when some or all latent dimensions carry no information, else None."""
    if not stochastic:
        return None
    kl_dims = np.asarray(kl_dims)
    n, k = len(kl_dims), len(active_dims(kl_dims, threshold))
    if k == 0:
        return (
            f"Posterior collapse: none of the {n} latent dimensions has a mean KL above {threshold} nats, so "
            "q(z|x) equals the prior and the decoder ignores z; every image decodes alike."
        )
    if k < n:
        return (
            f"Partial posterior collapse: {n - k} of {n} latent dimensions are inactive (mean KL ≤ {threshold} "
            "nats): they sit at the prior and moving them changes nothing."
        )
    return None


# --- clustering -------------------------------------------------------------------------------
@dataclass
class Clustering:
    """k-means on codes against the labels."""

    assign: np.ndarray  # (N,) cluster of each code
    ari: float
    nmi: float
    confusion: np.ndarray  # (k, n_classes) counts: cluster x class
    cluster_class: np.ndarray  # (k,) the majority class of each cluster


def kmeans_clusters(codes: np.ndarray, labels: np.ndarray, k: int = 10, seed: int = 0) -> Clustering:
    """k-means (scikit-learn) on codes (N, d); adjusted Rand index and NMI against ``labels``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    assign = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(codes).astype(np.int64)
    n_classes = int(labels.max()) + 1
    conf = np.zeros((k, n_classes), np.int64)
    np.add.at(conf, (assign, labels), 1)
    return Clustering(
        assign,
        float(adjusted_rand_score(labels, assign)),
        float(normalized_mutual_info_score(labels, assign)),
        conf,
        conf.argmax(1),
    )


# --- architecture -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One box of an architecture diagram."""

    label: str  # e.g. "Linear 400 + ReLU"
    size: str  # e.g. "400"
    part: str  # input | encoder | posterior | latent | decoder | output


def architecture(model: BaseVAE) -> list[Block]:
    """The model's layers, from its config: input, encoder, mu and log sigma^2, z, decoder, output."""
    cfg = model.config
    c, h, w = cfg.in_shape
    blocks = [Block(f"input {c}×{h}×{w}", str(cfg.n_pixels), "input")]
    if model.conditional:
        blocks.append(Block(f"+ one-hot class ({cfg.n_classes})", str(cfg.n_classes), "input"))
    if hasattr(cfg, "modalities"):  # joint: a second encoder, fused into one posterior (drawn as one path)
        size = int(np.prod(cfg.second_shape))
        blocks[0] = Block(f"{cfg.modalities[0]} {c}×{h}×{w}", str(cfg.n_pixels), "input")
        blocks.append(Block(f"+ {cfg.modalities[1]} ({size}), own encoder, {cfg.fusion} fusion", str(size), "input"))
    hidden = list(getattr(cfg, "hidden", ()))
    if hasattr(cfg, "channels"):  # conv
        c1, c2 = cfg.channels
        enc = [
            Block(f"conv 4×4/2 → {c1} ch", f"{c1}×{h // 2}×{w // 2}", "encoder"),
            Block(f"conv 4×4/2 → {c2} ch", f"{c2}×{h // 4}×{w // 4}", "encoder"),
            Block(f"linear {cfg.fc}", str(cfg.fc), "encoder"),
        ]
        dec = [
            Block(f"linear {cfg.fc}", str(cfg.fc), "decoder"),
            Block(f"deconv → {c1} ch", f"{c1}×{h // 2}×{w // 2}", "decoder"),
        ]
    else:
        enc = [Block(f"linear {n} + ReLU", str(n), "encoder") for n in hidden]
        dec = [Block(f"linear {n} + ReLU", str(n), "decoder") for n in reversed(hidden)]
    blocks += enc
    z = cfg.latent_dim
    if model.stochastic:
        blocks += [
            Block(f"μ ({z})", str(z), "posterior"),
            Block(f"log σ² ({z})", str(z), "posterior"),
            Block(f"z = μ + σ⊙ε ({z})", str(z), "latent"),
        ]
    else:
        blocks.append(Block(f"code z ({z}), no sampling", str(z), "latent"))
    blocks += dec
    blocks.append(Block(f"sigmoid → {c}×{h}×{w}", str(cfg.n_pixels), "output"))
    return blocks


# --- latent sizes -----------------------------------------------------------------------------
def course_dir() -> Path:
    """The shipped course models (checkpoints/course/)."""
    from explorer.catalog import shipped_dir

    return shipped_dir() / "course"


def course_checkpoints() -> dict[str, Path]:
    """Name -> path of every course model that exists, in latent-size order."""
    names = [f"mnist-vae-z{z}" for z in COURSE_SIZES] + [f"mnist-ae-z{COURSE_AE}", "mnist-vae-z2-mse"]
    return {n: p for n in names if (p := course_dir() / f"{n}.safetensors").is_file()}


def latent_size_row(model: BaseVAE, split: Split, seed: int = 0) -> dict[str, float]:
    """Test recon, KL, -ELBO, the number of active dimensions, and how many hold 90% of the KL."""
    terms = per_sample_terms(model, split, seed)
    mu, logvar = encode_split(model, split)
    kl_dims = mean_kl_per_dim(model, mu, logvar)
    return {
        "z": model.latent_dim,
        "recon": float(terms["recon"].mean()),
        "kl": float(terms["kl"].mean()),
        "elbo": float(terms["elbo"].mean()),
        "active": int(len(active_dims(kl_dims))) if model.stochastic else model.latent_dim,
        "kl90": kl_share_dims(kl_dims) if model.stochastic else model.latent_dim,
    }


def sweep_summary(rows: list[dict], ae_rows: list[dict] | None = None) -> str:
    """One sentence of what the latent-size sweep measured: active dimensions of the largest VAEs, the AE's recon."""
    big = [r for r in rows if r["z"] >= 32] or rows[-1:]
    text = "; ".join(f"z = {r['z']}: {r['active']} of {r['z']} dimensions active" for r in big)
    for r in ae_rows or []:
        best = min(rows, key=lambda v: v["recon"]) if rows else None
        text += f"; AE z = {r['z']}: reconstruction {r['recon']:.0f} nats" + (
            f" (best VAE {best['recon']:.0f})" if best else ""
        )
    return text


def kl_share_dims(kl_dims: np.ndarray, share: float = 0.9) -> int:
    """How many dimensions, strongest first, hold ``share`` of the total KL (0 when there is none)."""
    kl = np.sort(np.asarray(kl_dims, dtype=np.float64))[::-1]
    if kl.sum() <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(kl) / kl.sum(), share - 1e-9) + 1)


# --- prior, aggregate posterior, interpolation --------------------------------------------------
def aggregate_posterior(mu: np.ndarray, logvar: np.ndarray, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Draws from q(z) = mean over x of q(z|x): a random code, then a sample of its posterior. -> (n, z)"""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(mu), n)
    return (mu[rows] + np.exp(0.5 * logvar[rows]) * rng.standard_normal((n, mu.shape[1]))).astype(np.float32)


def moment_gap(samples: np.ndarray) -> float:
    """KL(N(m, S) || N(0, I)) of a Gaussian fitted to samples (n, z): 0 when their moments match the prior."""
    m = samples.mean(0)
    s = np.atleast_2d(np.cov(samples, rowvar=False))
    d = len(m)
    _, logdet = np.linalg.slogdet(s)
    return float(0.5 * (np.trace(s) + m @ m - d - logdet))
