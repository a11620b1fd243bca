"""The tensor work the UI shows, done by core functions: the UI passes plain values and shows results."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.analysis.captioning import caption_traversal
from explorer.analysis.generate import style_rows
from explorer.analysis.traverse import code_of, decode_codes, prior_code, random_code
from explorer.catalog import shipped_dir
from explorer.checkpoint import load_for_use
from explorer.data import load_dataset
from tests.helpers import model_for

ROOT = Path(__file__).resolve().parents[1]
CAPTION = shipped_dir() / "mnist-caption-joint-vae.safetensors"


@pytest.fixture(scope="module")
def cvae():
    return model_for("cvae-mlp", {"latent_dim": 3}, seed=0).eval()


def test_style_rows_decode_each_code_with_every_class(cvae):
    codes, images = style_rows(cvae, 4, seed=5)
    k = cvae.config.n_classes
    assert codes.shape == (4, 3) and images.shape == (4 * k, 1, 28, 28)
    assert torch.equal(codes[0], prior_code(3, 5))  # the same seeded draw as a prior start code
    for r in range(4):
        for c in (0, 3, k - 1):
            assert torch.allclose(images[r * k + c], decode_codes(cvae, codes[r : r + 1], c)[0], atol=1e-6)
    assert not torch.allclose(images[0], images[1])  # the class changes the image within a row
    again = style_rows(cvae, 4, seed=5)
    assert torch.equal(again[0], codes) and torch.equal(again[1], images)
    assert not torch.equal(style_rows(cvae, 4, seed=6)[0], codes)


def test_style_rows_refuse_an_unconditional_model():
    with pytest.raises(ValueError, match="conditional"):
        style_rows(model_for("vae-mlp", {"latent_dim": 2}, seed=0), 2)


def test_random_code_draws_from_the_prior_or_within_the_ranges():
    ranges = np.array([[-1.0, 1.0], [10.0, 12.0], [-0.5, -0.4]])  # (z, 2)
    gen = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    box = torch.stack([random_code(ranges, False, gen(s)) for s in range(200)])  # (200, 3)
    lo, hi = torch.tensor(ranges[:, 0], dtype=torch.float32), torch.tensor(ranges[:, 1], dtype=torch.float32)
    assert box.shape == (200, 3) and bool(((box >= lo) & (box <= hi)).all())
    assert bool(((box.amax(0) - box.amin(0)) > 0.8 * (hi - lo)).all())  # spread across each range, not a point
    prior = torch.stack([random_code(ranges, True, gen(s)) for s in range(200)])
    assert abs(float(prior[:, 1].mean())) < 0.5 and float(prior.abs().max()) > 1.0  # N(0, I), not the ranges
    assert torch.equal(random_code(ranges, True, gen(3)), random_code(ranges, True, gen(3)))
    assert not torch.equal(random_code(ranges, True, gen(3)), random_code(ranges, True, gen(4)))


@pytest.mark.skipif(not CAPTION.exists(), reason="shipped caption checkpoint missing")
def test_caption_traversal_starts_from_the_digits_code():
    """The /shared caption traversal's start code (code_of) is the image encoder's mean: at the code's own
    value, the traversal's digit is the digit's reconstruction."""
    model, meta = load_for_use(CAPTION)
    test = load_dataset(meta["dataset"]).test
    for i in (0, 7):
        z = code_of(model, test, i)  # (z,)
        x = test.images[i : i + 1]
        assert torch.allclose(z, model.embed(x)[0], atol=1e-6)
        images, caps = caption_traversal(model, z, 1, torch.tensor([float(z[1]), float(z[1]) + 3.0]))
        assert torch.allclose(images[0], model.reconstruct(x)[0], atol=1e-5)
        assert not torch.allclose(images[0], images[1]) and len(caps) == 2


MODEL_WORK = re.compile(r"torch\.no_grad|inference_mode|\.(encode|decode|reconstruct|embed|sample)\(|torch\.randn?\(")


def test_ui_code_leaves_models_to_core_functions():
    """Only core functions touch models: no UI module or page encodes, decodes or draws codes inline."""
    files = [*(ROOT / "explorer" / "ui").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]
    found = [
        f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
        for f in files
        for n, line in enumerate(f.read_text().splitlines(), 1)
        if MODEL_WORK.search(line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("step", [3, 12, 13])  # the ELBO, CVAE and anomaly steps call the functions above
def test_learn_steps_that_decode_run(step):
    from streamlit.testing.v1 import AppTest

    from explorer.course.steps import STEPS

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["step"] = str(step)
    at.run()
    at.switch_page("pages/learn.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.header[0].value == f"{step}. {STEPS[step - 1].title}"
    assert len(at.get("image")) >= 1  # the demonstration drew its images
