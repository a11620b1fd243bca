"""Build any registered model for tests; joint models get a one-hot label partner."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from explorer.data.paired import LabelPartner
from explorer.models import BaseVAE, build_model, get_model_class

JOINT_LABEL = {"second": "label", "second_shape": [10], "modalities": ["mnist", "label"]}


def needs_partner(kind: str) -> bool:
    return get_model_class(kind).needs_dataset


def model_for(kind: str, config: dict | None = None, seed: int | None = None) -> BaseVAE:
    """The model with ``config``; joint models pair images with their one-hot class."""
    cfg = dict(config or {})
    if needs_partner(kind):
        cfg = {**JOINT_LABEL, **cfg}
    if seed is not None:
        torch.manual_seed(seed)
    model = build_model(kind, cfg)
    if needs_partner(kind):
        model.attach(SimpleNamespace(partner=LabelPartner(10)))
    return model
