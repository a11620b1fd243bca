"""Built-in anchor prototypes (donut, stick) and anchor construction from names."""

from __future__ import annotations

import torch

from explorer.config import AnchorSpec
from explorer.data import Dataset
from explorer.errors import ConfigError

# (rows, [(col_from, col_to), ...]) with inclusive ranges, 28x28, 0-based.
_DONUT_ROWS = [
    ([0, 27], [(7, 20)]),
    ([1, 26], [(6, 21)]),
    ([2, 3, 24, 25], [(5, 22)]),
    ([4, 23], [(4, 9), (18, 23)]),
    (list(range(5, 23)), [(3, 9), (18, 24)]),
]


def donut() -> torch.Tensor:
    """The thick-ring prototype, (28, 28) of 0/1."""
    m = torch.zeros(28, 28)
    for rows, spans in _DONUT_ROWS:
        for r in rows:
            for a, b in spans:
                m[r, a : b + 1] = 1
    return m


def stick() -> torch.Tensor:
    """The vertical bar prototype: columns 11-16 in every row, (28, 28) of 0/1."""
    m = torch.zeros(28, 28)
    m[:, 11:17] = 1
    return m


BUILTIN = {"donut": donut, "stick": stick}
BUILTIN_SHAPE = (1, 28, 28)  # the built-in prototypes are 28x28 grey images


def anchor_names(ds: Dataset) -> list[str]:
    """The anchors that work on ``ds``: the built-in ones on 28x28 grey images, and one per class."""
    builtin = list(BUILTIN) if ds.in_shape == BUILTIN_SHAPE else []
    return builtin + [f"class:{k}" for k in range(ds.n_classes)]


def prototype(name: str, ds: Dataset) -> torch.Tensor:
    """A named prototype, flattened (P,): 'donut', 'stick' or 'class:K' (that class's mean image)."""
    if name in BUILTIN:
        if ds.in_shape != BUILTIN_SHAPE:
            raise ConfigError(f"the built-in '{name}' anchor needs 28x28 grey images, dataset has {ds.in_shape}")
        return BUILTIN[name]().flatten()
    if name.startswith("class:"):
        k = int(name.split(":", 1)[1])
        sel = ds.train.labels == k
        if not sel.any():
            raise ConfigError(f"no training images of class {k}")
        return ds.train.images[sel].mean(0).flatten()
    raise ConfigError(f"unknown anchor {name!r}: use donut, stick or class:K")


def default_targets(k: int, latent_dim: int) -> list[list[float]]:
    """Targets for k anchors: the first two at opposite corners (-1..-1, +1..+1), more around a circle."""
    if k <= 2:
        return [[-1.0] * latent_dim, [1.0] * latent_dim][:k]
    out = []
    for i in range(k):
        angle = 2 * torch.pi * i / k
        t = [0.0] * latent_dim
        t[0], t[min(1, latent_dim - 1)] = float(torch.cos(torch.tensor(angle))), float(torch.sin(torch.tensor(angle)))
        out.append(t)
    return out


def anchor_specs(names: tuple[str, ...] | list[str], ds: Dataset, latent_dim: int) -> list[AnchorSpec]:
    """AnchorSpecs for named prototypes with default targets."""
    targets = default_targets(len(names), latent_dim)
    return [AnchorSpec(n, tuple(prototype(n, ds).tolist()), tuple(t)) for n, t in zip(names, targets, strict=False)]


def specs_of(model_config: object) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Prototypes (K, P), targets (K, z) and names of a config's anchors."""
    anchors = getattr(model_config, "anchors", ())
    if not anchors:
        raise ConfigError("this model was trained without anchors")
    protos = torch.tensor([a.prototype for a in anchors], dtype=torch.float32)
    targets = torch.tensor([a.target for a in anchors], dtype=torch.float32)
    return protos, targets, [a.name for a in anchors]


def scores_of(images: torch.Tensor, protos: torch.Tensor, kind: str = "overlap") -> torch.Tensor:
    """Anchor scores of images (N, C, H, W) against prototypes (K, P). -> (N, K)"""
    from explorer.models.base import anchor_scores

    return anchor_scores(images.flatten(1).float(), protos, kind)


def target_distances(mu: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor, top: float = 0.1) -> list[float]:
    """For each anchor: the mean distance from the codes of its top-scored images to its target.

    ``top`` is the fraction of images (ranked by that anchor's score minus the others') that count.
    """
    out = []
    k = scores.shape[1]
    for a in range(k):
        rel = scores[:, a] - (scores.sum(1) - scores[:, a]) / max(1, k - 1)  # (N,)
        n = max(1, int(len(rel) * top))
        idx = torch.argsort(rel, descending=True)[:n]
        out.append(float((mu[idx] - targets[a]).norm(dim=1).mean()))
    return out
