"""The joint VAE: one encoder and decoder per modality, fused into one shared posterior.

``encode``/``decode`` act on the first modality, so every single-modality page works on a
joint model; ``encode2``/``decode2`` and ``fuse`` add the second modality and the fusion.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from explorer.config import JointConfig
from explorer.errors import ConfigError
from explorer.models.base import BaseVAE
from explorer.models.mlp import _mlp
from explorer.models.registry import register
from explorer.models.text import text_networks


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


@register("joint-vae")
class JointVAE(BaseVAE):
    """Modality 1: images ``in_shape``. Modality 2: images or one-hot labels ``second_shape``."""

    config_cls = JointConfig
    needs_dataset = True

    def __init__(self, config: JointConfig) -> None:
        super().__init__(config)
        h = list(config.hidden)
        p2 = math.prod(config.second_shape)
        self.encoder = _mlp([config.n_pixels, *h, 2 * config.latent_dim])
        self.decoder = _mlp([config.latent_dim, *reversed(h), config.n_pixels])
        if config.second == "text":  # a bag of words: networks sized for the vocabulary
            self.encoder2, self.decoder2 = text_networks(p2, config.latent_dim)
        else:
            self.encoder2 = _mlp([p2, *h, 2 * config.latent_dim])
            self.decoder2 = _mlp([config.latent_dim, *reversed(h), p2])
        if config.adv_weight > 0:
            self.discriminator = _mlp([config.latent_dim, 64, 2])
        self.partner = None  # supplies modality 2 from class labels; set by attach()

    @classmethod
    def dataset_config(cls, ds: object) -> dict:
        partner = getattr(ds, "partner", None)
        if partner is None:
            raise ConfigError("joint-vae needs a paired dataset: mnist+fashion-mnist or mnist+label")
        first = ds.name.split("+", 1)[0]  # type: ignore[attr-defined]
        return {**super().dataset_config(ds), "second": partner.kind, "second_shape": list(partner.shape),
                "modalities": [first, partner.name]}  # fmt: skip

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

    def terms(self, x: Tensor, y: Tensor | None = None, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Joint ELBO terms, each modality's own ELBO (both modalities rebuilt from one), and alignment."""
        if self.partner is None or y is None:
            raise ConfigError("joint-vae needs labels and a paired dataset (call attach) to compute its loss")
        x2 = self.partner.draw(y, self.training, generator, x=x)  # (B, *second_shape)
        mu1, lv1 = self.encode(x)
        mu2, lv2 = self.encode2(x2)
        posts = {"joint": self.fuse(mu1, lv1, mu2, lv2)}
        if self.config.unimodal:
            posts.update(m1=(mu1, lv1), m2=(mu2, lv2))
        beta, out = self.config.beta, {}
        for name, (mu, lv) in posts.items():
            z = self.reparameterize(mu, lv, generator)
            recon = self.recon_per_sample(self.decode_logits(z), x) + self.recon2(self.decode2_logits(z), x2)
            kl = self.kl_per_dim(mu, lv).sum(1)
            if name == "joint":
                out["recon"], out["kl"] = recon, kl
            else:
                out["unimodal"] = out.get("unimodal", 0) + recon + beta * kl
        total = out["recon"] + beta * out["kl"] + out.get("unimodal", 0)
        if self.config.cca_weight > 0:
            out["cca"] = self.config.cca_weight * correlation_loss(mu1, mu2).expand(len(x))  # a batch term, per sample
            total = total + out["cca"]
        if self.config.contrastive_weight > 0:
            out["contrastive"] = self.config.contrastive_weight * contrastive_loss(mu1, mu2, y, self.config.temperature)
            total = total + out["contrastive"]
        if self.config.adv_weight > 0:
            codes = _ReverseGrad.apply(torch.cat([mu1, mu2]))
            target = torch.cat([torch.zeros(len(x)), torch.ones(len(x))]).long().to(x.device)
            ce = F.cross_entropy(self.discriminator(codes), target, reduction="none")  # (2B,)
            out["adv"] = self.config.adv_weight * (ce[: len(x)] + ce[len(x) :]) / 2
            total = total + out["adv"]
        out["total"] = total
        return out
