"""The text modality of the joint VAE: bag-of-words networks, the shipped caption model both ways, the page."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.analysis.captioning import (
    caption_to_digits,
    caption_to_image_accuracy,
    caption_traversal,
    class_only_attribute_accuracy,
    image_to_caption,
    image_to_caption_accuracy,
    is_caption_model,
    train_digit_classifier,
)
from explorer.catalog import shipped_dir
from explorer.checkpoint import load_for_use
from explorer.data import load_dataset
from explorer.data.captions import VOCAB, measure
from explorer.errors import ExplorerError
from explorer.models import build_model, get_model_class

ROOT = Path(__file__).resolve().parents[1]
CAPTION = shipped_dir() / "mnist-caption-joint-vae.safetensors"
needs_shipped = pytest.mark.skipif(not CAPTION.exists(), reason="shipped caption checkpoint missing")


def test_text_modality_is_a_bag_of_words_that_trains():
    ds = load_dataset("mnist+caption")
    cfg = get_model_class("joint-vae").dataset_config(ds)
    assert cfg["second"] == "text" and cfg["second_shape"] == [len(VOCAB)] and cfg["modalities"] == ["mnist", "caption"]
    model = build_model("joint-vae", {**cfg, "latent_dim": 4, "contrastive_weight": 10.0})
    model.attach(ds)
    assert is_caption_model(model) and model.encoder2[0].in_features == len(VOCAB)
    x, y = ds.train.images[:64], ds.train.labels[:64]
    t = model.terms(x, y, torch.Generator().manual_seed(0))
    t["total"].mean().backward()
    assert model.encoder2[0].weight.grad.abs().sum() > 0 and model.decoder2[-1].weight.grad.abs().sum() > 0
    probs = model.decode2(torch.zeros(3, 4))
    assert probs.shape == (3, len(VOCAB)) and bool(((probs > 0) & (probs < 1)).all())  # one Bernoulli per word


def test_caption_checkpoint_is_shipped_and_small():
    assert CAPTION.exists() and CAPTION.stat().st_size < 5 * 2**20
    assert "mnist-caption-joint-vae" in (ROOT / "scripts" / "make_checkpoints.sh").read_text()


def test_caption_functions_refuse_other_models():
    model = build_model("vae-mlp", {"latent_dim": 2})
    with pytest.raises(ExplorerError):
        caption_to_digits(model, "a seven")


@needs_shipped
def test_typed_caption_gives_its_digits_and_names_ignored_words():
    model, _ = load_for_use(CAPTION)
    out = caption_to_digits(model, "a THICK 7 with a serif", n=16, seed=0)
    assert out.images.shape == (16, 1, 28, 28) and out.words == ["thick", "seven"] and out.ignored == ["serif"]
    assert not torch.allclose(out.images[1], out.images[2])  # draws from q(z | caption), not one image
    thick = measure(caption_to_digits(model, "a thick seven", n=32).images)[:, 0]
    thin = measure(caption_to_digits(model, "a thin seven", n=32).images)[:, 0]
    assert float(thick.mean()) > float(thin.mean()) + 0.5  # "a thick seven" draws thick sevens
    right = measure(caption_to_digits(model, "a right-slanted one", n=32).images)[:, 1]
    left = measure(caption_to_digits(model, "a one slanted to the left", n=32).images)[:, 1]
    assert float(right.mean()) > float(left.mean()) + 0.2


@needs_shipped
def test_digit_to_caption_reads_class_and_attributes():
    """Lower bars than the goals (90% class, 70% attribute words) that bench/caption_bench.py reports."""
    model, meta = load_for_use(CAPTION)
    ds = load_dataset(meta["dataset"])
    acc = image_to_caption_accuracy(model, ds.test)
    base = class_only_attribute_accuracy(ds.train, ds.test)
    assert acc["class"] >= 0.85 and acc["attributes"] >= 0.65
    assert acc["attributes"] > base["attributes"] + 0.15  # the words say more than the class does
    one = image_to_caption(model, ds.test.images[0])
    assert int(ds.test.labels[0]) == list(one["groups"]["class"]).index(
        max(one["groups"]["class"], key=one["groups"]["class"].get)
    )
    for group in one["groups"].values():
        assert abs(sum(group.values()) - 1) < 1e-5
    assert set(one["probs"]) == set(VOCAB) and one["caption"].startswith("a ")


@needs_shipped
def test_traversal_changes_image_and_caption_together():
    model, meta = load_for_use(CAPTION)
    ds = load_dataset(meta["dataset"])
    z = model.encode(ds.test.images[:1])[0][0]
    changed = 0
    for dim in range(model.latent_dim):
        images, caps = caption_traversal(model, z, dim, torch.linspace(-3, 3, 7))
        assert images.shape == (7, 1, 28, 28) and len(caps) == 7
        changed += len(set(caps)) > 1
    assert changed >= 2  # some dimensions move the caption as well as the image


@needs_shipped
@pytest.mark.slow
def test_caption_to_digit_class_by_a_trained_classifier():
    model, meta = load_for_use(CAPTION)
    clf = train_digit_classifier(load_dataset(meta["dataset"]).train, epochs=2)
    out = caption_to_image_accuracy(model, clf, n=8)
    assert out["class"] >= 0.85 and out["slant"] >= 0.6 and out["thick_minus_thin"] > 0.5


@needs_shipped
def test_shared_page_with_the_caption_model():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["sidebar_model"] = "mnist-caption-joint-vae"
    at.run()
    at.switch_page("pages/shared.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.tabs] == ["Caption → digits", "Digit → caption", "Shared map", "Traversal"]
    at.text_input(key="shared_text_text").input("a bold seven, very curly").run()
    assert not at.exception and any("curly" in w.value for w in at.warning)
    assert any("`thick` · `seven`" in m.value for m in at.markdown)
    assert any(str(c.value).startswith("z") and "seven" in str(c.value) for c in at.caption)  # traversal captions
