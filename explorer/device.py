"""Pick the torch device: cuda, then mps, then cpu."""

from __future__ import annotations

import os

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` (or $EXPLORER_DEVICE) if given, else the best available device."""
    prefer = prefer or os.environ.get("EXPLORER_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
