"""The course's core demonstrations: reparameterisation, collapse, clustering, architecture, sizes, priors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.analysis.arithmetic import (
    decoded_elbo_reference,
    interpolate,
    path_elbo,
    path_log_prior,
    typical_log_prior,
)
from explorer.checkpoint import load_for_use
from explorer.course import demos
from explorer.course.steps import STEPS
from tests.helpers import model_for


def test_reparameterise_draws_z_from_mu_and_sigma_and_routes_the_gradient(small):
    train, _ = small
    model = model_for("vae-mlp", {"latent_dim": 2}, seed=0)
    x = train.images[0]
    a, b, c = (demos.reparameterise(model, x, seed=s) for s in (3, 3, 4))
    torch.testing.assert_close(a.z, a.mu + a.sigma * a.eps)
    torch.testing.assert_close(a.eps, b.eps)  # the seed fixes eps
    assert not torch.equal(a.eps, c.eps)
    torch.testing.assert_close(a.mu, c.mu)  # the encoder does not depend on the seed
    # eps is a constant: d/dmu = d/dz and d/dsigma = d/dz * eps
    torch.testing.assert_close(a.grad_mu, a.grad_z)
    torch.testing.assert_close(a.grad_sigma, a.grad_z * a.eps)
    assert a.cloud.shape == (200, 2)
    spread = (a.cloud - a.mu).std(0)
    assert torch.allclose(spread, a.sigma, rtol=0.25)
    assert a.decoded.shape == x.shape


def test_collapse_message_names_inactive_dimensions():
    assert demos.collapse_message(np.array([1.2, 0.8])) is None
    partial = demos.collapse_message(np.array([1.2, 0.001, 0.0]))
    assert partial and "2 of 3" in partial
    assert "Posterior collapse" in demos.collapse_message(np.array([0.001, 0.002]))
    assert demos.collapse_message(np.zeros(2), stochastic=False) is None
    assert demos.active_dims(np.array([0.5, 0.005, 0.02])).tolist() == [0, 2]


def test_kmeans_finds_separated_blobs_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    blobs = centres[labels] + rng.normal(0, 0.5, (200, 2))
    good = demos.kmeans_clusters(blobs, labels, k=4)
    assert good.ari > 0.95 and good.nmi > 0.95
    assert good.confusion.sum() == 200 and sorted(good.cluster_class.tolist()) == [0, 1, 2, 3]
    noise = demos.kmeans_clusters(rng.normal(size=(200, 2)), labels, k=4)
    assert noise.ari < 0.1


@pytest.mark.parametrize("kind", ["vae-mlp", "ae-mlp", "cvae-mlp", "vae-conv", "joint-vae"])
def test_architecture_follows_the_config(kind):
    model = model_for(kind, {"latent_dim": 5})
    blocks = demos.architecture(model)
    parts = [b.part for b in blocks]
    assert parts[0] == "input" and parts[-1] == "output"
    assert ("posterior" in parts) == model.stochastic
    latent = [b for b in blocks if b.part == "latent"]
    assert len(latent) == 1 and latent[0].size == "5"
    if kind != "vae-conv":
        assert [b.size for b in blocks if b.part == "encoder"] == [str(h) for h in model.config.hidden]
    assert sum(b.part == "input" for b in blocks) == 1 + (kind in ("cvae-mlp", "joint-vae"))


def test_course_checkpoints_and_latent_size_rows(small):
    _, test = small
    found = demos.course_checkpoints()
    assert {f"mnist-vae-z{z}" for z in demos.COURSE_SIZES} | {"mnist-ae-z784", "mnist-vae-z2-mse"} <= set(found)
    assert sum(p.stat().st_size for p in found.values()) < 8 * 2**20
    names = ("mnist-vae-z1", "mnist-vae-z16", "mnist-ae-z784")
    rows = [demos.latent_size_row(load_for_use(found[n])[0], test.subset(200)) for n in names]
    assert [r["z"] for r in rows] == [1, 16, 784]
    assert rows[1]["recon"] < rows[0]["recon"]  # more latent room, better reconstructions
    assert rows[1]["kl"] > rows[0]["kl"]  # ... paid for with more KL
    assert rows[2]["recon"] < rows[1]["recon"] and rows[2]["kl"] == 0  # the AE pays no KL at all
    assert 1 <= rows[1]["active"] <= 16
    assert rows[0]["elbo"] == pytest.approx(rows[0]["recon"] + rows[0]["kl"], rel=1e-5)


def test_aggregate_posterior_and_moment_gap():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(3000, 2)).astype(np.float32) * 0.1
    logvar = np.full_like(mu, np.log(0.99))
    q = demos.aggregate_posterior(mu, logvar, 3000)
    assert demos.moment_gap(q) < 0.02  # moments almost those of N(0, I)
    shifted = demos.aggregate_posterior(mu + 3, logvar, 3000)
    assert demos.moment_gap(shifted) > 5


def test_slerp_keeps_log_prior_higher_than_lerp_in_high_dims():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, generator=g), torch.randn(64, generator=g)
    lp_lin = path_log_prior(interpolate(z0, z1, 9, "linear"))
    lp_sl = path_log_prior(interpolate(z0, z1, 9, "slerp"))
    assert lp_lin[0] == pytest.approx(lp_sl[0], abs=1e-4)
    assert lp_lin[4] > lp_sl[4] + 5  # the straight line crosses the dense centre ...
    lo, hi = typical_log_prior(64)
    assert lp_lin[4] > hi  # ... which no prior sample visits: above the typical band
    assert all(lo <= v <= hi for v in lp_sl)  # slerp stays in the typical shell
    samples = path_log_prior(torch.randn(4000, 64, generator=g))
    assert 0.93 < np.mean((samples >= lo) & (samples <= hi)) < 0.97
    expected = -0.5 * float(z0 @ z0) - 32 * np.log(2 * np.pi)
    assert lp_lin[0] == pytest.approx(expected, rel=1e-5)


def test_decoded_reference_measures_what_the_path_measures(mnist):
    model = load_for_use(demos.course_checkpoints()["mnist-vae-z2"])[0]
    test = mnist.test.subset(300)
    ref = decoded_elbo_reference(model, test, n=300)
    mu = torch.from_numpy(demos.encode_split(model, test.subset(20, seed=5))[0])
    at_codes = path_elbo(model, mu)
    real = float(np.median(demos.per_sample_terms(model, test)["elbo"].numpy()))
    assert abs(np.median(at_codes) - ref) < abs(np.median(at_codes) - real)


def test_steps_are_complete():
    assert 15 <= len(STEPS) <= 19
    for s in STEPS:
        assert s.title and s.formula and s.try_this and s.page.startswith("/")
        assert 2 <= s.body.count(". ") + 1 <= 6, s.key
    assert len({s.key for s in STEPS}) == len(STEPS)


def test_nearest_across_ranks_the_other_modality_by_distance():
    from explorer.analysis.multimodal import nearest_across

    a = np.array([[0.0, 0.0], [5.0, 5.0]])
    b = np.array([[4.0, 4.0], [0.1, 0.0], [9.0, 9.0], [0.0, 0.5]])
    rows, dist = nearest_across(a, 0, b, 3)
    assert rows.tolist() == [1, 3, 0] and np.all(np.diff(dist) >= 0)
    assert nearest_across(a, 1, b, 1)[0].tolist() == [0]


def test_kl_share_dims():
    assert demos.kl_share_dims(np.array([0.0, 9.0, 1.0])) == 1
    assert demos.kl_share_dims(np.array([5.0, 4.0, 1.0])) == 2
    assert demos.kl_share_dims(np.ones(10)) == 9
    assert demos.kl_share_dims(np.zeros(3)) == 0


@pytest.mark.parametrize(("model", "warned"), [("mnist-vae-mlp-z16", True), ("mnist-vae-mlp-z2", False)])
def test_home_says_when_dimensions_have_collapsed(model, warned):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.session_state["sidebar_model"] = model
    at.run()
    assert not at.exception
    assert any("posterior collapse" in w.value for w in at.warning) == warned


@pytest.mark.parametrize("step", [1, 5, 8, 15])
def test_learn_step_runs_and_links_its_page(step):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.query_params["step"] = str(step)
    at.run()
    at.switch_page("pages/learn.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.header[0].value == f"{step}. {STEPS[step - 1].title}"
    assert len(at.latex) == 1


def test_cross_generate_spread_widens_the_draws(small):
    from explorer.analysis.multimodal import cross_generate, posterior_spread

    model = model_for("joint-vae", {"latent_dim": 4}, seed=0)
    x = small[0].images[:1]
    one, wide = cross_generate(model, 0, x, n=16, seed=1), cross_generate(model, 0, x, n=16, seed=1, spread=3.0)
    torch.testing.assert_close(one[0], wide[0])  # the first is decoded from mu either way
    assert wide[1:].std(0).mean() > one[1:].std(0).mean()
    sig, gap = posterior_spread(np.zeros((5, 2)) + np.arange(5)[:, None], np.full((5, 2), np.log(0.25)))
    assert sig == pytest.approx(0.5) and gap == pytest.approx(np.arange(5).std())
