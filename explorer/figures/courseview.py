"""Plotly figures for the course: architecture, reparameterisation, clustering, latent sizes, paths, priors."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.course.demos import Block, Clustering, Reparam

PART_COLOURS = {
    "input": "#e5e7eb",
    "encoder": "#bfdbfe",
    "posterior": "#fde68a",
    "latent": "#fca5a5",
    "decoder": "#bbf7d0",
    "output": "#e5e7eb",
}
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def architecture_figure(blocks: list[Block], title: str = "") -> go.Figure:
    """Boxes left to right, their height growing with the layer size (log scale); μ and log σ² stacked."""
    fig = go.Figure()
    x, prev_right, col = 0.0, None, []
    sizes = [
        int(b.size.split("×")[0]) * (int(b.size.split("×")[1]) * int(b.size.split("×")[2]) if "×" in b.size else 1)
        for b in blocks
    ]
    top = np.log2(max(sizes) + 1)
    i = 0
    while i < len(blocks):
        group = (
            [i, i + 1]
            if blocks[i].part == "posterior" and i + 1 < len(blocks) and blocks[i + 1].part == "posterior"
            else [i]
        )
        for j, k in enumerate(group):
            b = blocks[k]
            h = 0.25 + 0.75 * np.log2(sizes[k] + 1) / top
            yc = 0 if len(group) == 1 else (0.6 if j == 0 else -0.6)
            if len(group) > 1:
                h = min(h, 0.5)
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
            above = (len(col) % 2 == 0) if len(group) == 1 else j == 0  # alternate so neighbours' labels do not collide
            fig.add_annotation(
                x=x + 0.4,
                y=(yc + h + 0.1) if above else (yc - h - 0.1),
                text=b.label,
                showarrow=False,
                font={"size": 11},
                yanchor="bottom" if above else "top",
            )
            col.append((x, yc))
        if prev_right is not None:
            fig.add_annotation(
                x=x,
                y=0,
                ax=prev_right,
                ay=0,
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                text="",
                showarrow=True,
                arrowhead=2,
                arrowwidth=1.2,
            )
        prev_right = x + 0.8
        x += 1.3
        i += len(group)
    fig.update_xaxes(visible=False, range=[-0.3, x + 0.5])
    fig.update_yaxes(visible=False, range=[-2.6, 2.8])
    fig.update_layout(
        height=330,
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


def reparam_cloud(rep: Reparam, background: np.ndarray | None = None, labels: np.ndarray | None = None) -> go.Figure:
    """A z=2 model: the draws of q(z|x) as a cloud around μ (over the test codes in grey)."""
    fig = go.Figure()
    if background is not None:
        fig.add_scattergl(
            x=background[:, 0],
            y=background[:, 1],
            mode="markers",
            name="test codes μ(x)",
            marker={"size": 3, "color": "#d1d5db"},
        )
    c = rep.cloud.numpy()
    fig.add_scattergl(
        x=c[:, 0],
        y=c[:, 1],
        mode="markers",
        name=f"{len(c)} draws of q(z|x)",
        marker={"size": 5, "color": "rgba(79,70,229,0.55)"},
    )
    fig.add_scattergl(
        x=[float(rep.mu[0])],
        y=[float(rep.mu[1])],
        mode="markers",
        name="μ",
        marker={"size": 14, "color": "black", "symbol": "cross"},
    )
    fig.add_scattergl(
        x=[float(rep.z[0])],
        y=[float(rep.z[1])],
        mode="markers",
        name="this z",
        marker={"size": 13, "color": "#dc2626", "symbol": "diamond"},
    )
    fig.update_layout(
        height=380,
        title="q(z|x) = N(μ, σ²): the cloud z is drawn from",
        margin=MARGIN,
        plot_bgcolor="white",
        xaxis_title="z0",
        yaxis_title="z1",
    )
    return fig


def gradient_diagram(rep: Reparam | None = None) -> go.Figure:
    """Why the gradient reaches the encoder: z = μ + σ⊙ε puts the randomness in ε, off the gradient's path."""
    nodes = {
        "x": (0, 0),
        "encoder": (1.3, 0),
        "μ": (2.6, 0.7),
        "σ": (2.6, -0.7),
        "ε ~ N(0, I)": (2.6, -1.9),
        "z = μ + σ⊙ε": (4.1, 0),
        "decoder": (5.6, 0),
        "loss": (6.9, 0),
    }
    edges = [
        ("x", "encoder"),
        ("encoder", "μ"),
        ("encoder", "σ"),
        ("μ", "z = μ + σ⊙ε"),
        ("σ", "z = μ + σ⊙ε"),
        ("ε ~ N(0, I)", "z = μ + σ⊙ε"),
        ("z = μ + σ⊙ε", "decoder"),
        ("decoder", "loss"),
    ]
    back = [
        ("loss", "decoder"),
        ("decoder", "z = μ + σ⊙ε"),
        ("z = μ + σ⊙ε", "μ"),
        ("z = μ + σ⊙ε", "σ"),
        ("μ", "encoder"),
        ("σ", "encoder"),
    ]
    fig = go.Figure()
    for a, b in edges:
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        fig.add_annotation(
            x=x1 - 0.45 * np.sign(x1 - x0),
            y=y1,
            ax=x0 + 0.45 * np.sign(x1 - x0) if x1 != x0 else x0,
            ay=y0,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            text="",
            showarrow=True,
            arrowhead=2,
            arrowcolor="#6b7280",
        )
    for a, b in back:
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        fig.add_annotation(
            x=x1 + 0.45 * np.sign(x0 - x1),
            y=y1 + 0.22,
            ax=x0 - 0.45 * np.sign(x0 - x1),
            ay=y0 + 0.22,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            text="",
            showarrow=True,
            arrowhead=2,
            arrowcolor="#dc2626",
            arrowwidth=2,
        )
    for name, (x, y) in nodes.items():
        rand = name.startswith("ε")
        fig.add_shape(
            type="rect",
            x0=x - 0.45,
            x1=x + 0.45,
            y0=y - 0.28,
            y1=y + 0.28,
            fillcolor="#f3f4f6" if rand else "#eef2ff",
            line={"color": "#9ca3af" if rand else "#4f46e5", "dash": "dot" if rand else "solid"},
        )
        fig.add_annotation(x=x, y=y, text=name, showarrow=False, font={"size": 12})
    note = "red: ∂loss flows back through z to μ and σ; ε is a constant input with no gradient"
    if rep is not None:
        note += (
            f"<br>this image: |∂L/∂μ| = {float(rep.grad_mu.norm()):.1f}, |∂L/∂σ| = {float(rep.grad_sigma.norm()):.1f}"
        )
    fig.add_annotation(x=3.45, y=1.55, text=note, showarrow=False, font={"size": 12, "color": "#991b1b"})
    fig.update_xaxes(visible=False, range=[-0.6, 7.5])
    fig.update_yaxes(visible=False, range=[-2.4, 1.9])
    fig.update_layout(height=300, margin={"l": 5, "r": 5, "t": 10, "b": 5}, plot_bgcolor="white")
    return fig


def confusion_figure(cl: Clustering, class_names: tuple[str, ...]) -> go.Figure:
    """Counts of each class (columns) in each k-means cluster (rows), clusters sorted by their majority class."""
    order = np.argsort(cl.cluster_class, kind="stable")
    conf = cl.confusion[order]
    cols = [class_names[c] if c < len(class_names) else str(c) for c in range(conf.shape[1])]
    rows = [f"cluster {k} ({cols[cl.cluster_class[k]]})" for k in order]
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
        yaxis={"autorange": "reversed"},
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
    against the band that holds 95% of prior samples."""
    fig = make_subplots(1, 2, subplot_titles=("−ELBO of decode(z)", "log p(z), prior N(0, I)"))
    for mode, dash in (("linear", "solid"), ("slerp", "dot")):
        fig.add_scatter(
            y=elbo[mode],
            name=mode,
            line={"dash": dash, "color": "#4f46e5"},
            mode="lines+markers",
            row=1,
            col=1,
            legendgroup=mode,
        )
        fig.add_scatter(
            y=logp[mode],
            name=mode,
            line={"dash": dash, "color": "#059669"},
            mode="lines+markers",
            row=1,
            col=2,
            legendgroup=mode,
            showlegend=False,
        )
    fig.add_hline(
        y=reference, line_dash="dash", line_color="gray", annotation_text="median decoded test code", row=1, col=1
    )
    fig.add_hrect(
        y0=band[0],
        y1=band[1],
        fillcolor="#059669",
        opacity=0.12,
        line_width=0,
        row=1,
        col=2,
        annotation_text="95% of prior samples",
        annotation_position="bottom left",
    )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="nats")
    fig.update_layout(height=400, margin=MARGIN, legend={"orientation": "h", "y": -0.2})
    return fig


def prior_vs_aggregate(prior: np.ndarray, aggregate: np.ndarray, how: str, gap: float) -> go.Figure:
    """Prior samples and aggregate-posterior samples on one 2-D view."""
    fig = go.Figure()
    fig.add_scattergl(
        x=prior[:, 0],
        y=prior[:, 1],
        mode="markers",
        name="prior p(z) = N(0, I)",
        marker={"size": 5, "color": "rgba(220,38,38,0.45)", "symbol": "x"},
    )
    fig.add_scattergl(
        x=aggregate[:, 0],
        y=aggregate[:, 1],
        mode="markers",
        name="aggregate posterior q(z)",
        marker={"size": 4, "color": "rgba(30,27,150,0.8)"},
    )
    fig.update_layout(
        height=420,
        margin=MARGIN,
        plot_bgcolor="white",
        title=f"prior against aggregate posterior ({how}); moment gap KL = {gap:.2f} nats",
    )
    return fig
