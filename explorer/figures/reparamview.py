"""Plotly figures for the course's reparameterisation step: μ ± σ and the draw, the cloud of q(z|x), the gradient's path."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.course.demos import Reparam
from explorer.figures.courseview import MARGIN, arrow
from explorer.figures.mapview import add_points

ARROW = "#6b7280"  # the forward pass's arrows; the gradient's are red


def reparam_bars(rep: Reparam, order: list[int] | None = None, limit: int = 16) -> go.Figure:
    """μ ± σ per dimension, with the sampled z = μ + σ⊙ε as a red mark."""
    order = (order if order is not None else list(range(len(rep.mu))))[:limit]
    names = [f"z{d}" for d in order]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=rep.mu[order].numpy(),
            error_y={"type": "data", "array": rep.sigma[order].numpy()},
            marker_color="#4f46e5",
            name="μ ± σ",
        )
    )
    fig.add_scatter(
        x=names,
        y=rep.z[order].numpy(),
        mode="markers",
        name="z = μ + σ⊙ε",
        marker={"color": "#dc2626", "size": 10, "symbol": "diamond"},
    )
    fig.update_layout(
        height=300, title="μ ± σ per dimension and the drawn z", margin=MARGIN, legend={"orientation": "h", "y": -0.15}
    )
    return fig


def reparam_cloud(rep: Reparam, background: np.ndarray | None = None) -> go.Figure:
    """A z=2 model: the draws of q(z|x) as a cloud around μ, over the test codes in grey (left) and zoomed in to
    μ ± 4σ (right), where a cloud a few pixels wide on the map shows its shape."""
    fig = make_subplots(1, 2, column_widths=[0.6, 0.4], subplot_titles=("on the map of test codes", "zoom: μ ± 4σ"))
    mu, z, cloud = rep.mu.numpy()[:2], rep.z.numpy()[:2], rep.cloud.numpy()[:, :2]
    if background is not None:
        add_points(fig, background, "test codes μ(x)", "#d1d5db", 3, row=1, col=1)
    marks = (
        (cloud, f"{len(cloud)} draws of q(z|x)", "rgba(79,70,229,0.55)", 5, {}),
        (mu[None], "μ", "black", 12, {"symbol": "cross-thin", "line": {"width": 2, "color": "black"}}),
        (z[None], "this z", "#dc2626", 11, {"symbol": "diamond"}),
    )
    for col in (1, 2):
        for xy, name, color, size, marker in marks:
            add_points(fig, xy, name, color, size, marker, legendgroup=name, showlegend=col == 1, row=1, col=col)
    half = 4 * max(float(rep.sigma[:2].max()), 1e-3)
    fig.add_shape(
        type="rect",
        x0=mu[0] - half,
        x1=mu[0] + half,
        y0=mu[1] - half,
        y1=mu[1] + half,
        line={"color": "#6b7280", "dash": "dot"},
        row=1,
        col=1,
    )
    fig.update_xaxes(title_text="z0")
    fig.update_yaxes(title_text="z1", row=1, col=1)
    fig.update_xaxes(range=[mu[0] - half, mu[0] + half], row=1, col=2)
    fig.update_yaxes(range=[mu[1] - half, mu[1] + half], row=1, col=2)
    fig.update_layout(
        height=400,
        title="q(z|x) = N(μ, σ²): the cloud z is drawn from",
        margin={**MARGIN, "t": 70},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def gradient_diagram(rep: Reparam | None = None) -> go.Figure:
    """Why the gradient reaches the encoder: z = μ + σ⊙ε puts the randomness in ε, off the gradient's path.

    Drawn top to bottom so that it reads in a narrow column; every box is as wide as its text.
    """
    nodes = {  # name: (x, y, half width)
        "x": (0.0, 5.0, 0.35),
        "encoder": (0.0, 4.0, 0.75),
        "μ": (-0.8, 3.0, 0.35),
        "σ": (0.8, 3.0, 0.35),
        "z = μ + σ⊙ε": (0.0, 2.0, 1.0),
        "ε ~ N(0, I)": (2.3, 2.0, 0.9),
        "decoder": (0.0, 1.0, 0.75),
        "loss": (0.0, 0.0, 0.5),
    }
    half_h = 0.3
    forward = [
        ("x", "encoder"),
        ("encoder", "μ"),
        ("encoder", "σ"),
        ("μ", "z = μ + σ⊙ε"),
        ("σ", "z = μ + σ⊙ε"),
        ("ε ~ N(0, I)", "z = μ + σ⊙ε"),
        ("z = μ + σ⊙ε", "decoder"),
        ("decoder", "loss"),
    ]
    fig = go.Figure()
    for a, b in forward:
        arrow(fig, *_between(nodes[a], nodes[b], half_h, 0.0), ARROW)
        if not a.startswith(("ε", "x")):  # the gradient goes back along every edge but ε's and the input's
            arrow(fig, *_between(nodes[b], nodes[a], half_h, 0.25), "#dc2626", 2)
    for name, (x, y, w) in nodes.items():
        rand = name.startswith("ε")
        fig.add_shape(
            type="rect",
            x0=x - w,
            x1=x + w,
            y0=y - half_h,
            y1=y + half_h,
            fillcolor="#f3f4f6" if rand else "#eef2ff",
            line={"color": "#9ca3af" if rand else "#4f46e5", "dash": "dot" if rand else "solid"},
        )
        fig.add_annotation(x=x, y=y, text=name, showarrow=False, font={"size": 14})
    note = "red: ∂loss flows back<br>through z to μ and σ;<br>ε is an input and<br>gets no gradient"
    if rep is not None:
        note += f"<br><br>this image:<br>|∂L/∂μ| = {float(rep.grad_mu.norm()):.1f}<br>|∂L/∂σ| = {float(rep.grad_sigma.norm()):.1f}"
    fig.add_annotation(
        x=1.35,
        y=5.3,
        text=note,
        showarrow=False,
        align="left",
        xanchor="left",
        yanchor="top",
        font={"size": 12, "color": "#991b1b"},
    )
    fig.update_xaxes(visible=False, range=[-1.3, 3.4], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.5, 5.5], fixedrange=True)
    fig.update_layout(height=400, margin={"l": 5, "r": 5, "t": 10, "b": 5}, plot_bgcolor="white", showlegend=False)
    return fig


def _between(
    a: tuple[float, float, float], b: tuple[float, float, float], half_h: float, offset: float
) -> tuple[np.ndarray, np.ndarray]:
    """(tail, head) of an arrow from box a to box b (x, y, half width), moved ``offset`` to the arrow's left."""
    pa, pb = np.array(a[:2]), np.array(b[:2])
    d = pb - pa
    side = np.array([-d[1], d[0]]) / np.linalg.norm(d) * offset
    return _leave(pa + side, pb + side, pa, (a[2], half_h)), _leave(pb + side, pa + side, pb, (b[2], half_h))


def _leave(p: np.ndarray, q: np.ndarray, centre: np.ndarray, half: tuple[float, float]) -> np.ndarray:
    """Where the segment p -> q (p inside the box) leaves the box of half sizes ``half`` around ``centre``."""
    d = q - p
    t = min(((centre[i] + np.sign(d[i]) * half[i]) - p[i]) / d[i] for i in range(2) if d[i])
    return p + d * t
