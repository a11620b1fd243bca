"""Maps of the latent space: methods, overlay, inverse grid, quality, the disk cache, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from explorer.analysis.projection import ProjectionParams, cache_key, compute_projection, get_or_compute, load_cached
from explorer.catalog import shipped_dir
from explorer.checkpoint import load_checkpoint
from explorer.data import load_dataset
from explorer.errors import ConfigError

Z16 = shipped_dir() / "mnist-vae-mlp-z16.safetensors"


@pytest.fixture(scope="module")
def z16():
    return load_checkpoint(Z16)[0]


@pytest.mark.parametrize("method", ["raw", "pca", "tsne"])
def test_methods_shapes_and_overlay(z16, method):
    ds = load_dataset("mnist")
    p = ProjectionParams(method=method, limit=600, n_prior=50, n_iter=100, early_iter=50)
    proj = compute_projection(z16, ds, p)
    assert proj.embedding.shape == (600, 2) and proj.mu.shape == (600, 16) and len(proj.index) == 600
    assert np.array_equal(proj.labels, ds.test.labels.numpy()[proj.index])
    assert proj.prior.shape[1] == 2 and len(proj.prior) > 0 and np.isfinite(proj.embedding).all()
    q = proj.meta["quality"]
    assert 0.5 < q["knn_latent"] <= 1 and 0 < q["knn_map"] <= 1 and 0.5 < q["trustworthiness"] <= 1
    if method == "raw":
        assert np.allclose(proj.embedding, proj.mu[:, :2]) and q["trustworthiness"] < 1
    if method == "pca":  # the stored transform reproduces the embedding
        assert np.allclose(proj.project(proj.mu), proj.embedding, atol=1e-4)
    if method == "tsne":
        assert q["knn_map"] > 0.8


@pytest.mark.slow
def test_umap_with_inverse_grid(z16):
    p = ProjectionParams(method="umap", limit=400, n_prior=30, inverse_grid=5)
    proj = compute_projection(z16, load_dataset("mnist"), p)
    assert proj.embedding.shape == (400, 2) and proj.prior.shape == (30, 2)
    assert proj.grid_xy.shape == (25, 2) and proj.grid_codes.shape == (25, 16) and np.isfinite(proj.grid_codes).all()


def test_three_d_and_partial_layouts(z16):
    frames = []
    p = ProjectionParams(method="tsne", dims=3, limit=300, n_iter=50, early_iter=50, n_prior=20)
    proj = compute_projection(z16, load_dataset("mnist"), p, partial=frames.append)
    assert proj.embedding.shape == (300, 3) and frames and frames[-1].shape == (300, 3)


def test_cache_round_trip_and_keys(tmp_path):
    p = ProjectionParams(method="pca", limit=200)
    first, cached1 = get_or_compute(Z16, "mnist", p)
    again, cached2 = get_or_compute(Z16, "mnist", p)
    assert not cached1 and cached2 and np.array_equal(first.embedding, again.embedding)
    side = first.meta
    assert side["params"]["method"] == "pca" and side["dataset"] == "mnist"
    assert (
        cache_key("a", "mnist", p)
        != cache_key("b", "mnist", p)
        != cache_key("a", "mnist", ProjectionParams(method="pca", limit=201))
    )
    assert load_cached("nonexistent-key") is None


@pytest.mark.parametrize(
    "bad", [{"method": "lda"}, {"dims": 4}, {"method": "raw", "axes": (0,)}, {"limit": 3}, {"perplexity": 1.0}]
)
def test_params_validation(bad):
    with pytest.raises(ConfigError):
        ProjectionParams(**bad)


def test_cli_embed_cached_second_time(tmp_path):
    out = tmp_path / "e.npz"
    cmd = [sys.executable, "-m", "explorer", "embed", str(Z16), "--method", "pca", "--limit", "300", "--out", str(out)]
    first = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    second = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    assert first["cached"] is False and second["cached"] is True and second["seconds"] < first["seconds"]
    z = np.load(out)
    assert z["embedding"].shape == (300, 2) and z["labels"].shape == (300,)


def test_latent_map_figure_and_click_targets(z16):
    """Raw 2-D maps get a decoded manifold and a clickable lattice; other maps only their points."""
    from explorer.figures.mapview import DATA, GRID, decode_point, latent_map

    ds = load_dataset("mnist")
    z2 = load_checkpoint(shipped_dir() / "mnist-vae-mlp-z2.safetensors")[0]
    raw = compute_projection(z2, ds, ProjectionParams(method="raw", limit=300, n_prior=0))
    fig, targets = latent_map(z2, raw, ds.class_names, highlight=(3, 4))
    assert targets.shape == (400, 2) and len(fig.layout.images) == 1 and fig.layout.images[0].opacity > 0
    kinds = {decode_point({"customdata": int(t.customdata[0])})[0] for t in fig.data if t.customdata is not None}
    assert kinds == {DATA, GRID}
    assert sum(len(t.x) for t in fig.data if t.customdata is not None and t.name in ds.class_names) == 300
    assert fig.data[-2].name == "selected" and len(fig.data[-2].x) == 2  # the highlight sits under the targets
    hidden, _ = latent_map(z2, raw, ds.class_names, manifold=False)
    assert hidden.layout.images[0].opacity == 0  # still clickable, not drawn
    pca = compute_projection(z16, ds, ProjectionParams(method="pca", limit=300, n_prior=0))
    fig2, targets2 = latent_map(z16, pca, ds.class_names, color_by="kl")
    assert targets2 is None and not fig2.layout.images and len(fig2.data) == 1


def test_plane_is_raw_for_two_dims_and_pca_otherwise():
    from explorer.analysis.projection import plane

    rng = np.random.default_rng(0)
    two = rng.normal(size=(50, 2)).astype(np.float32)
    emb, project, how = plane(two)
    assert how == "raw 2-D latent" and emb is two and np.array_equal(project(two[:3]), two[:3])
    codes = rng.normal(size=(200, 6)).astype(np.float32) * np.array([5, 3, 1, 1, 1, 1], np.float32)
    emb, project, how = plane(codes)
    assert how == "PCA" and emb.shape == (200, 2) and np.allclose(project(codes), emb, atol=1e-4)
    assert emb[:, 0].var() > emb[:, 1].var() > 1.5  # the two widest directions, widest first


def test_projection_csv_has_a_row_per_point(z16):
    ds = load_dataset("mnist")
    proj = compute_projection(z16, ds, ProjectionParams(method="pca", limit=50, n_prior=0))
    lines = proj.to_csv(ds.class_names).decode().splitlines()
    assert lines[0] == "index,label,class,x0,x1" and len(lines) == 51
    first = lines[1].split(",")
    assert int(first[0]) == proj.index[0] and int(first[1]) == proj.labels[0]
    assert np.allclose([float(first[3]), float(first[4])], proj.embedding[0], atol=1e-4)
