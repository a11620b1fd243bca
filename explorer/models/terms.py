"""Loss terms: a model's training objective is a sum of named terms over one forward pass.

A model declares its own terms (``BaseVAE.own_terms``: recon and KL by default). Extras that
any model can carry (anchors today) register here with ``@extra_term`` and switch on from the
config. ``total = sum(weight * value)`` over the active terms, in order: own terms, then extras.
Each term's value is reported under its name; ``weight`` names a config field (``beta`` for the
KL) so that the reported ``kl`` stays the ELBO's while the total weighs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from explorer.models.base import BaseVAE


@dataclass
class Forward:
    """One forward pass of a batch: what every term reads."""

    x: Tensor  # (B, C, H, W)
    y: Tensor | None  # (B,) class labels, or None
    mu: Tensor  # (B, z) the posterior of x alone: what encode() returns
    logvar: Tensor  # (B, z)
    z: Tensor | None = None  # (B, z) the reparameterized draw
    logits: Tensor | None = None  # (B, C, H, W) decoded from z, before the sigmoid
    extra: dict[str, Any] = field(default_factory=dict)  # model-specific (the joint VAE's second modality)


def _always(model: BaseVAE) -> bool:
    return True


@dataclass(frozen=True)
class LossTerm:
    """A named per-image term in nats: ``fn(model, forward) -> (B,)``."""

    name: str
    fn: Callable[[BaseVAE, Forward], Tensor]
    weight: str | None = None  # a config field that scales it in the total (None: 1)
    applies: Callable[[BaseVAE], bool] = _always  # whether this model's config switches it on

    def scale(self, model: BaseVAE) -> float:
        return 1.0 if self.weight is None else float(getattr(model.config, self.weight))


EXTRA_TERMS: list[LossTerm] = []


def extra_term(
    name: str, applies: Callable[[BaseVAE], bool], weight: str | None = None
) -> Callable[[Callable[[BaseVAE, Forward], Tensor]], Callable[[BaseVAE, Forward], Tensor]]:
    """Decorator: add ``fn`` as a term every model carries when ``applies(model)``."""

    def wrap(fn: Callable[[BaseVAE, Forward], Tensor]) -> Callable[[BaseVAE, Forward], Tensor]:
        EXTRA_TERMS.append(LossTerm(name, fn, weight, applies))
        return fn

    return wrap


def active_terms(model: BaseVAE) -> list[LossTerm]:
    """The model's own terms that apply, then the extras its config switches on."""
    return [t for t in (*model.own_terms, *EXTRA_TERMS) if t.applies(model)]


def combine(model: BaseVAE, fwd: Forward) -> dict[str, Tensor]:
    """Every active term's value, each (B,), and ``total`` = their weighted sum."""
    out: dict[str, Tensor] = {}
    total: Tensor | None = None
    for term in active_terms(model):
        value = term.fn(model, fwd)  # (B,)
        out[term.name] = value
        part = value if term.weight is None else term.scale(model) * value
        total = part if total is None else total + part
    assert total is not None, f"{model.kind} has no loss terms"
    out["total"] = total
    return out


# --- terms every VAE shares --------------------------------------------------------------
def recon_term(model: BaseVAE, fwd: Forward) -> Tensor:
    """Reconstruction error of x from its code, summed over pixels. -> (B,)"""
    return model.recon_per_sample(fwd.logits, fwd.x)


def kl_term(model: BaseVAE, fwd: Forward) -> Tensor:
    """KL of the posterior to the prior, summed over dimensions. -> (B,)"""
    return model.kl_per_dim(fwd.mu, fwd.logvar).sum(1)


RECON = LossTerm("recon", recon_term)
KL = LossTerm("kl", kl_term, weight="beta")


# --- extras the config switches on -------------------------------------------------------
def has_anchors(model: BaseVAE) -> bool:
    """Anchors act through the KL, so they need a stochastic model with anchors and a rate."""
    return model.stochastic and len(model.config.anchors) > 0 and model.config.anchor_rate > 0


@extra_term("anchor", has_anchors)
def anchor_term(model: BaseVAE, fwd: Forward) -> Tensor:
    """KL on the anchored mean mu - shift(x), minus the plain KL: pulls mu towards the targets. -> (B,)

    Added to ``kl`` it gives the KL computed on mu - rate * sum_k score_k(x) * target_k.
    """
    anchored = model.kl_per_dim(fwd.mu - model.anchor_shift(fwd.x), fwd.logvar).sum(1)
    return anchored - model.kl_per_dim(fwd.mu, fwd.logvar).sum(1)
