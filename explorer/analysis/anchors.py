"""Built-in anchor prototypes (donut, stick) and anchor construction from names."""

from __future__ import annotations

import torch

from explorer.config import AnchorSpec
from explorer.data import Dataset
from explorer.data.drawing import PREFIX, decode_drawing, short_name
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


def split_target(name: str) -> tuple[str, tuple[float, ...] | None]:
    """'stick@1.5:-2' -> ('stick', (1.5, -2.0)); a name without '@' has no target of its own.

    Coordinates are separated by ':' because the CLI's --anchor list is comma-separated.
    """
    if "@" not in name:
        return name, None
    base, _, coords = name.partition("@")
    try:
        target = tuple(float(v) for v in coords.split(":"))
    except ValueError:
        raise ConfigError(f"bad anchor target in {name!r}: use NAME@x:y") from None
    if not target or not all(abs(v) <= 10 for v in target):
        raise ConfigError(f"anchor target in {name!r} must be 1+ numbers within ±10")
    return base, target


def prototype(name: str, ds: Dataset) -> torch.Tensor:
    """A named prototype, flattened (P,): 'donut', 'stick', 'class:K' (that class's mean image) or
    'image:I' (training image I itself) or 'drawn:CODE' (a drawing, explorer.data.drawing)."""
    name = split_target(name)[0]
    if name.startswith(PREFIX):
        if ds.in_shape != BUILTIN_SHAPE:
            raise ConfigError(f"a drawn anchor needs 28x28 grey images, dataset has {ds.in_shape}")
        return decode_drawing(name[len(PREFIX) :])
    if name.startswith("image:"):
        try:
            i = int(name.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"bad anchor {name!r}: use image:INDEX") from None
        if not 0 <= i < len(ds.train):
            raise ConfigError(f"anchor {name!r}: the training split has {len(ds.train)} images")
        return ds.train.images[i].flatten()
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
    raise ConfigError(f"unknown anchor {name!r}: use donut, stick, class:K, image:I or drawn:CODE (optionally @x:y)")


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
    """AnchorSpecs for named prototypes: a name's own target ('NAME@x:y', zero-padded to the latent size),
    else the default target for its position."""
    specs = []
    for n, default in zip(names, default_targets(len(names), latent_dim), strict=False):
        base, own = split_target(n)
        if own is not None and len(own) > latent_dim:
            raise ConfigError(f"anchor {n!r} has {len(own)} target coordinates, the latent has {latent_dim}")
        target = default if own is None else [*own, *[0.0] * (latent_dim - len(own))]
        specs.append(AnchorSpec(short_name(base), tuple(prototype(base, ds).tolist()), tuple(float(v) for v in target)))
    return specs


def describe(names: list[str], targets: torch.Tensor) -> str:
    """One sentence per anchor, from the anchors a model actually has: where its look-alikes are pulled."""
    parts = []
    for name, t in zip(names, targets.tolist(), strict=False):
        where = ", ".join(f"{v:+.1f}" for v in t[:2]) + (", …" if len(t) > 2 else "")
        what = {"donut": "round shapes (0s, 6s)", "stick": "upright strokes (1s)"}.get(name, name)
        if name.startswith("class:"):
            what = f"images like the mean {name.split(':')[1]}"
        elif name.startswith("image:"):
            what = f"images like training image {name.split(':')[1]}"
        elif name.startswith(PREFIX):
            what = "images like your drawing"
        parts.append(f"**{name}** pulls {what} towards ({where})")
    return "This model's anchors: " + "; ".join(parts) + "."


def short_run_warning(names: list[str], anchored: list[float], plain: list[float] | None, epochs: int) -> str | None:
    """A warning when a run looks too short to show the anchors' effect, else None.

    With a plain twin: any anchor whose look-alikes ended no nearer their target than without anchors.
    Without one: fewer than 10 epochs.
    """
    if plain is not None:
        worse = [n for n, a, p in zip(names, anchored, plain, strict=False) if a >= p]
        if worse:
            return (
                f"After {epochs} epoch{'s' * (epochs != 1)}, {len(worse)} of {len(names)} anchors ({', '.join(worse)}) "
                "ended no nearer their targets than in the plain twin: the run is too short to show the effect. "
                "Train for 20 or more epochs."
            )
        return None
    if epochs < 10:
        return f"Only {epochs} epoch{'s' * (epochs != 1)}: anchors need 10 or more to pull their data home."
    return None


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
