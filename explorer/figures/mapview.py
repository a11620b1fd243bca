"""Plotly figures for the latent map: scatter by class or score, prior overlay, manifold, click targets.

Every trace carries a scalar ``customdata = kind * STRIDE + i`` (``decode_point`` undoes it):
kind 0 is row i of the projection, 1 is point i of the click-target grid, 2 is prior sample i.
"""

from __future__ import annotations

import base64
import functools

import numpy as np
import plotly.graph_objects as go
import torch
from _plotly_utils.utils import convert_to_base64  # plotly >= 6: what Figure.to_dict() applies to arrays

from explorer.analysis.projection import Projection, plane
from explorer.analysis.traverse import decode_codes
from explorer.figures.viz import image_grid, png_bytes
from explorer.models import BaseVAE

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
DATA, GRID, PRIOR = 0, 1, 2
STRIDE = 10_000_000
# Above this many points a 2-D map is drawn as a density (a plotly Heatmap of log counts) under a
# clickable sample of DENSITY_SAMPLE points. Measured: a 70k-point map is 3.4 MB of figure JSON
# that WebGL draws fine, so up to here every point is sent; beyond, the payload (which travels on
# each rerun) and the browser's memory grow with N while the picture stops changing. datashader
# would draw the same density on the server but adds a dependency (and numba/dask pins) for what
# a 128x128 histogram already shows; the heatmap needs nothing new.
DENSITY_POINTS = 200_000
DENSITY_SAMPLE = 20_000
DENSITY_BINS = 128


def tag(kind: int, rows: np.ndarray) -> np.ndarray:
    """customdata for points ``rows`` of a kind."""
    return kind * STRIDE + np.asarray(rows, dtype=np.int64)


def decode_point(point: dict) -> tuple[int, int] | None:
    """(kind, i) of a selected point from Streamlit's selection event, or None."""
    cd = point.get("customdata")
    if isinstance(cd, list | tuple):
        cd = cd[0] if cd else None
    if cd is None:
        return None
    kind, i = divmod(int(cd), STRIDE)
    return kind, i


def class_color(c: int) -> str:
    return PALETTE[c % len(PALETTE)]


def map_figure(
    proj: Projection,
    class_names: tuple[str, ...],
    color_by: str = "class",
    show_prior: bool = False,
    highlight: list[int] | None = None,
    height: int = 620,
) -> go.Figure:
    """The scatter (WebGL in 2-D). ``color_by``: class, recon or kl."""
    emb = proj.embedding
    three_d = emb.shape[1] == 3
    fig = go.Figure()
    scatter = go.Scatter3d if three_d else go.Scattergl

    def xyz(points: np.ndarray) -> dict:
        d = {"x": points[:, 0], "y": points[:, 1]}
        if three_d:
            d["z"] = points[:, 2]
        return d

    marker_size = 3 if three_d else (5 if len(emb) <= 5000 else 3)
    hover = "%{text}<extra></extra>"
    keep = np.ones(len(emb), bool)  # (N,) the points drawn one by one
    if not three_d and len(emb) > DENSITY_POINTS:
        counts, xe, ye = np.histogram2d(emb[:, 0], emb[:, 1], bins=DENSITY_BINS)
        fig.add_trace(
            go.Heatmap(
                z=np.log1p(counts.T).astype(np.float32),
                x=(xe[:-1] + xe[1:]) / 2,
                y=(ye[:-1] + ye[1:]) / 2,
                colorscale="Greys",
                showscale=False,
                hoverinfo="skip",
                name="density",
            )
        )
        keep[:] = False
        keep[np.random.default_rng(0).choice(len(emb), DENSITY_SAMPLE, replace=False)] = True
    if color_by == "class":
        for c in np.unique(proj.labels):
            rows = np.flatnonzero((proj.labels == c) & keep)
            name = class_names[c] if c < len(class_names) else str(c)
            fig.add_trace(
                scatter(
                    **xyz(emb[rows]),
                    mode="markers",
                    name=name,
                    marker={"size": marker_size, "color": class_color(int(c))},
                    customdata=tag(DATA, rows),
                    hovertemplate=hover,
                    text=[f"{name} · index {proj.index[r]}" for r in rows],
                )
            )
    else:
        values = proj.recon if color_by == "recon" else proj.kl
        label = "reconstruction error (nats)" if color_by == "recon" else "KL (nats)"
        rows = np.flatnonzero(keep)
        fig.add_trace(
            scatter(
                **xyz(emb[rows]),
                mode="markers",
                name=label,
                showlegend=False,
                marker={
                    "size": marker_size,
                    "color": values[rows],
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {"title": {"text": label, "side": "right"}},
                },
                customdata=tag(DATA, rows),
                hovertemplate=hover,
                text=[
                    f"{class_names[proj.labels[r]] if proj.labels[r] < len(class_names) else proj.labels[r]}"
                    f" · index {proj.index[r]} · {values[r]:.1f}"
                    for r in rows
                ],
            )
        )
    if show_prior and len(proj.prior):
        n = len(proj.prior)
        # WebGL draws an open symbol's stroke in marker.color (not line.color): a transparent colour drew
        # nothing in 2-D. A solid black "x" shows in both renderers.
        marker = (
            {"size": marker_size + 2, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 1}}
            if three_d
            else {"size": marker_size, "color": "rgba(0,0,0,0.8)", "symbol": "x"}
        )
        fig.add_trace(
            scatter(
                **xyz(proj.prior),
                mode="markers",
                name="prior samples",
                marker=marker,
                customdata=tag(PRIOR, np.arange(n)),
                hovertemplate="prior sample<extra></extra>",
            )
        )
    if highlight:
        fig.add_trace(
            scatter(
                **xyz(emb[highlight]),
                mode="markers",
                name="selected",
                showlegend=False,
                marker={"size": 14, "color": "rgba(0,0,0,0)", "line": {"color": "black", "width": 2}},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"itemsizing": "constant"},
        uirevision="latent-map",
        plot_bgcolor="white",
    )
    if not three_d:
        fig.update_xaxes(showgrid=True, gridcolor="#eee", zeroline=True, zerolinecolor="#ccc")
        fig.update_yaxes(showgrid=True, gridcolor="#eee", zeroline=True, zerolinecolor="#ccc", scaleanchor=None)
    return fig


def plane_grid(proj: Projection, side: int = 20, margin: float = 0.05) -> np.ndarray:
    """A side x side lattice over the map's bounding box. -> (side*side, 2), row-major from the top-left."""
    lo, hi = proj.embedding[:, :2].min(0), proj.embedding[:, :2].max(0)
    pad = (hi - lo) * margin
    lo, hi = lo - pad, hi + pad
    xs = np.linspace(lo[0], hi[0], side)
    ys = np.linspace(hi[1], lo[1], side)  # top row first, like an image
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def add_click_targets(fig: go.Figure, xy: np.ndarray, label: str) -> None:
    """Nearly invisible points that make empty spots of the map clickable."""
    n = len(xy)
    fig.add_trace(
        go.Scattergl(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="markers",
            name=label,
            showlegend=False,  # WebGL like the data,
            marker={"size": 10, "color": "rgba(120,120,120,0.04)"},  # so the nearest point wins
            customdata=tag(GRID, np.arange(n)),
            hovertemplate=f"{label}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        )
    )


@torch.no_grad()
def add_manifold(
    fig: go.Figure, model: BaseVAE, proj: Projection, side: int = 20, y: int | None = None, opacity: float = 0.45
) -> np.ndarray:
    """Decode a lattice over the visible 2-D latent plane and draw it behind the scatter; returns the lattice."""
    grid = plane_grid(proj, side)
    images = decode_codes(model, torch.from_numpy(grid), y)  # (side*side, C, H, W)
    picture = image_grid(1 - images, nrow=side, pad=0)  # dark strokes on white read best behind coloured points
    uri = "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode()
    (x0, y0), (x1, y1) = grid[0], grid[-1]  # top-left and bottom-right cell centres
    dx, dy = (x1 - x0) / (side - 1) / 2, (y0 - y1) / (side - 1) / 2
    fig.add_layout_image(
        source=uri,
        xref="x",
        yref="y",
        x=x0 - dx,
        y=y0 + dy,
        sizex=x1 - x0 + 2 * dx,
        sizey=y0 - y1 + 2 * dy,
        sizing="stretch",
        layer="below",
        opacity=opacity,
    )
    return grid


def latent_map(
    model: BaseVAE,
    proj: Projection,
    class_names: tuple[str, ...],
    color_by: str = "class",
    show_prior: bool = False,
    highlight: tuple[int, ...] = (),
    manifold: bool = True,
) -> tuple[go.Figure, np.ndarray | None]:
    """The /latent-map figure with what makes empty spots clickable, and those spots' coordinates.

    Raw 2-D maps get the decoded manifold behind the points (drawn, or invisible if not
    ``manifold``); UMAP maps get their inverse-transform lattice; other maps have no targets.
    """
    fig = map_figure(proj, class_names, color_by, show_prior, highlight=list(highlight) or None)
    targets = None
    if proj.embedding.shape[1] == 2 and proj.meta["params"]["method"] == "raw" and model.latent_dim == 2:
        targets = add_manifold(fig, model, proj, side=20, opacity=0.45 if manifold else 0.0)
        add_click_targets(fig, targets, "decode this point")
    elif proj.embedding.shape[1] == 2 and len(proj.grid_xy):
        targets = proj.grid_xy
        add_click_targets(fig, targets, "decode UMAP's inverse here (approximate)")
    return fig, targets


class FrozenFigure(go.Figure):
    """A finished figure kept as plotly's JSON dict, for ``st.plotly_chart`` on every rerun.

    ``st.plotly_chart`` calls ``to_dict()`` on each run, which deep-copies every trace and
    base64-encodes its arrays again (11 ms of the server's interpreter for a 10k-point map, 65%
    of the chart's cost). This serves the dict made once; the copy it hands out is shallow, so
    a figure shared by every session stays as it was. It is made from a figure (its ``to_dict()``)
    or from that dict itself (``code_figure``, built on every map click, then builds no plotly
    object at all: plotly's own ``__init__``, ~2 ms, is skipped). Only its JSON is kept: ``data`` is
    empty, and it cannot be changed.
    """

    def __init__(self, fig: go.Figure | dict) -> None:  # plotly's __init__ is not called: nothing of it is used
        self._wire = fig if isinstance(fig, dict) else fig.to_dict()

    @property
    def data(self) -> tuple:
        return ()

    def to_dict(self) -> dict:
        return {**self._wire, "data": [dict(t) for t in self._wire["data"]]}

    to_plotly_json = to_dict


@functools.cache
def _template() -> dict:
    """The layout template plotly writes into every figure's JSON (the default one, as a dict)."""
    return go.Figure().to_dict()["layout"]["template"]


def nearest(mu: np.ndarray, i: int, k: int = 8) -> np.ndarray:
    """Rows of the k nearest codes to row i (Euclidean, excluding i)."""
    d = np.linalg.norm(mu - mu[i], axis=1)
    d[i] = np.inf
    return np.argsort(d)[:k]


def code_figure(mu: np.ndarray, logvar: np.ndarray, order: list[int] | None = None) -> FrozenFigure:
    """One sample's mu per dimension with +-sigma bars.

    Built on every map click, so it is written as plotly's JSON dict directly: validating our own
    arrays and building plotly's objects cost 4.3 ms of the shared server per click. The JSON is the
    one the validated figure gives.
    """
    order = order if order is not None else list(range(len(mu)))
    sigma = np.exp(0.5 * logvar)
    bar = {
        "type": "bar",
        "x": [f"z{d}" for d in order],
        "y": mu[order],
        "error_y": {"type": "data", "array": sigma[order]},
        "marker": {"color": "#4f46e5"},
        "hovertemplate": "%{x}: μ=%{y:.2f}<extra></extra>",
    }
    layout = {
        "height": 220,
        "margin": {"l": 10, "r": 10, "t": 25, "b": 10},
        "title": {"text": "μ ± σ per dimension", "font": {"size": 13}},
        "template": _template(),
    }
    wire = {"data": [bar], "layout": layout}
    convert_to_base64(wire)  # numpy arrays as plotly's typed-array specs, as its own to_dict() writes them
    return FrozenFigure(wire)


def add_points(
    fig: go.Figure, xy: np.ndarray, name: str, color: str, size: int = 4, marker: dict | None = None, **trace
) -> None:
    """One WebGL marker trace of 2-D points ``xy`` (N, 2); ``marker`` adds marker fields, ``trace`` trace fields."""
    m = {"size": size, "color": color, **(marker or {})}
    fig.add_scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", name=name, marker=m, **trace)


def class_scatter(
    emb: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], title: str = "", height: int = 420, size: int = 4
) -> go.Figure:
    """A plain 2-D scatter of points coloured by class."""
    fig = go.Figure()
    for c in np.unique(labels):
        name = class_names[c] if c < len(class_names) else str(c)
        add_points(fig, emb[labels == c], name, class_color(int(c)), size)
    fig.update_layout(
        height=height,
        title=title,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        plot_bgcolor="white",
        legend={"itemsizing": "constant"},
    )
    return fig


def shared_map_figure(
    modalities: tuple[str, str],
    codes: tuple[np.ndarray, np.ndarray],
    labels: tuple[np.ndarray, np.ndarray],
    class_names: tuple[tuple[str, ...], tuple[str, ...]],
    height: int = 560,
) -> go.Figure:
    """Both modalities' codes in one 2-D view (raw, or a PCA fitted on both), coloured by class, marked by modality."""
    _, project, how = plane(np.concatenate(codes))
    fig = go.Figure()
    for mod, c, lab, names, symbol in zip(modalities, codes, labels, class_names, ("circle", "x")):
        xy = project(c)  # (N, 2)
        for k in np.unique(lab):
            add_points(
                fig,
                xy[lab == k],
                f"{mod} · {names[k]}",
                class_color(int(k)),
                5,
                {"symbol": symbol, "opacity": 0.7},
                legendgroup=mod,
            )
    what = "PCA of both modalities' codes" if how == "PCA" else how
    fig.update_layout(
        height=height,
        title=f"Both modalities, one space ({what}); ● {modalities[0]}, × {modalities[1]}",
        plot_bgcolor="white",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig
