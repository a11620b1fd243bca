"""Figures for anchored models: which region each anchor claims, scores, targets, comparisons."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.analysis.anchors import scores_of
from explorer.analysis.traverse import decode_codes
from explorer.figures.mapview import add_points, class_scatter
from explorer.models import BaseVAE

ANCHOR_RGB = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189)]  # anchor k: region, star and score colour
REGION_COLORS = [f"rgba({r},{g},{b},0.18)" for r, g, b in ANCHOR_RGB]


def anchor_color(k: int) -> str:
    r, g, b = ANCHOR_RGB[k % len(ANCHOR_RGB)]
    return f"rgb({r},{g},{b})"


@torch.no_grad()
def claimed_regions(
    model: BaseVAE, protos: torch.Tensor, extent: float = 4.0, side: int = 41, kind: str = "overlap"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a lattice over [-extent, extent]^2 (a 2-D latent) and score each decoded image.

    Returns the axis values (side,), the winning anchor per cell (side, side) and the scores (side, side, K).
    """
    axis = np.linspace(-extent, extent, side, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis)  # row = y, col = x
    z = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    scores = scores_of(decode_codes(model, z), protos, kind).numpy().reshape(side, side, -1)
    return axis, scores.argmax(-1), scores


def decoded_plane(model: BaseVAE, extent: float = 4.0, side: int = 15) -> torch.Tensor:
    """Decode a side x side lattice over a 2-D latent, top-left (-extent, +extent) first. -> (side*side, C, H, W)"""
    axis = torch.linspace(-extent, extent, side)
    gy, gx = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # rows go down in y, like an image
    return decode_codes(model, torch.stack([gx.ravel(), gy.ravel()], 1))


def add_target(fig: go.Figure, xy: np.ndarray, name: str, color: str, legend: str, **trace) -> None:
    """An anchor target (2,) as a star, its name in a white box above it (a trace's text would sit under the star)."""
    x, y = float(xy[0]), float(xy[1])
    star = {"symbol": "star", "size": 18, "color": color, "line": {"color": "black", "width": 1}}
    fig.add_scatter(x=[x], y=[y], mode="markers", name=legend, marker=star, **trace)
    fig.add_annotation(
        x=x, y=y, text=name, showarrow=False, yshift=20, font={"size": 14}, bgcolor="rgba(255,255,255,0.85)"
    )


def anchor_figure(
    mu2: np.ndarray,
    data_scores: np.ndarray,
    targets2: np.ndarray,
    names: list[str],
    regions: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    title: str = "",
    height: int = 480,
) -> go.Figure:
    """Codes coloured by their anchor score (first minus second of two anchors, the score of one, or, with three
    or more, the anchor each image is most like), targets as stars,
    and, when given, the region each anchor claims as a tinted background."""
    fig = go.Figure()
    if regions is not None:
        axis, win, _ = regions
        k = len(names)
        scale = (
            [[i / max(1, k - 1), REGION_COLORS[i % len(REGION_COLORS)]] for i in range(k)]
            if k > 1
            else [[0, REGION_COLORS[0]], [1, REGION_COLORS[0]]]
        )
        fig.add_heatmap(
            x=axis, y=axis, z=win, colorscale=scale, showscale=False, hoverinfo="skip", zmin=0, zmax=max(1, k - 1)
        )
    if data_scores.shape[1] >= 3:  # no single difference means anything: colour by the anchor that wins
        win = data_scores.argmax(1)
        for i, name in enumerate(names):
            label = f"most like {name}"
            add_points(
                fig, mu2[win == i], label, anchor_color(i), 4, {"opacity": 0.6}, hovertemplate=f"{label}<extra></extra>"
            )
    else:
        if data_scores.shape[1] == 2:
            color, label = data_scores[:, 0] - data_scores[:, 1], f"{names[0]} − {names[1]} score"
        else:
            color, label = data_scores[:, 0], f"{names[0]} score"
        fig.add_scattergl(
            x=mu2[:, 0],
            y=mu2[:, 1],
            mode="markers",
            name="test images",
            showlegend=False,
            marker={
                "size": 4,
                "color": color,
                "colorscale": "RdBu_r",
                "cmid": 0,
                "showscale": True,
                "colorbar": {"title": {"text": label, "side": "right"}},
            },
            hovertemplate="score %{marker.color:.3f}<extra></extra>",
        )
    for i, name in enumerate(names):
        add_target(fig, targets2[i], name, anchor_color(i), f"target: {name}")
    fig.update_layout(
        height=height,
        title=title,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.08},
        plot_bgcolor="white",
    )
    return fig


def class_map_figure(
    mu2: np.ndarray,
    labels: np.ndarray,
    targets2: np.ndarray,
    names: list[str],
    title: str,
    class_names: tuple[str, ...],
    height: int = 420,
) -> go.Figure:
    """Codes coloured by class with the anchor targets: for setting anchored against plain."""
    fig = class_scatter(mu2, labels, class_names, title, height)
    for i, name in enumerate(names):
        add_target(fig, targets2[i], name, "gold", "anchor targets", showlegend=i == 0, legendgroup="targets")
    return fig


def distance_figure(names: list[str], anchored: list[float], plain: list[float] | None) -> go.Figure:
    """Mean distance of each anchor's top-scored images to its target, with and without anchors."""
    fig = go.Figure()
    fig.add_bar(x=names, y=anchored, name="anchored model", marker_color="#4f46e5")
    if plain is not None:
        fig.add_bar(x=names, y=plain, name="same model without anchors", marker_color="#9ca3af")
    fig.update_layout(
        height=300,
        barmode="group",
        yaxis_title="mean distance to target",
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig
