"""Plotly figures for the course: architecture, reparameterisation, clustering, latent sizes, paths, priors."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.course.demos import Block, Clustering, Reparam
from explorer.figures.mapview import add_points

PART_COLOURS = {
    "input": "#e5e7eb",
    "encoder": "#bfdbfe",
    "posterior": "#fde68a",
    "latent": "#fca5a5",
    "decoder": "#bbf7d0",
    "output": "#e5e7eb",
}
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


ARROW = "#6b7280"


def _size(size: str) -> int:
    """Number of units in a block's size, e.g. "32×14×14" -> 6272."""
    return int(np.prod([int(v) for v in size.split("×")]))


def _label(text: str) -> str:
    """A block's label, broken at its commas so that it stays narrower than two columns."""
    return text.replace(", ", ",<br>")


def _arrow(
    fig: go.Figure, tail: tuple[float, float], head: tuple[float, float], color: str, width: float = 1.2
) -> None:
    fig.add_annotation(
        x=head[0],
        y=head[1],
        ax=tail[0],
        ay=tail[1],
        xref="x",
        yref="y",
        axref="x",
        ayref="y",
        text="",
        showarrow=True,
        arrowhead=2,
        arrowcolor=color,
        arrowwidth=width,
    )


def architecture_figure(blocks: list[Block], title: str = "") -> go.Figure:
    """Boxes left to right, their height growing with the layer size (log scale); μ and log σ² stacked.

    Labels sit in two rows clear of every box, above and below by turns, so no label covers a box or its neighbour's.
    """
    cols: list[list[int]] = []  # block indices per column: the two posterior blocks share one
    for k, b in enumerate(blocks):
        if b.part == "posterior" and cols and len(cols[-1]) == 1 and blocks[cols[-1][0]].part == "posterior":
            cols[-1].append(k)
        else:
            cols.append([k])
    top = np.log2(max(_size(b.size) for b in blocks) + 1)
    boxes = []  # (column, block, y centre, half height)
    for c, group in enumerate(cols):
        for j, k in enumerate(group):
            h = 0.25 + 0.75 * np.log2(_size(blocks[k].size) + 1) / top
            boxes.append((c, k, 0.0, h) if len(group) == 1 else (c, k, 0.55 if j == 0 else -0.55, min(h, 0.45)))
    hi = max(yc + h for _, _, yc, h in boxes) + 0.1
    lines = max(_label(b.label).count("<br>") + 1 for b in blocks)
    fig = go.Figure()
    step = 1.3
    for c, k, yc, h in boxes:
        x, b = c * step, blocks[k]
        fig.add_shape(
            type="rect",
            x0=x,
            x1=x + 0.8,
            y0=yc - h,
            y1=yc + h,
            line={"color": "#374151", "width": 1},
            fillcolor=PART_COLOURS[b.part],
        )
        fig.add_annotation(x=x + 0.4, y=yc, text=b.size, showarrow=False, font={"size": 12})
        above = yc > 0 if len(cols[c]) > 1 else c % 2 == 0
        fig.add_annotation(
            x=x + 0.4,
            y=hi if above else -hi,
            text=_label(b.label),
            showarrow=False,
            font={"size": 12},
            yanchor="bottom" if above else "top",
        )
        if c and k == cols[c][0]:
            _arrow(fig, ((c - 1) * step + 0.8, 0), (x, 0), "#374151")
    pad = hi + 0.3 * lines + 0.1
    fig.update_xaxes(visible=False, range=[-0.4, len(cols) * step - 0.1])
    fig.update_yaxes(visible=False, range=[-pad, pad], fixedrange=True)
    fig.update_layout(
        height=200 + 40 * lines,
        title=title or "Architecture (box height ∝ log layer size)",
        margin=MARGIN,
        plot_bgcolor="white",
        showlegend=False,
    )
    return fig


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
        _arrow(fig, *_between(nodes[a], nodes[b], half_h, 0.0), ARROW)
        if not a.startswith(("ε", "x")):  # the gradient goes back along every edge but ε's and the input's
            _arrow(fig, *_between(nodes[b], nodes[a], half_h, 0.25), "#dc2626", 2)
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


def cluster_names(cl: Clustering, class_names: tuple[str, ...]) -> tuple[str, ...]:
    """Each k-means cluster's name with its majority class, e.g. "cluster 3 (7)": the map's legend, the matrix's rows."""
    name = [class_names[c] if c < len(class_names) else str(c) for c in range(cl.confusion.shape[1])]
    return tuple(f"cluster {k} ({name[c]})" for k, c in enumerate(cl.cluster_class))


def confusion_figure(cl: Clustering, class_names: tuple[str, ...]) -> go.Figure:
    """Counts of each class (columns) in each k-means cluster (rows), clusters sorted by their majority class."""
    order = np.argsort(cl.cluster_class, kind="stable")
    conf = cl.confusion[order]
    cols = [class_names[c] if c < len(class_names) else str(c) for c in range(conf.shape[1])]
    names = cluster_names(cl, class_names)
    rows = [names[k] for k in order]
    fig = go.Figure(
        go.Heatmap(
            z=conf,
            x=cols,
            y=rows,
            colorscale="Blues",
            text=conf,
            texttemplate="%{text}",
            hovertemplate="%{y} · %{x}: %{z}<extra></extra>",
            showscale=False,
        )
    )
    fig.update_layout(
        height=420,
        title=f"k-means clusters × classes · ARI {cl.ari:.2f} · NMI {cl.nmi:.2f}",
        margin=MARGIN,
        xaxis={"type": "category", "title": "true class"},
        yaxis={"autorange": "reversed", "type": "category", "title": "cluster (its majority class)"},
    )
    return fig


def sweep_figure(rows: list[dict], ae_rows: list[dict] | None = None) -> go.Figure:
    """Reconstruction, KL, -ELBO and active dimensions against the latent size (log axes), the AE as stars.

    The title says what was measured (``sweep_summary``); each VAE point of the last panel is labelled
    with its count of active dimensions (mean KL > 0.01 nats).
    """
    from explorer.course.demos import sweep_summary

    titles = ("reconstruction (nats)", "KL (nats)", "−ELBO (nats)", "active dimensions (log)")
    fig = make_subplots(1, 4, subplot_titles=titles)
    z = [r["z"] for r in rows]
    ticks = sorted({*z, *(r["z"] for r in ae_rows or [])})
    for i, key in enumerate(("recon", "kl", "elbo", "active")):
        fig.add_scatter(
            x=z,
            y=[r[key] for r in rows],
            mode="lines+markers+text" if key == "active" else "lines+markers",
            text=[str(r[key]) for r in rows] if key == "active" else None,
            textposition="top left",
            name="VAE",
            showlegend=i == 0,
            line={"color": "#4f46e5"},
            row=1,
            col=i + 1,
        )
        for r in ae_rows or []:
            if key in ("recon", "active"):
                fig.add_scatter(
                    x=[r["z"]],
                    y=[r[key]],
                    mode="markers",
                    name=f"AE, z = {r['z']} (no KL)",
                    showlegend=i == 0,
                    marker={"color": "#dc2626", "size": 11, "symbol": "star"},
                    row=1,
                    col=i + 1,
                )
        fig.update_xaxes(type="log", title_text="latent size z", tickvals=ticks, row=1, col=i + 1)
    fig.add_scatter(
        x=z,
        y=[r["kl90"] for r in rows],
        mode="lines+markers",
        name="dimensions holding 90% of the KL",
        line={"color": "#f59e0b"},
        row=1,
        col=4,
    )
    fig.add_scatter(
        x=ticks, y=ticks, mode="lines", line={"dash": "dot", "color": "#9ca3af"}, name="all active", row=1, col=4
    )
    fig.update_yaxes(type="log", row=1, col=4)
    fig.update_layout(
        height=380,
        title={"text": sweep_summary(rows, ae_rows), "font": {"size": 13}},
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def path_figure(
    elbo: dict[str, np.ndarray], logp: dict[str, np.ndarray], reference: float, band: tuple[float, float]
) -> go.Figure:
    """Along each interpolation path: the decoded image's -ELBO against decoded test codes, and log p(z)
    against the band that holds 95% of prior samples. Every line, the reference and the band have a legend entry."""
    fig = make_subplots(1, 2, subplot_titles=("−ELBO of decode(z)", "log p(z) under N(0, I)"))
    steps = len(next(iter(elbo.values())))
    for col, (what, values, colour) in enumerate((("−ELBO", elbo, "#4f46e5"), ("log p(z)", logp, "#059669")), 1):
        if col == 2:  # the band first, so that the lines are drawn over it
            fig.add_scatter(
                x=[0, steps - 1, steps - 1, 0, 0],
                y=[band[0], band[0], band[1], band[1], band[0]],
                fill="toself",
                fillcolor="rgba(5,150,105,0.12)",
                line={"width": 0},
                mode="lines",
                name="95% of prior samples",
                hoverinfo="skip",
                row=1,
                col=2,
            )
        for mode, dash in (("linear", "solid"), ("slerp", "dot")):
            fig.add_scatter(
                y=values[mode],
                name=f"{what}, {mode}",
                line={"dash": dash, "color": colour},
                mode="lines+markers",
                row=1,
                col=col,
            )
        if col == 1:
            fig.add_scatter(
                x=[0, steps - 1],
                y=[reference, reference],
                mode="lines",
                line={"dash": "dash", "color": "gray"},
                name="−ELBO of the median decoded test code",
                row=1,
                col=1,
            )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="nats", row=1, col=1)  # a second title would sit on the first panel when narrow
    fig.update_layout(height=420, margin=MARGIN, legend={"orientation": "h", "y": -0.25})
    return fig


def prior_vs_aggregate(prior: np.ndarray, aggregate: np.ndarray, how: str, gap: float) -> go.Figure:
    """Prior samples and aggregate-posterior samples on one 2-D view."""
    fig = go.Figure()
    add_points(fig, prior, "prior p(z) = N(0, I)", "rgba(220,38,38,0.45)", 5, {"symbol": "x"})
    add_points(fig, aggregate, "aggregate posterior q(z)", "rgba(30,27,150,0.8)", 4)
    fig.update_layout(
        height=420,
        margin=MARGIN,
        plot_bgcolor="white",
        title=f"prior against aggregate posterior ({how}); moment gap KL = {gap:.2f} nats",
    )
    return fig
