"""What the app server caches to make each rerun cheaper gives the same result as building it anew."""

from __future__ import annotations

import json

import numpy as np
import plotly.io
import plotly.tools

from explorer.checkpoint import load_checkpoint
from explorer.data import load_dataset
from explorer.figures.mapview import FrozenFigure, latent_map


def _wire(fig) -> str:
    """The JSON ``st.plotly_chart`` sends for ``fig`` (the same two calls it makes)."""
    return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), validate=False)


def test_frozen_map_figure_sends_the_same_json_every_time():
    from explorer.analysis.projection import ProjectionParams, compute_projection
    from explorer.catalog import shipped_dir

    ds = load_dataset("mnist")
    z2 = load_checkpoint(shipped_dir() / "mnist-vae-mlp-z2.safetensors")[0]
    raw = compute_projection(z2, ds, ProjectionParams(method="raw", limit=300, n_prior=50))
    fig, _ = latent_map(z2, raw, ds.class_names, show_prior=True, highlight=(3,))
    frozen = FrozenFigure(fig)
    first = _wire(frozen)
    assert first == _wire(fig)  # the same figure: traces, their arrays, the manifold image, the layout
    assert _wire(frozen) == first  # serialising it (plotly pops each trace's uid) left it as it was
    data = json.loads(first)["data"]
    assert sum(1 for t in data if t.get("name") in ds.class_names) == len(np.unique(raw.labels))
    assert not frozen.data  # only the JSON is kept


def test_latent_map_builds_k_means_only_while_its_expander_is_open(tmp_path, monkeypatch):
    """A closed expander costs nothing per rerun; opened, it shows what it did before."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from explorer.analysis.projection import ProjectionParams, get_or_compute
    from explorer.catalog import shipped_dir

    get_or_compute(shipped_dir() / "mnist-vae-mlp-z2.safetensors", "mnist", ProjectionParams(method="raw", axes=(0, 1)))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.session_state["sidebar_model"] = "mnist-vae-mlp-z2"
    at.run()
    at.switch_page("pages/latent-map.py").run()
    assert not at.exception and at.get("plotly_chart")  # the cached map is drawn
    ari = "Adjusted Rand index"
    assert ari not in [m.label for m in at.metric]
    at.session_state["latentmap_km_open"] = True
    at.run()
    assert not at.exception
    assert ari in [m.label for m in at.metric]


def test_the_app_server_decodes_with_one_torch_thread():
    """Script runs share one process: torch's intra-op pool would spin on the core other sessions need."""
    import threading
    from pathlib import Path

    import torch
    from streamlit.testing.v1 import AppTest

    from explorer.ui.sidebar import SERVER_TORCH_THREADS, _startup

    _startup.clear()  # as on a fresh server
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120).run()
    assert not at.exception
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))  # as a later script run's thread
    t.start()
    t.join()
    assert seen == [SERVER_TORCH_THREADS] == [1]


def test_code_figure_without_validation_is_the_validated_figure():
    import plotly.graph_objects as go

    from explorer.figures.mapview import code_figure

    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=16).astype(np.float32), rng.normal(size=16).astype(np.float32)
    order = list(range(15, -1, -1))
    checked = go.Figure(  # the same fields, validated as plotly validates any figure
        go.Bar(
            x=[f"z{d}" for d in order],
            y=mu[order],
            error_y={"type": "data", "array": np.exp(0.5 * logvar)[order]},
            marker_color="#4f46e5",
            hovertemplate="%{x}: μ=%{y:.2f}<extra></extra>",
        ),
    ).update_layout(
        height=220,
        margin={"l": 10, "r": 10, "t": 25, "b": 10},
        title={"text": "μ ± σ per dimension", "font": {"size": 13}},
    )
    fig = code_figure(mu, logvar, order=order)
    assert json.loads(_wire(fig)) == json.loads(_wire(checked))  # the same figure (keys may come in another order)
    assert json.loads(_wire(fig))["data"][0]["x"][0] == "z15"
