"""Metrics of a trained model: ELBO terms, per-dimension KL, active dims, k-NN accuracy."""

from __future__ import annotations

import numpy as np
import torch

from explorer.data import Split
from explorer.models import BaseVAE

ACTIVE_KL = 0.01  # nats: a dimension whose mean KL is above this carries information


@torch.no_grad()
def per_sample_terms(model: BaseVAE, split: Split, seed: int = 0, batch_size: int = 2000) -> dict[str, torch.Tensor]:
    """Loss terms per image (N,) on the CPU, with ``elbo`` = recon + kl (the negative ELBO, nats)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=model.device).manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(split), batch_size):
        x = split.images[i : i + batch_size].to(model.device)
        y = split.labels[i : i + batch_size].to(model.device)
        for k, v in model.terms(x, y, generator=gen).items():
            parts.setdefault(k, []).append(v.cpu())
    model.train(was_training)
    out = {k: torch.cat(v) for k, v in parts.items()}
    out["elbo"] = out["recon"] + out["kl"]
    return out


def evaluate_split(model: BaseVAE, split: Split, seed: int = 0) -> dict[str, float]:
    """Mean terms over a split: elbo, recon, kl (nats per image), plus total and any extra term."""
    return {k: float(v.mean()) for k, v in per_sample_terms(model, split, seed).items()}


@torch.no_grad()
def encode_split(model: BaseVAE, split: Split, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances, each (N, z) float32 numpy."""
    was_training = model.training
    model.eval()
    mus, logvars = [], []
    for i in range(0, len(split), batch_size):
        x = split.images[i : i + batch_size].to(model.device)
        y = split.labels[i : i + batch_size].to(model.device)
        mu, logvar = model.encode(x, y)
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    model.train(was_training)
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


def mean_kl_per_dim(model: BaseVAE, mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Average KL of each latent dimension over a set of codes. -> (z,)"""
    kl = model.kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar))  # (N, z)
    return kl.mean(0).numpy()


def knn_accuracy(codes: np.ndarray, labels: np.ndarray, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated k-NN class accuracy of codes (N, d)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    counts = np.bincount(labels)
    folds = int(min(folds, counts[counts > 0].min()))
    if folds < 2 or len(np.unique(labels)) < 2:
        return float("nan")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(k), codes, labels, cv=cv).mean())


def evaluate(model: BaseVAE, split: Split, seed: int = 0) -> dict:
    """The ``explorer evaluate`` report for one split."""
    terms = evaluate_split(model, split, seed)
    mu, logvar = encode_split(model, split)
    kl_dims = mean_kl_per_dim(model, mu, logvar)
    labels = split.labels.numpy()
    return {
        "elbo": terms["elbo"],
        "recon": terms["recon"],
        "kl": terms["kl"],
        "active_dims": [int(i) for i in np.flatnonzero(kl_dims > ACTIVE_KL)],
        "kl_per_dim": [round(float(v), 4) for v in kl_dims],
        "knn_accuracy": knn_accuracy(mu, labels),
        "n": len(split),
    }
