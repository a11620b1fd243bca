"""The joint VAE: one encoder and decoder per modality, fused into one shared posterior.

``encode``/``decode`` act on the first modality, so every single-modality page works on a
joint model; ``encode2``/``decode2`` and ``fuse`` add the second modality and the fusion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from explorer.config import ModelConfig, check_hidden, check_number, option
from explorer.errors import ConfigError
from explorer.models.base import BaseVAE
from explorer.models.mlp import mlp
from explorer.models.registry import register
from explorer.models.terms import Forward, LossTerm
from explorer.models.text import text_networks

FUSIONS = ("poe", "mean")
SECONDS = ("image", "label", "text")  # what the second modality is


@dataclass(frozen=True)
class JointConfig(ModelConfig):
    """Two modalities, one encoder and decoder each, fused into one posterior."""

    modalities: tuple[str, ...] = ("mnist", "fashion-mnist")  # from the dataset
    second: str = "image"  # "image" (sigmoid/BCE), "label" (softmax/cross-entropy) or "text" (bag of words, BCE); from the dataset
    second_shape: tuple[int, ...] = (1, 28, 28)  # from the dataset
    hidden: tuple[int, ...] = option(
        (400,), "hidden layer sizes of each encoder and decoder, e.g. 400", "Hidden layers"
    )
    fusion: str = option("poe", "product of experts, or the mean of means and log-variances", "Fusion", choices=FUSIONS)
    unimodal: bool = option(True, "add each modality's own ELBO (sub-sampled training)", "Unimodal ELBOs")
    cca_weight: float = option(
        0.0,
        "weight of the correlation alignment of the two modalities' means",
        "CCA weight",
        lo=0.0,
        hi=1000.0,
        step=10.0,
    )
    adv_weight: float = option(
        0.0,
        "weight of the adversarial modality term (gradient reversal)",
        "Adversarial weight",
        lo=0.0,
        hi=1000.0,
        step=0.5,
    )
    contrastive_weight: float = option(
        0.0, "weight of the cross-modal contrastive term", "Contrastive weight", lo=0.0, hi=1000.0, step=10.0
    )
    temperature: float = option(
        1.0, "temperature of the contrastive softmax over squared distances", "Temperature", lo=0.01, hi=100.0, step=0.5
    )

    def validate(self) -> None:
        super().validate()
        if len(self.modalities) != 2:
            raise ConfigError("a joint model has exactly two modalities")
        if self.second not in SECONDS:
            raise ConfigError(f"second must be one of {SECONDS}, got {self.second!r}")
        if not self.second_shape or any(not isinstance(d, int) or d < 1 for d in self.second_shape):
            raise ConfigError(f"bad second_shape {self.second_shape!r}")
        check_hidden(self.hidden)
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        for name in ("cca_weight", "adv_weight", "contrastive_weight"):
            check_number(name, getattr(self, name))
        check_number("temperature", self.temperature, 0.01, 100)


class _ReverseGrad(torch.autograd.Function):
    """Identity forward, negated gradient backward: the encoders learn to fool the discriminator."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        return -grad


def poe(mus: list[Tensor], logvars: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Product of Gaussian experts with the N(0, I) prior expert. (B, z) each -> (B, z), (B, z)"""
    precision = 1 + sum(torch.exp(-lv) for lv in logvars)  # the prior's precision is 1
    mu = sum(m * torch.exp(-lv) for m, lv in zip(mus, logvars)) / precision
    return mu, -torch.log(precision)


def correlation_loss(a: Tensor, b: Tensor) -> Tensor:
    """Mean over dimensions of 1 - concordance correlation between paired codes across the batch. -> ()

    Concordance (Lin's CCC) = 2 cov(a, b) / (var a + var b + (mean a - mean b)^2): like Pearson's
    correlation, but it is 1 only when paired codes also agree in offset and scale, which is
    what makes the nearest code of the other modality the partner's.
    """
    ma, mb = a.mean(0), b.mean(0)
    cov = ((a - ma) * (b - mb)).mean(0)
    ccc = 2 * cov / (a.var(0, unbiased=False) + b.var(0, unbiased=False) + (ma - mb).pow(2)).clamp_min(1e-6)
    return (1 - ccc).mean()


def contrastive_loss(a: Tensor, b: Tensor, y: Tensor, temperature: float = 1.0) -> Tensor:
    """Cross-modal contrastive loss over the batch, both ways. (B, z), (B, z), (B,) -> (B,)

    Similarity is the negative squared distance, the measure retrieval uses. A pair shares only
    its class, so every other-modality code of the same class in the batch counts as a partner:
    -log(sum over partners of softmax(-|a_i - b_j|^2 / T) over j), averaged over the two directions.
    """
    logits = -torch.cdist(a, b).pow(2) / temperature  # (B, B)
    same = y[:, None] == y[None, :]  # (B, B)

    def one_way(lg: Tensor) -> Tensor:
        return torch.logsumexp(lg, 1) - torch.logsumexp(lg.masked_fill(~same, float("-inf")), 1)

    return (one_way(logits) + one_way(logits.T)) / 2


# --- the joint VAE's own terms: the joint ELBO, each modality's own ELBO, and alignment ----------
def _joint_recon(model: JointVAE, fwd: Forward) -> Tensor:
    return fwd.extra["parts"]["joint"][0]


def _joint_kl(model: JointVAE, fwd: Forward) -> Tensor:
    return fwd.extra["parts"]["joint"][1]


def _unimodal(model: JointVAE, fwd: Forward) -> Tensor:
    """Each single-modality posterior's ELBO (both modalities rebuilt from one), β-weighted. -> (B,)"""
    total = 0
    for name in ("m1", "m2"):
        recon, kl = fwd.extra["parts"][name]
        total = total + recon + model.config.beta * kl
    return total


def _cca(model: JointVAE, fwd: Forward) -> Tensor:
    """A batch term, reported per sample. -> (B,)"""
    return model.config.cca_weight * correlation_loss(fwd.mu, fwd.extra["mu2"]).expand(len(fwd.x))


def _contrastive(model: JointVAE, fwd: Forward) -> Tensor:
    c = model.config
    return c.contrastive_weight * contrastive_loss(fwd.mu, fwd.extra["mu2"], fwd.y, c.temperature)


def _adversarial(model: JointVAE, fwd: Forward) -> Tensor:
    """The discriminator's cross-entropy on both modalities' codes, through gradient reversal. -> (B,)"""
    n = len(fwd.x)
    codes = _ReverseGrad.apply(torch.cat([fwd.mu, fwd.extra["mu2"]]))  # (2B, z)
    target = torch.cat([torch.zeros(n), torch.ones(n)]).long().to(fwd.x.device)
    ce = F.cross_entropy(model.discriminator(codes), target, reduction="none")  # (2B,)
    return model.config.adv_weight * (ce[:n] + ce[n:]) / 2


@register("joint-vae")
class JointVAE(BaseVAE):
    """Modality 1: images ``in_shape``. Modality 2: images or one-hot labels ``second_shape``."""

    config_cls = JointConfig
    needs_dataset = True
    own_terms = (  # alignment terms report their weighted value (what enters the total)
        LossTerm("recon", _joint_recon),
        LossTerm("kl", _joint_kl, weight="beta"),
        LossTerm("unimodal", _unimodal, applies=lambda m: m.config.unimodal),
        LossTerm("cca", _cca, applies=lambda m: m.config.cca_weight > 0),
        LossTerm("contrastive", _contrastive, applies=lambda m: m.config.contrastive_weight > 0),
        LossTerm("adv", _adversarial, applies=lambda m: m.config.adv_weight > 0),
    )

    def __init__(self, config: JointConfig) -> None:
        super().__init__(config)
        h = list(config.hidden)
        p2 = math.prod(config.second_shape)
        self.encoder = mlp([config.n_pixels, *h, 2 * config.latent_dim])
        self.decoder = mlp([config.latent_dim, *reversed(h), config.n_pixels])
        if config.second == "text":  # a bag of words: networks sized for the vocabulary
            self.encoder2, self.decoder2 = text_networks(p2, config.latent_dim)
        else:
            self.encoder2 = mlp([p2, *h, 2 * config.latent_dim])
            self.decoder2 = mlp([config.latent_dim, *reversed(h), p2])
        if config.adv_weight > 0:
            self.discriminator = mlp([config.latent_dim, 64, 2])
        self.partner = None  # supplies modality 2 from class labels; set by attach()

    @classmethod
    def dataset_config(cls, ds: object) -> dict:
        partner = getattr(ds, "partner", None)
        if partner is None:
            raise ConfigError("joint-vae needs a paired dataset: mnist+fashion-mnist or mnist+label")
        first = ds.name.split("+", 1)[0]  # type: ignore[attr-defined]
        return {
            **super().dataset_config(ds),
            "second": partner.kind,
            "second_shape": list(partner.shape),
            "modalities": [first, partner.name],
        }

    def attach(self, dataset: object) -> None:
        """Take the second modality's source from a paired dataset."""
        partner = getattr(dataset, "partner", None)
        if partner is None:
            raise ConfigError("joint-vae needs a paired dataset: mnist+fashion-mnist or mnist+label")
        if tuple(partner.shape) != tuple(self.config.second_shape):
            raise ConfigError(
                f"the dataset's second modality is {partner.shape}, the model's is {self.config.second_shape}"
            )
        self.partner = partner

    # --- modality 1 (the BaseVAE interface) ------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=1)  # (B, z) each
        return mu, logvar

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z).view(-1, *self.config.in_shape)  # (B, C, H, W)

    # --- modality 2 and fusion ---------------------------------------------------------------
    def encode2(self, x2: Tensor) -> tuple[Tensor, Tensor]:
        """(B, *second_shape) -> mu, logvar (B, z)."""
        mu, logvar = self.encoder2(x2.flatten(1).float()).chunk(2, dim=1)
        return mu, logvar

    def decode2_logits(self, z: Tensor) -> Tensor:
        return self.decoder2(z).view(-1, *self.config.second_shape)

    def decode2(self, z: Tensor) -> Tensor:
        """Images in [0,1], or class probabilities for a label modality."""
        logits = self.decode2_logits(z)
        return torch.softmax(logits, dim=-1) if self.config.second == "label" else torch.sigmoid(logits)

    def encode_modality(self, index: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """Encode modality 0 or 1 alone."""
        return self.encode(x) if index == 0 else self.encode2(x)

    def decode_modality(self, index: int, z: Tensor) -> Tensor:
        return self.decode(z) if index == 0 else self.decode2(z)

    def fuse(self, mu1: Tensor, lv1: Tensor, mu2: Tensor, lv2: Tensor) -> tuple[Tensor, Tensor]:
        if self.config.fusion == "poe":
            return poe([mu1, mu2], [lv1, lv2])
        return (mu1 + mu2) / 2, (lv1 + lv2) / 2

    def recon2(self, logits: Tensor, x2: Tensor) -> Tensor:
        """Second-modality error per sample. -> (B,)"""
        if self.config.second == "label":
            return F.cross_entropy(logits, x2.argmax(-1), reduction="none")
        return F.binary_cross_entropy_with_logits(logits, x2, reduction="none").flatten(1).sum(1)

    def forward_pass(self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None) -> Forward:
        """Draw modality 2, encode both, and rebuild both modalities from the joint (and each single) posterior."""
        if self.partner is None or y is None:
            raise ConfigError("joint-vae needs labels and a paired dataset (call attach) to compute its loss")
        x2 = self.partner.draw(y, self.training, generator, x=x)  # (B, *second_shape)
        mu1, lv1 = self.encode(x)
        mu2, lv2 = self.encode2(x2)
        posts = {"joint": self.fuse(mu1, lv1, mu2, lv2)}
        if self.config.unimodal:
            posts.update(m1=(mu1, lv1), m2=(mu2, lv2))
        parts = {}  # posterior name -> (recon of both modalities, KL), each (B,)
        for name, (mu, lv) in posts.items():
            z = self.reparameterize(mu, lv, generator)
            recon = self.recon_per_sample(self.decode_logits(z), x) + self.recon2(self.decode2_logits(z), x2)
            parts[name] = (recon, self.kl_per_dim(mu, lv).sum(1))
        return Forward(x, y, mu1, lv1, extra={"x2": x2, "mu2": mu2, "logvar2": lv2, "parts": parts})
