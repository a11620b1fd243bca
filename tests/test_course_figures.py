"""The course's figures keep their labels clear of what they label, and every mark has a legend entry."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.course import demos
from explorer.figures import courseview as cv
from explorer.figures import reparamview as rv
from explorer.figures.anchorview import anchor_figure, class_map_figure
from tests.helpers import model_for


def _rects(fig):
    return [s for s in fig.layout.shapes if s.type == "rect"]


@pytest.mark.parametrize("kind", ["vae-mlp", "ae-mlp", "cvae-mlp", "vae-conv", "joint-vae"])
def test_architecture_labels_sit_clear_of_every_box(kind):
    blocks = demos.architecture(model_for(kind, {"latent_dim": 5}))
    fig = cv.architecture_figure(blocks)
    boxes = _rects(fig)
    assert len(boxes) == len(blocks)
    labels = [
        a for a in fig.layout.annotations if a.text and a.text.replace(",<br>", ", ") in {b.label for b in blocks}
    ]
    assert len(labels) == len(blocks)
    top, bottom = max(b.y1 for b in boxes), min(b.y0 for b in boxes)
    for a in labels:  # in the row above every box, or the row below
        assert (a.y > top and a.yanchor == "bottom") or (a.y < bottom and a.yanchor == "top"), a.text
    rows = {}
    for a in labels:
        rows.setdefault(a.y, []).append(a.x)
    for xs in rows.values():  # neighbours in a row are at least two columns apart (a column is 1.3 wide)
        assert np.diff(sorted(xs)).min(initial=np.inf) >= 1.3 - 1e-9
    lo, hi = fig.layout.yaxis.range
    assert lo < bottom and hi > top


def test_gradient_arrows_start_and_end_on_box_edges():
    fig = rv.gradient_diagram()
    boxes = _rects(fig)
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == 8 + 6  # the forward pass, and the gradient back along all but the input's and ε's edges

    def on_edge(x, y):
        for b in boxes:
            inside = b.x0 - 1e-6 <= x <= b.x1 + 1e-6 and b.y0 - 1e-6 <= y <= b.y1 + 1e-6
            edge = min(abs(x - b.x0), abs(x - b.x1), abs(y - b.y0), abs(y - b.y1)) < 1e-6
            if inside and edge:
                return True
        return False

    for a in arrows:
        assert on_edge(a.x, a.y) and on_edge(a.ax, a.ay), (a.x, a.y, a.ax, a.ay)
    assert sum(a.arrowcolor == "#dc2626" for a in arrows) == 6


def test_reparam_cloud_zooms_in_on_the_draws(small):
    rep = demos.reparameterise(model_for("vae-mlp", {"latent_dim": 2}, seed=0), small[0].images[0], seed=1)
    fig = rv.reparam_cloud(rep, np.random.default_rng(0).normal(size=(100, 2)) * 3)
    (x0, x1), (y0, y1) = fig.layout.xaxis2.range, fig.layout.yaxis2.range
    c = rep.cloud.numpy()
    inside = (c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1)
    assert inside.mean() > 0.95
    assert (x1 - x0) == pytest.approx(8 * float(rep.sigma.max()), rel=1e-5)
    zoomed = [t for t in fig.data if t.xaxis == "x2"]
    assert {t.name for t in zoomed} == {"200 draws of q(z|x)", "μ", "this z"}


def test_path_figure_gives_every_line_and_the_reference_a_legend_entry():
    elbo = {"linear": np.arange(5.0), "slerp": np.arange(5.0) + 1}
    logp = {"linear": -np.arange(5.0), "slerp": -np.arange(5.0) - 1}
    fig = cv.path_figure(elbo, logp, 3.5, (-6.0, -1.0))
    assert all(t.showlegend is not False for t in fig.data)
    names = {t.name for t in fig.data}
    assert {"log p(z), linear", "log p(z), slerp", "−ELBO, linear", "−ELBO, slerp", "95% of prior samples"} <= names
    ref = next(t for t in fig.data if "median" in t.name)
    assert set(ref.y) == {3.5} and tuple(ref.x) == (0, 4)
    assert not [a for a in fig.layout.annotations if a.text not in ("−ELBO of decode(z)", "log p(z) under N(0, I)")]


def test_target_names_are_drawn_above_their_stars():
    mu, t = np.random.default_rng(0).normal(size=(30, 2)), np.array([[-1.0, -1.0], [1.0, 1.0]])
    for fig in (
        anchor_figure(mu, np.random.default_rng(1).random((30, 2)), t, ["donut", "stick"]),
        class_map_figure(mu, np.arange(30) % 10, t, ["donut", "stick"], "", tuple("0123456789")),
    ):
        names = {a.text: a for a in fig.layout.annotations}
        for (x, y), name in zip(t, ("donut", "stick")):
            assert names[name].x == x and names[name].y == y and names[name].yshift >= 15
        assert not any(getattr(tr, "text", None) for tr in fig.data)


def test_confusion_axes_are_the_class_names():
    rng = np.random.default_rng(0)
    cl = demos.kmeans_clusters(rng.normal(size=(100, 2)), np.arange(100) % 3, k=3)
    fig = cv.confusion_figure(cl, ("a", "b", "c"))
    assert fig.layout.xaxis.type == "category" and fig.layout.xaxis.title.text
    assert list(fig.data[0].x) == ["a", "b", "c"]
    names = cv.cluster_names(cl, ("a", "b", "c"))  # the map's legend names each cluster as the matrix's rows do
    assert sorted(fig.data[0].y) == sorted(names)
    assert all(n.endswith(f"({'abc'[c]})") for n, c in zip(names, cl.cluster_class))


def test_class_scatter_and_shared_map_draw_every_point_once():
    from explorer.figures.mapview import class_scatter, shared_map_figure

    emb, labels = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 4
    fig = class_scatter(emb, labels, ("a", "b", "c", "d"))
    assert sum(len(t.x) for t in fig.data) == 40 and [t.name for t in fig.data] == ["a", "b", "c", "d"]
    both = shared_map_figure(("m", "f"), (emb, emb + 1), (labels, labels), (("a",) * 4, ("b",) * 4))
    assert sum(len(t.x) for t in both.data) == 80
    assert {t.marker.symbol for t in both.data} == {"circle", "x"}


def test_kl_bars_sorted_split_at_threshold_with_titled_log_axis():
    from explorer.figures.viz import kl_bars_figure

    kl = np.array([0.002, 1.5, 0.0, 0.2, 0.011, 0.009])
    fig = kl_bars_figure(kl, 0.01)
    active, inactive, line = fig.data
    assert list(line.y) == [0.01, 0.01] and line.x[0] == "z1" and line.x[-1] == "z2"
    assert list(active.x) == ["z1", "z3", "z4"] and list(inactive.x) == ["z5", "z0", "z2"]
    assert list(fig.layout.xaxis.categoryarray) == ["z1", "z3", "z4", "z5", "z0", "z2"]
    assert min(inactive.y) > 0  # a zero KL still shows on the log axis
    assert fig.layout.yaxis.type == "log" and "nats" in fig.layout.yaxis.title.text
