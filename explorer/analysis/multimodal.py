"""Shared latent spaces: encode one modality alone, cross-modal retrieval, alignment distances."""

from __future__ import annotations

import numpy as np
import torch

from explorer.errors import ExplorerError
from explorer.models import BaseVAE


def _second_split(ds: object, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The second modality's items and labels for a split of a paired dataset."""
    partner = ds.partner  # type: ignore[attr-defined]
    if partner.kind == "label":
        labels = ds.split(split).labels  # type: ignore[attr-defined]
        return one_hot_labels(labels, partner.shape[0]), labels
    if partner.kind == "text":
        s = ds.split(split)  # type: ignore[attr-defined]
        return partner.bags(s.images, s.labels), s.labels
    parts = {"train": [partner.train], "test": [partner.test], "all": [partner.train, partner.test]}[split]
    return torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts])


def one_hot_labels(labels: torch.Tensor | list[int], n_classes: int) -> torch.Tensor:
    """The label modality's input: (B,) class indices -> (B, n_classes) one-hot rows."""
    return torch.nn.functional.one_hot(torch.as_tensor(labels).long(), n_classes).float()


@torch.no_grad()
def encode_items(model: BaseVAE, modality: int, x: torch.Tensor) -> np.ndarray:
    """Posterior means of items of modality 0 or 1, each encoded alone, as the test codes are: (B, z) numpy."""
    return model.encode_modality(modality, x.to(model.device))[0].cpu().numpy()  # type: ignore[attr-defined]


@torch.no_grad()
def decode_both(model: BaseVAE, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same codes through both decoders: (B, z) -> ((B, ...), (B, ...)) on the CPU."""
    z = z.to(model.device)
    return model.decode_modality(0, z).cpu(), model.decode_modality(1, z).cpu()  # type: ignore[attr-defined]


@torch.no_grad()
def encode_modality(
    model: BaseVAE, ds: object, modality: str, split: str = "test", batch: int = 2000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encode one modality alone: (mu, logvar, labels) as numpy."""
    names = list(getattr(model.config, "modalities", ()))
    if modality not in names or getattr(ds, "partner", None) is None:
        raise ExplorerError(f"modality must be one of {names or ['(not a joint model)']} with its paired dataset")
    index = names.index(modality)
    if index == 0:
        s = ds.split(split)  # type: ignore[attr-defined]
        items, labels = s.images, s.labels
    else:
        items, labels = _second_split(ds, split)
    mus, lvs = [], []
    model.eval()
    for i in range(0, len(items), batch):
        mu, lv = model.encode_modality(index, items[i : i + batch].to(model.device))  # type: ignore[attr-defined]
        mus.append(mu.cpu())
        lvs.append(lv.cpu())
    return torch.cat(mus).numpy(), torch.cat(lvs).numpy(), labels.numpy()


def retrieval_accuracy(codes_a: np.ndarray, labels_a: np.ndarray, codes_b: np.ndarray, labels_b: np.ndarray) -> float:
    """Top-1: how often the nearest code of the other modality has the same class."""
    a, b = torch.from_numpy(codes_a), torch.from_numpy(codes_b)
    nearest = torch.cat([torch.cdist(a[i : i + 1000], b).argmin(1) for i in range(0, len(a), 1000)])
    return float((labels_b[nearest.numpy()] == labels_a).mean())


def paired_distances(
    codes_a: np.ndarray, labels_a: np.ndarray, codes_b: np.ndarray, labels_b: np.ndarray, seed: int = 0
) -> tuple[float, float]:
    """Mean distance from each code to a same-class code of the other modality, and to a random one."""
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(labels_b == c) for c in np.unique(labels_b)}
    same = np.array([rng.choice(by_class[c]) for c in labels_a])
    rand = rng.integers(0, len(codes_b), len(codes_a))
    return float(np.linalg.norm(codes_a - codes_b[same], axis=1).mean()), float(
        np.linalg.norm(codes_a - codes_b[rand], axis=1).mean()
    )


def alignment_from_codes(
    names: tuple[str, str], a: np.ndarray, la: np.ndarray, b: np.ndarray, lb: np.ndarray
) -> dict[str, float]:
    """Retrieval both ways and paired/random distances from each modality's codes and labels."""
    m1, m2 = names
    paired, rand = paired_distances(a, la, b, lb)
    return {
        f"retrieval_{m1}_to_{m2}": retrieval_accuracy(a, la, b, lb),
        f"retrieval_{m2}_to_{m1}": retrieval_accuracy(b, lb, a, la),
        "paired_distance": paired,
        "random_distance": rand,
    }


@torch.no_grad()
def cross_generate(
    model: BaseVAE, source: int, x: torch.Tensor, n: int = 8, seed: int = 0, spread: float = 1.0
) -> torch.Tensor:
    """Encode one item of modality ``source`` (0 or 1) alone; decode the other modality.

    x: (1, ...) -> (n, ...): from the posterior mean first, then n - 1 draws from N(mu, (spread * sigma)^2).
    """
    mu, lv = model.encode_modality(source, x.to(model.device))  # type: ignore[attr-defined]  # (1, z) each
    gen = torch.Generator(device=model.device).manual_seed(seed)
    lv = lv + 2 * float(np.log(spread))  # sigma scaled by spread
    z = model.reparameterize(mu.repeat(n, 1), lv.repeat(n, 1), gen)  # (n, z)
    z[0] = mu[0]
    return model.decode_modality(1 - source, z).cpu()  # type: ignore[attr-defined]


def posterior_spread(mu: np.ndarray, logvar: np.ndarray) -> tuple[float, float]:
    """(median sigma of q(z|x), mean spread of mu across items): how far draws move against how far codes lie apart."""
    return float(np.median(np.exp(0.5 * logvar))), float(mu.std(0).mean())


def nearest_across(codes_a: np.ndarray, query: int, codes_b: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The k codes of the other modality nearest to ``codes_a[query]``: (rows (k,), distances (k,))."""
    d = np.linalg.norm(codes_b - codes_a[query], axis=1)  # (N_b,)
    rows = np.argsort(d, kind="stable")[:k]
    return rows, d[rows]
