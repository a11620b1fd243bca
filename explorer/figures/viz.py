"""Images and figures as plain data: numpy grids, PNG bytes, plotly figures (no streamlit here)."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image
from torch import Tensor


def image_grid(images: Tensor, nrow: int = 8, pad: int = 2, scale: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images (N, C, H, W) in [0,1] into one uint8 RGB array (H', W', 3), upscaled by ``scale``."""
    images = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = images.shape
    if c == 1:
        images = images.expand(n, 3, h, w)
    ncol = max(1, min(nrow, n))
    nrows = max(1, -(-n // ncol))
    grid = torch.full((3, nrows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value)
    for i in range(n):
        r, col = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y0 : y0 + h, x0 : x0 + w] = images[i]
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    return arr


def png_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def history_figure(history: list[dict[str, float]], terms: tuple[str, ...] = ("total", "recon", "kl")) -> go.Figure:
    """Per-epoch train (solid) and test (dashed) curves of the loss terms."""
    fig = go.Figure()
    epochs = [row["epoch"] for row in history]
    palette = {"total": "#1f77b4", "recon": "#ff7f0e", "kl": "#2ca02c", "anchor": "#d62728"}
    for term in terms:
        for part, dash in (("train", "solid"), ("test", "dash")):
            key = f"{part}_{term}"
            if history and key in history[0]:
                fig.add_scatter(
                    x=epochs,
                    y=[r[key] for r in history],
                    name=f"{part} {term}",
                    line={"dash": dash, "color": palette.get(term)},
                )
    fig.update_layout(
        xaxis_title="epoch",
        yaxis_title="nats per image",
        height=300,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def kl_bars_figure(kl: list[float] | np.ndarray, threshold: float, height: int = 320) -> go.Figure:
    """Mean KL per latent dimension, sorted high to low on a log axis; bars below ``threshold`` are grey."""
    kl = np.asarray(kl, dtype=float)
    order = np.argsort(-kl)
    vals = np.maximum(kl[order], 1e-6)  # a log axis cannot show 0
    fig = go.Figure()
    for active, name, color in ((True, "active", "#4f46e5"), (False, "inactive (at the prior)", "#d1d5db")):
        keep = (vals > threshold) == active
        fig.add_bar(x=[f"z{d}" for d in order[keep]], y=vals[keep], name=name, marker_color=color)
    ends = [f"z{order[0]}", f"z{order[-1]}"]  # a trace, not add_hline: its label lands off the line on a log axis
    fig.add_scatter(
        x=ends, y=[threshold] * 2, mode="lines", line={"dash": "dash", "color": "#111"}, name=f"{threshold:g} nats"
    )
    fig.update_layout(
        height=height,
        title="mean KL per dimension, sorted",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        barmode="relative",
        bargap=0.15,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        xaxis={"categoryorder": "array", "categoryarray": [f"z{d}" for d in order], "title": "latent dimension"},
        yaxis={"type": "log", "title": "KL (nats, log scale)", "dtick": 1, "exponentformat": "power"},
    )
    return fig
