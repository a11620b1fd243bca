"""Every page runs without an exception on every shipped checkpoint (Streamlit AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.catalog import list_checkpoints

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
SHIPPED = [e.name for e in list_checkpoints() if e.source == "shipped"]


def open_app(model: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if model:
        at.session_state["sidebar_model"] = model
    return at.run()


def test_shipped_checkpoints_exist():
    assert {
        "mnist-vae-mlp-z2",
        "mnist-vae-mlp-z16",
        "mnist-ae-mlp-z2",
        "mnist-cvae-mlp-z2",
        "mnist-vae-mlp-z2-anchored",
        "fashion-mnist-vae-conv-z16",
        "mnist-fashion-joint-vae",
    } <= set(SHIPPED)
    for path in (ROOT / "checkpoints").glob("*.safetensors"):
        assert path.stat().st_size < 5 * 2**20, path


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", SHIPPED)
def test_page_runs(page, model):
    at = open_app(model)
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_home_shows_model_and_images():
    at = open_app("mnist-vae-mlp-z16")
    assert not at.exception
    assert at.metric[1].value == "16"
    assert len(at.image) >= 3  # originals, reconstructions, prior samples


def test_sidebar_offers_every_checkpoint():
    at = open_app()
    assert set(SHIPPED) <= set(at.sidebar.selectbox[0].options)


def test_generate_compares_losses_and_latent_sizes_on_the_course_models():
    at = open_app("mnist-vae-mlp-z2")
    at.switch_page("pages/generate.py").run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    titles = [h.value for h in at.subheader]
    assert "BCE or MSE reconstruction" in titles and "Under- and over-complete latents" in titles
    assert len(at.get("plotly_chart")) >= 1  # the latent-size sweep
