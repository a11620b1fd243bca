"""Plotly figures for the course: architecture, clustering, latent sizes, paths, priors.

The reparameterisation figures are in explorer.figures.reparamview.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.course.demos import Block, Clustering
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


def _size(size: str) -> int:
    """Number of units in a block's size, e.g. "32×14×14" -> 6272."""
    return int(np.prod([int(v) for v in size.split("×")]))


def _label(text: str) -> str:
    """A block's label, broken at its commas so that it stays narrower than two columns."""
    return text.replace(", ", ",<br>")


def arrow(fig: go.Figure, tail: tuple[float, float], head: tuple[float, float], color: str, width: float = 1.2) -> None:
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
            arrow(fig, ((c - 1) * step + 0.8, 0), (x, 0), "#374151")
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
