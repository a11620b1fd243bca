"""Maps past DENSITY_POINTS are drawn as a density under a clickable sample; smaller ones point by point."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.analysis.projection import Projection
from explorer.figures import mapview
from explorer.figures.mapview import DATA, decode_point, map_figure

NAMES = tuple(str(c) for c in range(10))


def _proj(n: int, seed: int = 0) -> Projection:
    rng = np.random.default_rng(seed)
    z = np.zeros((n, 2), np.float32)
    return Projection(
        rng.normal(size=(n, 2)).astype(np.float32),
        rng.integers(0, 10, n),
        np.arange(n),
        z,
        z,
        rng.random(n).astype(np.float32),
        rng.random(n).astype(np.float32),
        np.zeros((0, 2), np.float32),
        meta={"params": {"method": "pca"}},
    )


@pytest.fixture
def small_threshold(monkeypatch):
    """The real threshold is 200k points; the behaviour is the same at 30k, and quicker to test."""
    monkeypatch.setattr(mapview, "DENSITY_POINTS", 30_000)
    monkeypatch.setattr(mapview, "DENSITY_SAMPLE", 5_000)


@pytest.mark.parametrize("color_by", ["class", "kl"])
def test_a_huge_map_is_a_density_under_a_clickable_sample(color_by, small_threshold, monkeypatch):
    proj = _proj(40_000)
    fig = map_figure(proj, NAMES, color_by)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    points = [t for t in fig.data if isinstance(t, go.Scattergl)]
    assert len(heat) == 1 and np.asarray(heat[0].z).sum() > 0
    rows = np.concatenate([np.asarray(t.customdata) for t in points])
    assert len(rows) == 5_000 and len(set(rows)) == 5_000
    kind, i = decode_point({"customdata": int(rows[0])})
    assert kind == DATA and points[0].x[0] == proj.embedding[i, 0]  # a click still names its row
    monkeypatch.setattr(mapview, "DENSITY_POINTS", 10**9)
    assert len(fig.to_json()) < len(map_figure(proj, NAMES, color_by).to_json()) / 3  # the same map, every point


def test_a_map_below_the_threshold_keeps_every_point(small_threshold):
    fig = map_figure(_proj(5000), NAMES)
    assert not [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert sum(len(t.x) for t in fig.data) == 5000
