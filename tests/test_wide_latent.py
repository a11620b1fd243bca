"""Latents as large as the input (an AE with z = 784 on MNIST): allowed, still capped, and every page copes."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.checkpoint import CheckpointError, build_metadata, load_checkpoint, save_checkpoint
from explorer.config import MAX_LATENT, UI_MAX_LATENT, ModelConfig, config_options
from explorer.errors import ConfigError
from explorer.training.train import make_model
from tests.bad_files import _meta_only

ROOT = Path(__file__).resolve().parents[1]
WIDE = "wide-ae-z784"
PAGES = ("pages/traverse.py", "pages/latent-map.py", "pages/arithmetic.py", "pages/generate.py")


def test_latent_as_large_as_the_input_is_allowed_up_to_the_cap():
    assert MAX_LATENT >= 784
    ModelConfig(latent_dim=784)
    with pytest.raises(ConfigError, match="latent_dim"):
        ModelConfig(latent_dim=MAX_LATENT + 1)


def test_train_widget_keeps_a_small_range_and_says_where_larger_ones_are():
    opt = next(o for o in config_options(ModelConfig) if o.name == "latent_dim")
    assert opt.hi == UI_MAX_LATENT < MAX_LATENT
    assert "CLI" in opt.help and str(MAX_LATENT) in opt.help


def test_checkpoint_declaring_a_huge_latent_is_refused_before_any_model_is_built(tmp_path, monkeypatch):
    import explorer.checkpoint as ck

    def no_model(*_a, **_k):
        raise AssertionError("a model class was looked up for a hostile header")

    monkeypatch.setattr(ck, "get_model_class", no_model)
    path = tmp_path / "latent-100000.safetensors"
    path.write_bytes(_meta_only("ae-mlp", {"hidden": [100]}, latent_dim=100_000))
    with pytest.raises(CheckpointError, match="latent_dim"):
        load_checkpoint(path)


def test_latent_within_the_cap_but_too_many_parameters_is_refused(tmp_path):
    path = tmp_path / "latent-1024-wide.safetensors"
    path.write_bytes(_meta_only("vae-mlp", {"hidden": [4096] * 6}, latent_dim=MAX_LATENT))
    with pytest.raises(CheckpointError, match="parameters"):
        load_checkpoint(path)


@pytest.fixture
def wide_ae(monkeypatch, tmp_path) -> str:
    """An untrained 784-16-784 AE saved among the trained runs: enough for every page to draw."""
    from explorer.catalog import runs_dir

    model = make_model("ae-mlp", {"latent_dim": 784, "hidden": (16,)}, 0)
    runs_dir().mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        model, runs_dir() / f"{WIDE}.safetensors", build_metadata(model, dataset="mnist", split="s", seed=0, epochs=0)
    )
    return WIDE


def test_wide_ae_round_trips(wide_ae):
    from explorer.catalog import resolve

    model, meta = load_checkpoint(resolve(wide_ae))
    assert model.latent_dim == meta["latent_dim"] == 784


@pytest.mark.parametrize("page", PAGES)
def test_pages_run_on_a_z784_model(wide_ae, page):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["sidebar_model"] = wide_ae
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    if page == "pages/traverse.py":
        captions = " ".join(c.value for c in at.caption)
        assert "top 16 of 784" in captions
        at.toggle(key="traverse_all").set_value(True).run()
        assert not at.exception, [e.value for e in at.exception]
        assert "top 32 of 784" in " ".join(c.value for c in at.caption)
