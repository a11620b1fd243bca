"""Traversal grids, start codes, exports, corruptions and per-image errors."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from explorer.analysis.corrupt import CORRUPTIONS, corrupt, recon_errors
from explorer.analysis.generate import prior_samples, reconstruct, reconstructions
from explorer.analysis.traverse import (
    code_of,
    decode_codes,
    dims_by_kl,
    gif_bytes,
    pick_index,
    traversal_codes,
    traversal_grid,
    traversal_values,
)
from explorer.training.train import make_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return make_model("vae-mlp", {"latent_dim": 4}, 0).eval()


def test_traversal_codes_change_one_dimension_per_row():
    z = torch.tensor([0.5, -1.0, 2.0])
    values = traversal_values(3.0, 5)
    codes = traversal_codes(z, [2, 0], values)
    assert codes.shape == (10, 3)
    assert torch.equal(codes[:5, 2], values) and torch.all(codes[:5, :2] == z[:2])
    assert torch.equal(codes[5:, 0], values) and torch.all(codes[5:, 1:] == z[1:])


def test_grid_is_one_batched_decode_equal_to_single_decodes(model):
    z = torch.randn(4)
    grid = traversal_grid(model, z, [0, 3], traversal_values(2, 3))
    assert grid.shape == (6, 1, 28, 28)
    single = decode_codes(model, traversal_codes(z, [3], traversal_values(2, 3))[1:2])
    assert torch.allclose(grid[4], single[0], atol=1e-6)


def test_dims_by_kl_ranks_descending(model, mnist):
    order, kl = dims_by_kl(model, mnist.test, limit=200)
    assert sorted(order) == list(range(4)) and all(kl[order[i]] >= kl[order[i + 1]] for i in range(3))


def test_pick_index_returns_that_class(mnist):
    for cls in (0, 7):
        i, j = pick_index(mnist.test, cls, 0), pick_index(mnist.test, cls, 1)
        assert int(mnist.test.labels[i]) == cls == int(mnist.test.labels[j]) and i != j


def test_code_of_matches_embed(model, mnist):
    assert torch.allclose(code_of(model, mnist.test, 5), model.embed(mnist.test.images[5:6])[0])


def test_gif_is_animated(model):
    frames = traversal_grid(model, torch.zeros(4), [1], traversal_values(3, 6))
    gif = Image.open(io.BytesIO(gif_bytes(frames)))
    assert gif.format == "GIF" and gif.n_frames == 10  # 6 forth + 4 back


def test_conditional_samples_one_row_per_class():
    cvae = make_model("cvae-mlp", {"latent_dim": 2}, 0).eval()
    images, labels = prior_samples(cvae, n=30, seed=1)
    assert images.shape == (30, 1, 28, 28) and labels.tolist() == [c for c in range(10) for _ in range(3)]


def test_reconstructions_are_the_cvae_decoding_its_own_labels(mnist):
    """/generate's reconstruction and denoising calls: the posterior mean decoded with each image's class."""
    cvae = make_model("cvae-mlp", {"latent_dim": 2}, 0).eval()
    x, x_hat, idx = reconstructions(cvae, mnist.test, n=6, seed=3)
    assert torch.equal(x, mnist.test.images[idx]) and x_hat.shape == x.shape
    with torch.no_grad():
        assert torch.allclose(x_hat, cvae.reconstruct(x, mnist.test.labels[idx]))
    other = reconstruct(cvae, x, (mnist.test.labels[idx] + 1) % 10)
    assert not torch.allclose(other, x_hat)  # the label is used, not dropped


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corruptions_change_the_image_and_stay_in_range(kind, mnist):
    x = mnist.test.images[:2]
    y = corrupt(x, kind, 0.4, seed=0)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1 and not torch.equal(x, y)
    assert torch.equal(corrupt(x, kind, 0.4, seed=0), y)  # the seed fixes the corruption
    assert not torch.equal(corrupt(x, kind, 0.4, seed=1), y)  # and another seed changes it


def test_recon_errors_zero_for_perfect_mse_and_positive_otherwise(mnist):
    x = mnist.test.images[:3]
    assert torch.allclose(recon_errors(x, x, "mse"), torch.zeros(3), atol=1e-6)
    assert torch.all(recon_errors(x, torch.full_like(x, 0.5), "bce") > 100)


def test_slider_ranges_use_the_prior_or_the_codes_percentiles():
    from explorer.analysis.traverse import has_prior, range_values, slider_ranges

    vae, ae = make_model("vae-mlp", {"latent_dim": 3}, 0), make_model("ae-mlp", {"latent_dim": 3}, 0)
    assert has_prior(vae) and not has_prior(ae)
    codes = torch.randn(1000, 3) * torch.tensor([1.0, 10.0, 0.1]) + 5
    assert (slider_ranges(vae, 2.5, codes) == [[-2.5, 2.5]] * 3).all()  # codes ignored: the prior sets them
    r = slider_ranges(ae, 2.5, codes)
    assert r.shape == (3, 2) and (r[:, 0] < 5).all() and (r[:, 1] > 5).all()
    assert r[1, 1] - r[1, 0] > 50 * (r[2, 1] - r[2, 0])  # each dimension its own spread
    assert abs(((codes[:, 0] >= r[0, 0]) & (codes[:, 0] <= r[0, 1])).float().mean() - 0.98) < 0.005
    with pytest.raises(ValueError):
        slider_ranges(ae, 2.5)
    v = range_values(r, 5)
    assert v.shape == (3, 5) and torch.allclose(v[:, 0], torch.tensor(r[:, 0], dtype=torch.float32))
    grid = traversal_codes(torch.zeros(3), [1, 2], v[1:])
    assert torch.equal(grid[:5, 1], v[1]) and torch.equal(grid[5:, 2], v[2])
