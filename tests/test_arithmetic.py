"""Latent arithmetic, attribute vectors, saved vectors and interpolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.analysis.arithmetic import (
    analogy,
    attribute_vector,
    codes_of,
    interpolate,
    load_vectors,
    nearest_rows,
    path_elbo,
    save_vector,
    strength_codes,
)
from explorer.catalog import shipped_dir
from explorer.checkpoint import load_checkpoint
from explorer.errors import ExplorerError


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(shipped_dir() / "mnist-vae-mlp-z16.safetensors")[0]


def test_analogy_and_nearest(model, mnist):
    z = codes_of(model, mnist.test, [0, 1, 2])
    assert torch.allclose(analogy(z[0], z[1], z[2]), z[0] - z[1] + z[2])
    codes = codes_of(model, mnist.test, list(range(100))).numpy()
    assert nearest_rows(codes, codes[42], 3)[0] == 42


def test_sampled_operands_differ_from_means_but_are_seeded(model, mnist):
    mu = codes_of(model, mnist.test, [5])
    s1, s2 = (
        codes_of(model, mnist.test, [5], sample=True, seed=1),
        codes_of(model, mnist.test, [5], sample=True, seed=1),
    )
    assert torch.equal(s1, s2) and not torch.allclose(s1, mu)


def test_attribute_vector_is_difference_of_means():
    codes = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 2.0]])
    assert np.allclose(attribute_vector(codes, [0, 1], [2, 3]), [1.0, -3.0])
    with pytest.raises(ExplorerError):
        attribute_vector(codes, [], [1])


def test_class_vector_moves_codes_towards_that_class(model, mnist):
    codes = codes_of(model, mnist.test, list(range(len(mnist.test)))).numpy()
    labels = mnist.test.labels.numpy()
    v = attribute_vector(codes, np.flatnonzero(labels == 1), np.flatnonzero(labels == 0))
    zero = codes[np.flatnonzero(labels == 0)[0]]
    moved = strength_codes(torch.from_numpy(zero), torch.from_numpy(v), torch.tensor([0.0, 1.0])).numpy()
    ones_mean = codes[labels == 1].mean(0)
    assert np.linalg.norm(moved[1] - ones_mean) < np.linalg.norm(moved[0] - ones_mean)


def test_linear_and_slerp_paths_differ_and_elbo_along_them(model, mnist):
    z0, z1 = codes_of(model, mnist.test, [0, 1])
    lin, sl = interpolate(z0, z1, 7, "linear"), interpolate(z0, z1, 7, "slerp")
    assert lin.shape == sl.shape == (7, 16) and not torch.allclose(lin[3], sl[3], atol=1e-3)
    elbo = path_elbo(model, lin)
    assert elbo.shape == (7,) and np.isfinite(elbo).all() and (elbo > 0).all()


def test_saved_vectors_round_trip_and_reject_bad_names(tmp_path):
    name = save_vector("abc123", "thick / strokes!", np.ones(4, np.float32))
    assert name == "thick  strokes" and set(load_vectors("abc123", 4)) == {name}
    assert load_vectors("abc123", 5) == {}  # wrong latent size is ignored
    with pytest.raises(ExplorerError):
        save_vector("abc123", "///", np.ones(4))
    with pytest.raises(ExplorerError):
        save_vector("abc123", "nan", np.array([np.nan, 1.0]))
