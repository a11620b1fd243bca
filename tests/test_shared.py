"""The joint VAE's shared space: paired data, fusion, single-modality encoding, retrieval, the shipped model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.analysis.multimodal import encode_modality, paired_distances, retrieval_accuracy
from explorer.catalog import shipped_dir
from explorer.checkpoint import load_for_use
from explorer.data import load_dataset
from explorer.models import build_model, get_model_class
from explorer.models.joint import contrastive_loss, correlation_loss, poe

JOINT = shipped_dir() / "mnist-fashion-joint-vae.safetensors"


def test_pairs_share_the_class_and_are_redrawn():
    ds = load_dataset("mnist+fashion-mnist")
    y = ds.train.labels[:200]
    a = ds.partner.draw(y, True, torch.Generator().manual_seed(0))
    b = ds.partner.draw(y, True, torch.Generator().manual_seed(1))
    fashion = load_dataset("fashion-mnist").train
    assert a.shape == (200, 1, 28, 28) and not torch.equal(a, b)
    # every drawn item is a training image of the same class
    flat = fashion.images.flatten(1)
    for i in range(5):
        match = torch.nonzero((flat == a[i].flatten()).all(1)).flatten()
        assert len(match) and int(fashion.labels[match[0]]) == int(y[i])


def test_poe_of_identical_experts_and_prior():
    mu, lv = torch.tensor([[2.0]]), torch.tensor([[0.0]])  # N(2, 1)
    m, v = poe([mu, mu], [lv, lv])  # with N(0, 1): precision 3, mean (2 + 2) / 3
    assert torch.allclose(m, torch.tensor([[4 / 3]])) and torch.allclose(v.exp(), torch.tensor([[1 / 3]]))


def test_concordance_loss_needs_matching_offset_and_scale():
    a = torch.randn(256, 4)
    assert correlation_loss(a, a) < 1e-5
    assert correlation_loss(a, a + 3) > 0.5 and correlation_loss(a, 3 * a) > 0.2  # Pearson would call these perfect


def test_contrastive_loss_rewards_codes_near_their_own_class():
    y = torch.arange(4).repeat(8)  # (32,) four classes
    centres = torch.randn(4, 6) * 5
    a = centres[y] + 0.1 * torch.randn(32, 6)
    aligned = contrastive_loss(a, centres[y] + 0.1 * torch.randn(32, 6), y)
    swapped = contrastive_loss(a, centres[(y + 1) % 4] + 0.1 * torch.randn(32, 6), y)
    assert aligned.shape == (32,) and aligned.mean() < 0.05 and swapped.mean() > 5
    # every same-class code is a partner: a batch of one class costs nothing whatever the codes
    one = torch.zeros(8, dtype=torch.long)
    assert torch.allclose(contrastive_loss(torch.randn(8, 3), torch.randn(8, 3), one), torch.zeros(8), atol=1e-5)


def test_contrastive_term_joins_the_loss_only_when_weighted():
    ds = load_dataset("mnist+fashion-mnist")
    x, y = ds.train.images[:64], ds.train.labels[:64]

    def joint(**cfg: float):
        model = build_model("joint-vae", {**get_model_class("joint-vae").dataset_config(ds), "latent_dim": 4, **cfg})
        model.attach(ds)
        return model

    assert "contrastive" not in joint().terms(x, y)
    model = joint(contrastive_weight=10.0, temperature=2.0)
    t = model.terms(x, y, torch.Generator().manual_seed(0))
    assert t["contrastive"].shape == (64,) and bool((t["contrastive"] > 0).all())
    t["contrastive"].mean().backward()
    assert model.encoder2[0].weight.grad.abs().sum() > 0  # it trains the encoders


def test_retrieval_and_distances_on_known_codes():
    a = np.array([[0.0, 0.0], [10.0, 10.0]])
    b = np.array([[0.1, 0.0], [9.0, 10.0], [50.0, 50.0]])
    assert retrieval_accuracy(a, np.array([0, 1]), b, np.array([0, 1, 1])) == 1.0
    assert retrieval_accuracy(a, np.array([1, 0]), b, np.array([0, 1, 1])) == 0.0
    paired, rand = paired_distances(a, np.array([0, 1]), b, np.array([0, 1, 2]))
    assert paired < rand


@pytest.mark.skipif(not JOINT.exists(), reason="shipped joint checkpoint missing")
def test_shipped_joint_model_retrieves_across_modalities():
    """Each modality's test split encoded alone; top-1 class retrieval of the nearest other-modality code.

    The bar is 80% both ways. The shipped model (with the contrastive term) reaches 92% digit ->
    fashion and 84% fashion -> digit; without it, fashion -> digit stalled at 76-78%.
    """
    model, meta = load_for_use(JOINT)
    ds = load_dataset(meta["dataset"])
    a, _, la = encode_modality(model, ds, "mnist")
    b, _, lb = encode_modality(model, ds, "fashion-mnist")
    assert a.shape == (1000, model.latent_dim) and b.shape == (10_000, model.latent_dim)
    assert retrieval_accuracy(a, la, b, lb) >= 0.8
    assert retrieval_accuracy(b, lb, a, la) >= 0.8
    assert JOINT.stat().st_size < 5 * 2**20


@pytest.mark.skipif(not JOINT.exists(), reason="shipped joint checkpoint missing")
def test_cross_generation_and_the_shared_map():
    from explorer.analysis.multimodal import cross_generate
    from explorer.figures.mapview import shared_map_figure

    model, meta = load_for_use(JOINT)
    ds = load_dataset(meta["dataset"])
    x = ds.test.images[:1]
    out = cross_generate(model, 0, x, n=8, seed=0)  # digit -> fashion
    with torch.no_grad():
        from_mean = model.decode2(model.encode(x)[0])
    assert out.shape == (8, 1, 28, 28) and torch.allclose(out[0], from_mean[0].cpu(), atol=1e-6)
    assert not torch.allclose(out[1], out[2])  # the rest are draws from q(z | digit)
    assert cross_generate(model, 1, ds.partner.test.images[:1], n=3).shape == (3, 1, 28, 28)  # fashion -> digit
    a, _, la = encode_modality(model, ds, "mnist")
    b, _, lb = encode_modality(model, ds, "fashion-mnist")
    fig = shared_map_figure(("mnist", "fashion-mnist"), (a, b[:500]), (la, lb[:500]), (ds.class_names, ds.class_names))
    assert len(fig.data) == 20 and {t.marker.symbol for t in fig.data} == {"circle", "x"}
    assert sum(len(t.x) for t in fig.data) == len(a) + 500 and "PCA" in fig.layout.title.text


@pytest.mark.skipif(not JOINT.exists(), reason="shipped joint checkpoint missing")
def test_a_drawn_digit_is_encoded_as_the_test_digits_are():
    """/shared's gallery query from the pad: the core call the page makes, checked against the split's codes."""
    from explorer.analysis.multimodal import encode_items, nearest_across
    from explorer.data.drawing import center_drawing

    model, meta = load_for_use(JOINT)
    ds = load_dataset(meta["dataset"])
    a, _, la = encode_modality(model, ds, "mnist")
    q = encode_items(model, 0, ds.test.images[3:4])
    assert q.shape == (1, model.latent_dim) and np.allclose(q[0], a[3], atol=1e-5)
    drawn = center_drawing(ds.test.images[3, 0].numpy().ravel())  # a digit as the pad would hand it over
    rows, _ = nearest_across(encode_items(model, 0, drawn[None]), 0, a, 10)
    assert np.bincount(la[rows]).argmax() == la[3]  # among digits of its class


@pytest.mark.skipif(not JOINT.exists(), reason="shipped joint checkpoint missing")
def test_decode_both_and_one_hot_labels():
    from explorer.analysis.multimodal import decode_both, one_hot_labels

    model, _ = load_for_use(JOINT)
    z = torch.randn(5, model.latent_dim, generator=torch.Generator().manual_seed(0))
    g1, g2 = decode_both(model, z)
    with torch.no_grad():
        assert torch.allclose(g1, model.decode(z)) and torch.allclose(g2, model.decode2(z))
    assert g1.shape == g2.shape == (5, 1, 28, 28) and not torch.allclose(g1, g2)
    oh = one_hot_labels([2, 0], 10)
    assert oh.shape == (2, 10) and oh.dtype == torch.float32 and oh.argmax(1).tolist() == [2, 0] and oh.sum() == 2
