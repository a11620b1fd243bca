"""Anchor losses: the classic donut/stick loss exactly, the general form, and analysis helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.analysis.anchors import anchor_specs, default_targets, donut, stick, target_distances
from explorer.models import build_model
from explorer.training.pipeline import RunSpec


def test_builtin_prototypes_match_the_spec():
    d, s = donut(), stick()
    assert s.sum() == 28 * 6 and torch.all(s[:, 11:17] == 1) and s[:, :11].sum() == 0
    assert d[0, 7:21].sum() == 14 and d[0].sum() == 14 and d[26, 6:22].sum() == 16 and d[26].sum() == 16
    assert d[4].tolist() == [1.0 if (4 <= c <= 9 or 18 <= c <= 23) else 0.0 for c in range(28)]
    assert d[13].tolist() == [1.0 if (3 <= c <= 9 or 18 <= c <= 24) else 0.0 for c in range(28)]


def test_donut_stick_loss_reproduced_exactly(mnist):
    """Summed squared error + KL on mu + rate*s, s = (x.donut - x.stick)/sum(x), computed directly."""
    rate = 2.5
    cfg = RunSpec(config={"latent_dim": 2, "recon": "mse"}, anchors=("donut", "stick"), anchor_rate=rate).model_config(
        mnist
    )
    torch.manual_seed(0)
    model = build_model("vae-mlp", cfg)
    x = mnist.test.images[:16]
    gen = torch.Generator().manual_seed(3)
    terms = model.terms(x, generator=gen)

    mu, logvar = model.encode(x)
    z = mu + torch.randn(mu.shape, generator=torch.Generator().manual_seed(3)) * torch.exp(0.5 * logvar)
    x_hat = model.decode(z)
    flat = x.flatten(1)
    s = (flat @ donut().flatten() - flat @ stick().flatten()) / flat.sum(1)  # (B,)
    anchored_mu = mu + rate * s[:, None]  # broadcast over every latent dimension
    kl = -0.5 * (1 + logvar - anchored_mu.pow(2) - logvar.exp()).sum(1)
    expected = ((x_hat - x) ** 2).flatten(1).sum(1) + kl
    assert torch.allclose(terms["total"], expected, atol=1e-3)


def test_general_form_pulls_towards_targets():
    """With K anchors the KL minimum for mu is at rate * sum_k score_k * target_k."""
    protos = torch.eye(4)  # four one-pixel 'images' of 2x2
    cfg = {
        "in_shape": [1, 2, 2],
        "latent_dim": 2,
        "hidden": [8],
        "anchor_rate": 2.0,
        "anchors": [
            {"name": f"a{k}", "prototype": protos[k].tolist(), "target": t} for k, t in enumerate(default_targets(4, 2))
        ],
    }
    model = build_model("vae-mlp", cfg)
    x = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # matches anchor 0 fully
    assert torch.allclose(model.anchor_shift(x), 2.0 * torch.tensor([default_targets(4, 2)[0]]))


def test_anchor_specs_and_class_prototype(mnist):
    specs = anchor_specs(["donut", "class:1"], mnist, latent_dim=3)
    assert [s.name for s in specs] == ["donut", "class:1"] and specs[0].target == (-1.0, -1.0, -1.0)
    assert np.isclose(
        np.array(specs[1].prototype).reshape(28, 28)[:, 13:15].mean(),
        mnist.train.images[mnist.train.labels == 1].mean(0)[0, :, 13:15].mean().item(),
        atol=1e-5,
    )


def test_target_distances():
    mu = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [5.0, 5.0]])
    scores = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.5, 0.5]])
    d = target_distances(mu, scores, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), top=0.25)
    assert d == pytest.approx([0.0, 0.0])


@pytest.mark.slow
def test_cli_anchored_training_puts_ones_towards_plus_plus(tmp_path):
    """The issue's check: 5 epochs, z=2, --anchor donut,stick: mean(1) - mean(0) points along (+1, +1)."""
    import subprocess
    import sys

    cosines = []
    for seed in (1, 2):
        ck, codes = tmp_path / f"a{seed}.safetensors", tmp_path / f"a{seed}.npz"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "explorer",
                "train",
                "--model",
                "vae-mlp",
                "--latent-dim",
                "2",
                "--anchor",
                "donut,stick",
                "--epochs",
                "5",
                "--seed",
                str(seed),
                "--out",
                str(ck),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [sys.executable, "-m", "explorer", "encode", str(ck), "--split", "test", "--out", str(codes)],
            check=True,
            capture_output=True,
        )
        z = np.load(codes)
        d = z["mu"][z["labels"] == 1].mean(0) - z["mu"][z["labels"] == 0].mean(0)
        cosines.append(float(d @ np.ones(2) / np.linalg.norm(d) / np.sqrt(2)))
    assert min(cosines) >= 0.8, cosines


def test_anchored_pair_differs_only_in_anchors():
    from explorer.training.pipeline import anchored_pair

    pair = anchored_pair(("donut", "stick"), 3.0, 4, 11)
    a, p = pair["anchored"], pair["plain"]
    assert a.anchors == ("donut", "stick") and a.anchor_rate == 3.0 and not p.anchors
    assert (a.model, a.dataset, a.config, a.settings) == (p.model, p.dataset, p.config, p.settings)
    assert a.config["latent_dim"] == 2 and a.settings.seed == 11 and a.settings.epochs == 4


def test_decoded_plane_runs_top_left_to_bottom_right():
    from explorer.analysis.traverse import decode_codes
    from explorer.figures.anchorview import decoded_plane

    model = build_model("vae-mlp", {"latent_dim": 2})
    plane = decoded_plane(model, extent=2.0, side=3)
    assert plane.shape == (9, 1, 28, 28)
    corners = decode_codes(model, torch.tensor([[-2.0, 2.0], [2.0, -2.0]]))
    assert torch.allclose(plane[0], corners[0]) and torch.allclose(plane[-1], corners[1])
