"""The training loop's contract: events, stop requests, divergence, determinism."""

from __future__ import annotations

import pytest
import torch

from explorer.errors import ConfigError, TrainingDiverged
from explorer.training.train import TrainSettings, make_model, train


def _states_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_stop_keeps_last_completed_epoch(small):
    tr, te = small
    model = make_model("vae-mlp", {"latent_dim": 2}, 0)
    steps_per_epoch = -(-len(tr) // 100)
    snapshot = {}
    stop_after = steps_per_epoch + 3  # three steps into the second epoch
    seen = {"steps": 0}
    events = train(
        model, tr, te, TrainSettings(epochs=5, batch_size=100), lambda: seen["steps"] >= stop_after, torch.device("cpu")
    )
    for p in events:
        seen["steps"] = p.step
        if p.event == "epoch":
            snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    assert p.event == "end" and p.stopped and p.epoch == 1 and len(p.history) == 1
    assert _states_equal(model.state_dict(), snapshot)


def test_nan_loss_raises_and_keeps_last_good_weights(small, monkeypatch):
    tr, te = small
    model = make_model("vae-mlp", {"latent_dim": 2}, 0)
    original = model.loss
    calls = {"n": 0}
    steps_per_epoch = -(-len(tr) // 100)

    def flaky(x, y=None, generator=None):
        calls["n"] += 1
        out = original(x, y, generator)
        if calls["n"] > steps_per_epoch + 2:
            out["total"] = out["total"] * float("nan")
        return out

    monkeypatch.setattr(model, "loss", flaky)
    snapshot = {}
    with pytest.raises(TrainingDiverged, match="kept the weights from epoch 1"):
        for p in train(model, tr, te, TrainSettings(epochs=3, batch_size=100), device=torch.device("cpu")):
            if p.event == "epoch":
                snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    assert _states_equal(model.state_dict(), snapshot)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_same_seed_same_result(small):
    tr, te = small
    finals = []
    for _ in range(2):
        model = make_model("vae-mlp", {"latent_dim": 2}, 7)
        *_, last = train(
            model, tr.subset(300), te.subset(100), TrainSettings(epochs=1, seed=7), device=torch.device("cpu")
        )
        finals.append(last.history[-1]["test_total"])
    assert finals[0] == finals[1]


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"lr": float("nan")}, {"seed": -1}])
def test_settings_validation(bad):
    with pytest.raises(ConfigError):
        TrainSettings(**bad)


def test_comparison_runs_share_everything_but_what_they_compare():
    from explorer.training.pipeline import RunSpec, ae_against_vae, beta_sweep

    spec = RunSpec(
        "ae-mlp",
        "digits",
        {"latent_dim": 8, "beta": 1.0, "recon": "mse"},
        TrainSettings(3, 64, 3e-3, 7),
        ("donut",),
        2.0,
    )
    sweep = beta_sweep(spec)
    assert list(sweep) == ["β = 0.5", "β = 1", "β = 4"]
    assert {s.model for s in sweep.values()} == {"vae-mlp"} and [s.config["beta"] for s in sweep.values()] == [
        0.5,
        1.0,
        4.0,
    ]
    assert all(s.settings == spec.settings and s.config["recon"] == "mse" and not s.anchors for s in sweep.values())
    pair = ae_against_vae(spec)
    assert list(pair) == ["ae-mlp", "vae-mlp"]
    assert all(s.config["latent_dim"] == 2 and s.settings == spec.settings and not s.anchors for s in pair.values())


def test_curves_plot_every_term_a_model_reports():
    """trainview knows no list of terms: a term it has never heard of gets its own train and test curves."""
    from explorer.figures.trainview import RunView, curves_figure, run_terms

    terms = ("recon", "kl", "tc", "total")  # "tc": a term from a model trainview has never seen
    curves = {"step": [1, 2, 3], **{t: [3.0, 2.0, 1.0] for t in terms}}
    history = [
        {"epoch": e, **{f"{part}_{t}": float(e) for t in terms for part in ("train", "test")}, "test_elbo": 1.0}
        for e in (1, 2)
    ]
    view = RunView(curves, history)
    assert run_terms(view) == ["total", "recon", "kl", "tc"]
    by_step = {tr.name for tr in curves_figure(view, "step", smooth=1).data}
    by_epoch = {tr.name for tr in curves_figure(view, "epoch").data}
    assert by_step == {f"train {t}" for t in terms}
    assert by_epoch == {f"{part} {t}" for t in terms for part in ("train", "test")}
    colors = [tr.line.color for tr in curves_figure(view, "step", smooth=1).data]
    assert len(set(colors)) == len(terms)


@pytest.mark.parametrize("by", ["step", "epoch"])
def test_curves_figure_is_valid_plotly_though_built_unvalidated(by):
    """The curves skip plotly's validation (they redraw every 1.5 s): validating their dict again
    accepts every property and gives the same JSON."""
    import json

    import plotly.graph_objects as go
    import plotly.io as pio

    from explorer.figures.trainview import RunView, curves_figure

    steps = list(range(1, 40))
    curves = {"step": steps, "recon": [100.0 / s for s in steps], "kl": [0.1 * s for s in steps]}
    curves["total"] = [a + b for a, b in zip(curves["recon"], curves["kl"])]
    history = [
        {"epoch": e, **{f"{p}_{t}": float(e) for t in ("recon", "kl", "total") for p in ("train", "test")}}
        for e in (1, 2, 3)
    ]
    fig = curves_figure(RunView(curves, history), by)
    again = go.Figure(fig.to_dict())  # validated: an unknown property or a bad value raises
    assert json.loads(pio.to_json(again)) == json.loads(pio.to_json(fig))
    assert len(fig.data) == (3 if by == "step" else 6) and fig.layout.xaxis.title.text == by


def test_train_flags_come_from_the_model_configs(capsys):
    """Every user-set field of every kind's config is a train flag, parsed to the field's type."""
    from explorer.cli import _parse_sets, build_parser
    from explorer.models import model_options

    parser = build_parser()
    for name, by_kind in model_options().items():
        opt = next(iter(by_kind.values()))
        flag = "--" + name.replace("_", "-")
        if isinstance(opt.default, bool):
            args = parser.parse_args(["train", f"--no-{name.replace('_', '-')}", "--out", "x"])
            assert getattr(args, name) is False
            continue
        text = ",".join(map(str, opt.default)) if isinstance(opt.default, tuple) else str(opt.default)
        args = parser.parse_args(["train", flag, text, "--out", "x"])
        assert getattr(args, name) == opt.default, name
    args = parser.parse_args(["train", "--out", "x"])
    assert all(getattr(args, name) is None for name in model_options())  # unset: the model's own default
    for flag, value, says in (
        ("--hidden", "4x", "whole numbers separated by commas"),
        ("--latent-dim", "2.5", "not a whole number"),
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", flag, value, "--out", "x"])
        assert says in capsys.readouterr().err
    assert _parse_sets(["anchor_score=cosine", "hidden=[8, 4]"]) == {"anchor_score": "cosine", "hidden": [8, 4]}
    with pytest.raises(ConfigError):  # a field the model does not have is refused, not ignored
        from explorer.models import build_model

        build_model("vae-mlp", {"fusion": "mean"})


def test_train_page_offers_only_what_works_together():
    """/train: each kind gets its own config's widgets, its datasets, and anchors only where they act."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from explorer.data.paired import PAIRED_NAMES

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120).run()
    at.switch_page("pages/train.py").run()

    def select(label: str, value: str) -> None:
        next(s for s in at.selectbox if s.label == label).select(value).run()

    def labels() -> set[str]:
        return {
            w.label
            for kind in ("number_input", "slider", "radio", "text_input", "toggle", "multiselect")
            for w in getattr(at, kind)
        }

    select("Model", "joint-vae")
    assert not at.exception
    assert next(s for s in at.selectbox if s.label == "Dataset").options == list(PAIRED_NAMES)
    assert {"CCA weight", "Contrastive weight", "Fusion", "Unimodal ELBOs", "Hidden layers"} <= labels()
    select("Model", "ae-mlp")
    assert "β (KL weight)" not in labels() and "Anchors (optional)" not in labels()  # an AE has no KL
    select("Model", "vae-mlp")
    assert "CCA weight" not in labels() and "β (KL weight)" in labels()
    anchors = next(m for m in at.multiselect if m.label == "Anchors (optional)")
    assert {"donut", "stick", "class:9"} <= set(anchors.options)
    select("Dataset", "digits")  # 8x8: the 28x28 prototypes do not fit
    anchors = next(m for m in at.multiselect if m.label == "Anchors (optional)")
    assert "donut" not in anchors.options and "class:0" in anchors.options
    assert not at.exception and not at.error
    assert at.session_state["sidebar_model"] == "mnist-vae-mlp-z2"  # 28x28: the sidebar offers no 8x8 dataset
    assert "digits" not in next(s for s in at.sidebar.selectbox if s.label == "Dataset").options


def test_dataset_offers_match_what_the_loaders_give():
    """The shapes the sidebar filters by are the loaders' shapes; each kind is offered datasets it builds on."""
    from explorer.data import DATASET_NAMES, load_dataset
    from explorer.data.datasets import DATASET_SHAPES
    from explorer.errors import DatasetError
    from explorer.models import get_model_class, model_names
    from explorer.training.pipeline import RunSpec, datasets_for

    def installed(name: str):
        try:
            return load_dataset(name)
        except DatasetError:  # Fashion-MNIST may not be installed here
            return None

    for name in DATASET_NAMES:
        assert (ds := installed(name)) is None or ds.in_shape == DATASET_SHAPES[name], name
    for kind in model_names():
        for name in datasets_for(kind):
            if (ds := installed(name)) is not None:
                get_model_class(kind).config_cls.from_dict(RunSpec(kind, name, {"latent_dim": 2}).model_config(ds))
