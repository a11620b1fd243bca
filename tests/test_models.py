"""Every registered model: shapes, KL, gradients, learning, checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.analysis.evaluate import evaluate_split
from explorer.checkpoint import build_metadata, load_checkpoint, save_checkpoint
from explorer.config import MAX_LATENT, ConfigError
from explorer.models import build_model, get_model_class
from explorer.models.base import kl_per_dim
from explorer.training.train import TrainSettings, train
from tests.helpers import model_for


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8)])
def test_shapes(kind, shape):
    model = model_for(kind, {"latent_dim": 5, "in_shape": list(shape)})
    x, y = torch.rand(7, *shape), torch.randint(0, 10, (7,))
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (7, 5)
    out = model.decode(mu, y)
    assert out.shape == (7, *shape) and out.min() >= 0 and out.max() <= 1
    terms = model.loss(x, y)
    assert {"recon", "kl", "total"} <= set(terms) and all(t.ndim == 0 for t in terms.values())
    assert model.kl_per_dim(mu, logvar).shape == (7, 5)
    assert model.sample(3, y=torch.tensor(1)).shape == (3, *shape)


def extras(model, terms: dict) -> torch.Tensor:
    """The terms besides recon and kl, each at the weight it enters the total with."""
    from explorer.models.terms import active_terms

    return sum(t.scale(model) * terms[t.name] for t in active_terms(model) if t.name not in ("recon", "kl"))


def test_kl_closed_form_known_values():
    mu = torch.tensor([[0.0, 1.0, 0.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.0, math.log(4.0), math.log(0.25)]])
    expected = torch.tensor([[0.0, 0.5, 0.5 * (4 - 1 - math.log(4)), 0.5 * (0.25 + 4 - 1 - math.log(0.25))]])
    assert torch.allclose(kl_per_dim(mu, logvar), expected, atol=1e-6)


def test_model_kl_matches_closed_form(kind):
    """The loss's KL term is the closed form applied to the encoder's outputs (zero for the AE)."""
    model = model_for(kind, {"latent_dim": 3}, seed=0)
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    mu, logvar = model.encode(x, y)
    if hasattr(model, "fuse"):  # a joint model's KL is that of the fused posterior
        mu, logvar = model.fuse(mu, logvar, *model.encode2(torch.nn.functional.one_hot(y, 10).float()))
    terms = model.terms(x, y)
    expected = kl_per_dim(mu, logvar).sum(1) if model.stochastic else torch.zeros(4)
    assert torch.allclose(terms["kl"], expected, atol=1e-5)
    assert torch.allclose(
        terms["total"], terms["recon"] + model.config.beta * terms["kl"] + extras(model, terms), atol=1e-3
    )


def test_beta_weights_kl(kind):
    model = model_for(kind, {"latent_dim": 3, "beta": 4.0}, seed=0)
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    t = model.terms(x, y, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(t["total"], t["recon"] + 4.0 * t["kl"] + extras(model, t), atol=1e-3)


def test_gradients_flow_through_reparameterization(kind):
    """The reconstruction term alone must reach the encoder: z = mu + sigma * eps is differentiable."""
    model = model_for(kind, {"latent_dim": 3}, seed=0)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    model.terms(x, y)["recon"].mean().backward()
    enc_grads = [p.grad for name, p in model.named_parameters() if name.startswith("encoder")]
    assert all(g is not None for g in enc_grads)
    assert sum(float(g.abs().sum()) for g in enc_grads) > 0
    if model.stochastic:  # logvar gets gradient through sigma in the reparameterization
        mu, logvar = model.encode(x, y)
        logvar.retain_grad()
        z = model.reparameterize(mu, logvar)
        z.sum().backward()
        assert logvar.grad is not None and float(logvar.grad.abs().sum()) > 0


def test_training_lowers_test_loss(kind, small):
    train_split, test_split = small
    model = model_for(kind, {"latent_dim": 4}, seed=0)
    before = evaluate_split(model, test_split)["total"]
    events = list(
        train(
            model, train_split, test_split, TrainSettings(epochs=2, batch_size=64, seed=0), device=torch.device("cpu")
        )
    )
    after = events[-1].history[-1]["test_total"]
    assert after < before - 50, (before, after)
    assert [e.event for e in events if e.event != "step"] == ["start", "epoch", "epoch", "end"]


def test_checkpoint_round_trip(kind, tmp_path):
    model = model_for(kind, {"latent_dim": 3, "beta": 2.0}, seed=3)
    meta = build_metadata(model, dataset="mnist", split="s", seed=3, epochs=0)
    path = save_checkpoint(model, tmp_path / "m.safetensors", meta)
    loaded, meta2 = load_checkpoint(path)
    assert type(loaded) is get_model_class(kind) and meta2["model"] == kind
    assert loaded.config == model.config
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])
    model.eval()
    assert torch.allclose(loaded.embed(x, y), model.embed(x, y))
    assert torch.allclose(loaded.reconstruct(x, y), model.reconstruct(x, y))


@pytest.mark.parametrize(
    "bad",
    [
        {"latent_dim": 0},
        {"latent_dim": MAX_LATENT + 1},
        {"beta": -1.0},
        {"recon": "l1"},
        {"hidden": []},
        {"in_shape": [1, 28]},
        {"bogus": 1},
        {"latent_dim": "2"},
    ],
)
def test_config_validation(bad):
    with pytest.raises(ConfigError):
        build_model("vae-mlp", bad)


def test_interpolate_endpoints_and_slerp_differs():
    z0, z1 = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.0, 2.0, -1.0])
    lin = get_model_class("vae-mlp").interpolate(z0, z1, 7, "linear")
    sl = get_model_class("vae-mlp").interpolate(z0, z1, 7, "slerp")
    for path in (lin, sl):
        assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    assert not torch.allclose(lin[3], sl[3], atol=1e-3)


def test_every_kind_with_anchors_has_an_anchor_term(kind, mnist):
    """Anchors asked for through the pipeline reach the loss of every kind that has a KL to anchor."""
    from explorer.data import load_dataset
    from explorer.training.pipeline import RunSpec

    ds = load_dataset("mnist+label") if get_model_class(kind).needs_dataset else mnist
    spec = RunSpec(kind, ds.name, {"latent_dim": 2}, anchors=("donut", "stick"), anchor_rate=3.0)
    if not get_model_class(kind).stochastic:
        with pytest.raises(ConfigError, match="anchors"):
            spec.model_config(ds)
        return
    torch.manual_seed(0)
    model = build_model(kind, spec.model_config(ds))
    model.attach(ds)
    x, y = ds.test.images[:32], ds.test.labels[:32]
    t = model.terms(x, y, generator=torch.Generator().manual_seed(0))
    assert "anchor" in t
    mu, logvar = model.encode(x, y)
    shifted = kl_per_dim(mu - model.anchor_shift(x), logvar).sum(1) - kl_per_dim(mu, logvar).sum(1)
    assert torch.allclose(t["anchor"], shifted, atol=1e-4) and float(t["anchor"].detach().abs().sum()) > 0
    t["anchor"].sum().backward()  # the pull reaches the encoder
    assert sum(float(p.grad.abs().sum()) for n, p in model.named_parameters() if n.startswith("encoder.")) > 0


@pytest.mark.parametrize(
    "name",
    [
        "mnist-vae-mlp-z2",
        "mnist-vae-mlp-z2-anchored",
        "mnist-ae-mlp-z2",
        "mnist-cvae-mlp-z2",
        "fashion-mnist-vae-conv-z16",
        "mnist-fashion-joint-vae",
    ],
)
def test_shipped_checkpoints_score_what_their_training_recorded(name):
    """The loss terms, re-evaluated now, equal the test metrics written when each checkpoint was trained."""
    from explorer.analysis.evaluate import evaluate_split
    from explorer.catalog import resolve
    from explorer.data import load_dataset
    from explorer.errors import DatasetError

    model, meta = load_checkpoint(resolve(name))
    try:
        ds = load_dataset(meta["dataset"])
    except DatasetError as exc:
        pytest.skip(str(exc))
    model.attach(ds)
    now = evaluate_split(model, ds.test)
    recorded = meta["test_metrics"]
    assert set(now) == set(recorded)
    assert all(now[k] == pytest.approx(recorded[k], rel=1e-5, abs=1e-5) for k in now), (now, recorded)


def test_total_correlation_is_larger_for_dependent_codes():
    """β-TCVAE's estimate: codes whose two dimensions move together have more TC than independent ones."""
    from explorer.models.tcvae import total_correlation

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 1, generator=g), torch.randn(256, 1, generator=g)
    logvar = torch.full((256, 2), -4.0)  # sharp posteriors
    independent = total_correlation(torch.cat([a, b], 1), torch.cat([a, b], 1), logvar, 1000).mean()
    dependent = total_correlation(torch.cat([a, a], 1), torch.cat([a, a], 1), logvar, 1000).mean()
    assert float(dependent) > float(independent) + 1.0, (float(dependent), float(independent))


def test_tcvae_without_its_tc_weight_is_the_mlp_vae():
    """The new kind adds exactly one term: at tc_weight 0 its loss is vae-mlp's, same seed, same batch."""
    x = torch.rand(16, 1, 28, 28)
    tc = model_for("beta-tcvae", {"latent_dim": 3, "tc_weight": 0.0}, seed=5).terms(
        x, generator=torch.Generator().manual_seed(1)
    )
    plain = model_for("vae-mlp", {"latent_dim": 3}, seed=5).terms(x, generator=torch.Generator().manual_seed(1))
    assert set(tc) == set(plain) | {"tc"}
    assert all(torch.equal(tc[k], plain[k]) for k in plain)
