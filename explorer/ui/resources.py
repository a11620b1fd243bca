"""Process-wide cached resources, shared read-only by every session."""

from __future__ import annotations

import streamlit as st

from explorer.checkpoint import load_checkpoint
from explorer.data import Dataset, load_dataset
from explorer.device import pick_device
from explorer.models import BaseVAE


@st.cache_resource(max_entries=12, show_spinner="Loading model…")
def cached_model(path: str, stamp: int) -> tuple[BaseVAE, dict]:
    """Load a checkpoint once per (path, mtime). Callers must not modify the model."""
    model, meta = load_checkpoint(path, pick_device())
    model.requires_grad_(False)
    return model, meta


@st.cache_resource(max_entries=6, show_spinner="Loading dataset…")
def cached_dataset(name: str) -> Dataset:
    """Load a dataset once per process. Callers must not modify its tensors."""
    return load_dataset(name)
