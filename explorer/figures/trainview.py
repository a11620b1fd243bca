"""Reading a training job's folder, and its figures (no streamlit here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

TERM_COLORS = {"total": "#1f77b4", "recon": "#ff7f0e", "kl": "#2ca02c", "anchor": "#d62728"}  # the rest: PALETTE
PALETTE = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


@dataclass
class RunView:
    """What a training job has written so far."""

    curves: dict[str, list[float]] = field(default_factory=dict)  # per step
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch
    snapshot: dict[str, np.ndarray] | None = None  # the latest epoch's latent map and reconstructions
    snapshot_epoch: int = 0


def _json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def newest_snapshot(job_dir: Path) -> Path | None:
    """The latest epoch's snapshot file (``epoch_NNN.npz``, each written once, atomically), if any."""
    snaps = sorted(job_dir.glob("epoch_*.npz"))
    return snaps[-1] if snaps else None


def snapshot_epoch(path: Path) -> int:
    """The epoch a snapshot file holds (``epoch_NNN.npz`` -> NNN)."""
    return int(path.stem.split("_")[1])


def load_snapshot(path: Path) -> dict[str, np.ndarray] | None:
    """A snapshot's arrays (``embedding``, ``labels``, ``originals``, ``recons``); None if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None


def read_run(job_dir: Path, snapshot: bool = True) -> RunView:
    """Load curves, history and (with ``snapshot``) the newest epoch snapshot (files are written atomically)."""
    view = RunView(_json(job_dir / "curves.json", {}), _json(job_dir / "history.json", []))
    if snapshot and (path := newest_snapshot(job_dir)) is not None:
        view.snapshot = load_snapshot(path)
        if view.snapshot is not None:
            view.snapshot_epoch = snapshot_epoch(path)
    return view


def term_colors(names: list[str]) -> dict[str, str]:
    """A colour for every loss term: the usual ones keep theirs, any other term takes the next free one."""
    others = [n for n in names if n not in TERM_COLORS]
    return {n: TERM_COLORS.get(n) or PALETTE[others.index(n) % len(PALETTE)] for n in names}


def run_terms(view: RunView) -> list[str]:
    """The loss terms a run reports, by name, ``total`` first (whatever terms its model has)."""
    names = [k for k in view.curves if k != "step"]
    names += [k.removeprefix("train_") for r in view.history[:1] for k in r if k.startswith("train_")]
    return sorted(dict.fromkeys(names), key=lambda n: n != "total")  # stable: then in the order reported


def curves_figure(view: RunView, by: str = "step", smooth: int = 10) -> go.Figure:
    """Loss terms by optimiser step (train, smoothed) or by epoch (train solid, test dashed).

    /train redraws it every 1.5 s while a run trains, in the server every session shares, so plotly's
    validation of our own lists is skipped (``_validate=False``): 19 -> 4 ms. The JSON is the same.
    """
    traces: list[dict] = []
    colors = term_colors(run_terms(view))
    if by == "step":
        steps = view.curves.get("step", [])
        for term, color in colors.items():
            ys = view.curves.get(term)
            if not ys:
                continue
            y = np.asarray(ys, dtype=float)
            if smooth > 1 and len(y) >= smooth:
                y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
                x = steps[smooth - 1 :]
            else:
                x = steps
            traces.append({"type": "scatter", "x": x, "y": y, "name": f"train {term}", "line": {"color": color}})
        xaxis = {"title": {"text": "step"}}
    else:
        epochs = [r["epoch"] for r in view.history]
        for term, color in colors.items():
            for part, dash in (("train", "solid"), ("test", "dash")):
                key = f"{part}_{term}"
                if view.history and key in view.history[0]:
                    traces.append(
                        {
                            "type": "scatter",
                            "x": epochs,
                            "y": [r[key] for r in view.history],
                            "name": f"{part} {term}",
                            "line": {"color": color, "dash": dash},
                            "mode": "lines+markers",
                        }
                    )
        xaxis = {"title": {"text": "epoch"}, "dtick": 1}
    layout = {
        "height": 320,
        "xaxis": xaxis,
        "yaxis": {"title": {"text": "nats per image"}},
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "legend": {"orientation": "h", "y": -0.3},
    }
    return go.Figure(traces, layout=layout, _validate=False)
