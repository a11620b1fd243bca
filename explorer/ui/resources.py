"""Process-wide cached resources, shared read-only by every session."""

from __future__ import annotations

import streamlit as st

from explorer.checkpoint import load_for_use
from explorer.data import Dataset, load_dataset
from explorer.device import pick_device
from explorer.models import BaseVAE


@st.cache_resource(max_entries=12, show_spinner="Loading model…")
def cached_model(path: str, stamp: int) -> tuple[BaseVAE, dict]:
    """Load a checkpoint once per (path, mtime). Callers must not modify the model."""
    model, meta = load_for_use(path, pick_device())
    model.requires_grad_(False)
    return model, meta


@st.cache_resource(max_entries=6, show_spinner="Loading dataset…")
def cached_dataset(name: str) -> Dataset:
    """Load a dataset once per process. Callers must not modify its tensors."""
    return load_dataset(name)


@st.cache_data(max_entries=32, show_spinner="Ranking latent dimensions…")
def cached_dims_by_kl(path: str, stamp: int, dataset: str) -> tuple[list[int], list[float]]:
    """Dimensions ordered by mean KL on the test split (cached per model and dataset)."""
    from explorer.analysis.traverse import dims_by_kl

    order, kl = dims_by_kl(cached_model(path, stamp)[0], cached_dataset(dataset).test)
    return order, [float(v) for v in kl]


@st.cache_data(max_entries=16, show_spinner="Scoring every image…")
def cached_image_scores(path: str, stamp: int, dataset: str, split: str) -> dict[str, list[float]]:
    """Per-image -ELBO, recon and KL (nats) over a split."""
    from explorer.analysis.evaluate import per_sample_terms

    terms = per_sample_terms(cached_model(path, stamp)[0], cached_dataset(dataset).split(split))
    return {k: v.tolist() for k, v in terms.items()}


@st.cache_data(max_entries=64, show_spinner=False)
def checkpoint_hash(path: str, stamp: int) -> str:
    """Content hash of a checkpoint file (cached per path and mtime)."""
    from pathlib import Path

    from explorer.checkpoint import content_hash

    return content_hash(Path(path).read_bytes())


@st.cache_resource(max_entries=32, show_spinner=False)
def _cached_projection(key: str):
    from explorer.analysis.projection import load_cached

    return load_cached(key)


def ready_projection(key: str):
    """A finished map from the disk cache, or None while it is not there. Callers must not modify it."""
    from explorer.analysis.projection import cache_dir

    if not (cache_dir() / f"{key}.json").is_file():
        return None
    proj = _cached_projection(key)
    if proj is None:  # damaged on disk: forget it so it is recomputed
        _cached_projection.clear()
    return proj


@st.cache_data(max_entries=16, show_spinner="Encoding…")
def cached_codes(path: str, stamp: int, dataset: str, split: str = "test"):
    """Posterior means (N, z) of a split, as numpy."""
    from explorer.analysis.evaluate import encode_split

    return encode_split(cached_model(path, stamp)[0], cached_dataset(dataset).split(split))[0]


@st.cache_resource(max_entries=32, show_spinner=False)
def cached_latent_map(
    key: str,
    stamp: int,
    color_by: str,
    show_prior: bool,
    highlight: tuple[int, ...],
    manifold: bool,
    _model: BaseVAE,
    _proj,
    class_names: tuple[str, ...],
):
    """The /latent-map figure and its click targets, built once per map and view settings.

    A click on the map reruns the page; rebuilding the figure and decoding the manifold each time
    cost ~100 ms of the server's one interpreter per click. ``key`` (the projection's cache key,
    which holds the checkpoint's hash) and ``stamp`` identify ``_model`` and ``_proj``. The figure
    is shared by every session, frozen as its JSON dict (``FrozenFigure``): callers hand it to
    ``st.plotly_chart``, which only serialises it.
    """
    from explorer.figures.mapview import FrozenFigure, latent_map

    fig, targets = latent_map(_model, _proj, class_names, color_by, show_prior, highlight, manifold)
    return FrozenFigure(fig), targets


@st.cache_resource(max_entries=16, show_spinner=False)
def cached_epoch_view(path: str, class_names: tuple[str, ...], title: str, height: int):
    """A training snapshot's map (frozen) and its 8 test images over their reconstructions (PNG bytes).

    /train redraws both every 3 s in every tab that watches a run, in the server all sessions share;
    a snapshot file is written once, so they are built once per epoch. None if the file is unreadable.
    """
    from pathlib import Path

    import torch

    from explorer.figures.mapview import FrozenFigure, class_scatter
    from explorer.figures.trainview import load_snapshot
    from explorer.figures.viz import image_grid, png_bytes

    s = load_snapshot(Path(path))
    if s is None:
        return None
    fig = FrozenFigure(class_scatter(s["embedding"], s["labels"], class_names, title, height))
    grid = image_grid(torch.cat([torch.from_numpy(s["originals"]), torch.from_numpy(s["recons"])]), nrow=8, scale=2)
    return fig, png_bytes(grid)
