"""β-TCVAE (Chen et al., 2018): the MLP VAE with the total correlation of its codes weighed more.

The KL splits into index-code mutual information, total correlation (TC) and dimension-wise KL;
penalising the TC alone pushes the latent dimensions towards independence. The objective here is
recon + β·kl + tc_weight·tc (with β = 1 that is the paper's α = γ = 1, β_TC = 1 + tc_weight);
``tc`` is the paper's minibatch-weighted-sampling (MWS) estimate, which needs the training set's
size; it is biased upwards (by (z − 1)·log N when all posteriors overlap, as at initialisation),
so read its curve for its trend, not its level.

This file is the whole model kind: config, class, and its extra loss term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from explorer.config import check_number, option
from explorer.errors import ConfigError
from explorer.models.mlp import VAEMLP, MLPConfig
from explorer.models.registry import register
from explorer.models.terms import KL, RECON, Forward, LossTerm

LOG_2PI = math.log(2 * math.pi)
MAX_DATASET_SIZE = 10**9  # only a log term uses it: any real training set fits


@dataclass(frozen=True)
class TCVAEConfig(MLPConfig):
    """The MLP VAE's settings plus the weight of the total-correlation term."""

    tc_weight: float = option(
        5.0, "extra weight of the total correlation (β_TC − 1)", "TC weight", lo=0.0, hi=100.0, step=1.0
    )
    dataset_size: int = field(default=9000, metadata={"count": True})  # training images, from the dataset

    def validate(self) -> None:
        super().validate()
        check_number("tc_weight", self.tc_weight)
        if not isinstance(self.dataset_size, int) or not 1 <= self.dataset_size <= MAX_DATASET_SIZE:
            raise ConfigError(f"dataset_size must be an int from 1 to {MAX_DATASET_SIZE:,}, got {self.dataset_size!r}")


def total_correlation(z: Tensor, mu: Tensor, logvar: Tensor, n_data: int) -> Tensor:
    """log q(z) - sum_d log q(z_d) per code, by minibatch weighted sampling. (B, z) x3 -> (B,)"""
    var = logvar.exp()
    log_q = -0.5 * (LOG_2PI + logvar[None] + (z[:, None] - mu[None]).pow(2) / var[None])  # (B, B, z): q(z_i,d | x_j)
    log_bn = math.log(len(z) * n_data)
    log_qz = torch.logsumexp(log_q.sum(2), dim=1) - log_bn  # (B,)
    log_prod = (torch.logsumexp(log_q, dim=1) - log_bn).sum(1)  # (B,)
    return log_qz - log_prod


def _tc(model: BetaTCVAE, fwd: Forward) -> Tensor:
    return total_correlation(fwd.z, fwd.mu, fwd.logvar, model.config.dataset_size)


@register("beta-tcvae")
class BetaTCVAE(VAEMLP):
    """pixels-400-100-z like vae-mlp; the loss adds ``tc_weight`` times the total correlation."""

    config_cls = TCVAEConfig
    own_terms = (RECON, KL, LossTerm("tc", _tc, weight="tc_weight"))

    @classmethod
    def dataset_config(cls, ds: object) -> dict:
        return {**super().dataset_config(ds), "dataset_size": len(ds.train)}  # type: ignore[attr-defined]
