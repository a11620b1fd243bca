"""The shipped course models show what the latent-size lesson claims: spare dimensions go inactive, the AE wins on recon."""

from __future__ import annotations

import pytest

from explorer.checkpoint import load_for_use
from explorer.course import demos
from explorer.figures.courseview import sweep_figure


@pytest.fixture(scope="module")
def sweep(mnist) -> tuple[list[dict], list[dict]]:
    """The sweep as /learn computes it, on the whole test split."""
    rows, ae = [], []
    for name, path in demos.course_checkpoints().items():
        if not name.endswith("mse"):
            (ae if "-ae-" in name else rows).append(demos.latent_size_row(load_for_use(path)[0], mnist.test))
    return rows, ae


def test_large_vaes_switch_off_dimensions_they_do_not_need(sweep):
    by_z = {r["z"]: r for r in sweep[0]}
    assert sorted(by_z) == list(demos.COURSE_SIZES)
    assert by_z[64]["active"] < 64 and by_z[32]["active"] < 32
    assert by_z[64]["kl90"] <= by_z[64]["active"]  # 90% of the KL sits in the active dimensions
    assert by_z[1]["active"] == 1  # a single dimension is always needed


def test_ae_as_wide_as_its_input_reconstructs_better_than_z2(sweep, mnist):
    (ae,) = sweep[1]
    model = load_for_use(demos.course_checkpoints()[f"mnist-ae-z{demos.COURSE_AE}"])[0]
    assert model.latent_dim == ae["z"] == mnist.test.images[0].numel() == demos.COURSE_AE
    z2 = next(r for r in sweep[0] if r["z"] == 2)
    assert ae["recon"] < z2["recon"] and ae["kl"] == 0


def test_sweep_figure_states_the_measured_counts(sweep):
    rows, ae = sweep
    fig = sweep_figure(rows, ae)
    title = fig.layout.title.text
    assert title == demos.sweep_summary(rows, ae)
    last = next(r for r in rows if r["z"] == 64)
    assert f"z = 64: {last['active']} of 64 dimensions active" in title
    assert f"AE z = {demos.COURSE_AE}" in title
    vae_active = next(t for t in fig.data if t.name == "VAE" and t.text is not None)
    assert list(vae_active.text) == [str(r["active"]) for r in rows]
    assert demos.COURSE_AE in fig.layout.xaxis4.tickvals
