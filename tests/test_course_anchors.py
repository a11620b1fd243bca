"""Anchors as the course needs them: any image as prototype, chosen targets, text and warnings that follow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.analysis.anchors import anchor_specs, describe, short_run_warning, split_target
from explorer.errors import ConfigError
from explorer.figures.anchorview import anchor_figure


def test_image_prototype_with_its_own_target(mnist):
    a, b, c = anchor_specs(["image:5@1.5:-2", "stick", "class:3@0.5:0.5"], mnist, 3)
    assert a.name == "image:5" and a.target == (1.5, -2.0, 0.0)
    torch.testing.assert_close(torch.tensor(a.prototype), mnist.train.images[5].flatten())
    assert c.name == "class:3" and c.target == (0.5, 0.5, 0.0)
    assert b.target != a.target  # stick keeps its default target
    for bad in (["image:99999999"], ["stick@a:b"], ["stick@1:2:3:4"], ["image:x"]):
        with pytest.raises(ConfigError):
            anchor_specs(bad, mnist, 3)
    assert split_target("donut") == ("donut", None)


def test_description_follows_the_anchors_chosen():
    text = describe(["donut", "stick", "class:3"], torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 2.0]]))
    assert "class:3" in text and "(+0.0, +2.0)" in text and "(-1.0, -1.0)" in text
    assert "corner" not in text


def test_short_run_warning_names_the_anchors_that_failed():
    msg = short_run_warning(["donut", "stick", "class:3"], [1.0, 2.5, 3.0], [1.5, 2.0, 2.9], epochs=2)
    assert msg and "2 of 3" in msg and "stick" in msg and "class:3" in msg and "donut" not in msg
    assert short_run_warning(["donut", "stick"], [1.0, 1.0], [2.0, 2.0], epochs=2) is None
    assert short_run_warning(["donut"], [1.0], None, epochs=3)
    assert short_run_warning(["donut"], [1.0], None, epochs=30) is None


def test_colour_bar_only_where_a_difference_means_something():
    rng = np.random.default_rng(0)
    mu, t = rng.normal(size=(50, 2)), np.zeros((3, 2))
    two = anchor_figure(mu, rng.random((50, 2)), t[:2], ["donut", "stick"])
    assert two.data[0].marker.colorbar.title.text == "donut − stick score"
    three = anchor_figure(mu, rng.random((50, 3)), t, ["donut", "stick", "class:3"])
    assert not any(getattr(tr.marker, "showscale", None) for tr in three.data)
    assert {tr.name for tr in three.data} >= {"most like donut", "most like stick", "most like class:3"}
