"""Drawings made into model inputs as MNIST digits were made, and carried in anchor names."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.analysis.anchors import anchor_specs, prototype
from explorer.data.drawing import center_drawing, decode_drawing, encode_drawing, short_name
from explorer.errors import ConfigError


def ink_box(img: torch.Tensor, threshold: float = 0.05) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels above ``threshold``, inclusive."""
    rows, cols = torch.nonzero(img.reshape(28, 28) > threshold, as_tuple=True)
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def mass_centre(img: torch.Tensor) -> tuple[float, float]:
    a = img.reshape(28, 28)
    idx = torch.arange(28, dtype=torch.float32)
    return float((a.sum(1) * idx).sum() / a.sum()), float((a.sum(0) * idx).sum() / a.sum())


def test_a_small_blob_in_a_corner_fills_the_20_pixel_box_at_the_centre():
    raw = np.zeros((28, 28), np.float32)
    raw[1:7, 2:5] = 1.0  # 6 tall, 3 wide, top-left
    out = center_drawing(raw)
    assert out.shape == (1, 28, 28) and 0 <= float(out.min()) and float(out.max()) <= 1
    top, bottom, left, right = ink_box(out)
    assert bottom - top + 1 == 20  # the longer side is scaled to 20
    assert 9 <= right - left + 1 <= 11  # the aspect ratio is kept: 3/6 of 20
    cy, cx = mass_centre(out)
    assert abs(cy - 14.0) <= 0.5 and abs(cx - 14.0) <= 0.5


def test_a_lopsided_shape_is_centred_by_mass_not_by_its_box():
    raw = np.zeros((28, 28), np.float32)
    raw[20:26, 0:20] = 1.0  # a heavy bar along the bottom...
    raw[0:20, 18:20] = 1.0  # ...and a thin stroke up the right: a mirrored L
    out = center_drawing(raw)
    top, bottom, left, right = ink_box(out)
    cy, cx = mass_centre(out)
    assert abs(cy - 14.0) <= 0.5 and abs(cx - 14.0) <= 0.5
    assert (top + bottom) / 2 < 13  # the box sits above the centre, since the mass is low in it


def test_mnist_digits_are_left_almost_as_they_are(mnist):
    """MNIST digits were made this way, so preparing one again moves almost nothing."""
    images = mnist.test.images[:50]
    diffs = [float((center_drawing(x) - x).abs().mean()) for x in images]
    moved = [float((torch.roll(x, 3, dims=2) - x).abs().mean()) for x in images]  # a 3-pixel shift, for scale
    assert np.median(diffs) < 0.25 * np.median(moved)


def test_a_blank_drawing_stays_blank():
    assert float(center_drawing(np.zeros(784)).abs().sum()) == 0.0


@pytest.mark.parametrize("bad", [np.zeros(100), np.full(784, np.nan), np.zeros((2, 784))])
def test_a_drawing_must_be_784_finite_values(bad):
    with pytest.raises(ConfigError):
        center_drawing(bad)


def test_an_encoded_drawing_decodes_to_its_16_grey_levels():
    g = np.random.default_rng(0)
    raw = g.random((28, 28)).astype(np.float32) * (g.random((28, 28)) > 0.7)
    code = encode_drawing(raw)
    assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")  # no ':', '@', ','
    back = decode_drawing(code).reshape(28, 28).numpy()
    assert np.abs(back - raw).max() <= 0.5 / 15 + 1e-6


@pytest.mark.parametrize(
    "code",
    [
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"plain bytes, not zlib").decode(),
        base64.urlsafe_b64encode(zlib.compress(bytes(100))).decode(),  # too few pixels
        base64.urlsafe_b64encode(zlib.compress(bytes(10_000_000))).decode(),  # a zlib bomb
        "A" * 5000,
    ],
)
def test_a_bad_drawing_code_is_refused(code):
    with pytest.raises(ConfigError):
        decode_drawing(code)


def test_a_drawn_anchor_carries_its_drawing_to_the_model_config(mnist):
    raw = np.zeros((28, 28), np.float32)
    raw[4:24, 12:16] = 1.0
    name = "drawn:" + encode_drawing(raw)
    assert torch.equal(prototype(name + "@1.5:-2", mnist), torch.from_numpy(raw.ravel()))
    spec = anchor_specs([name + "@1.5:-2", "donut"], mnist, 2)[0]
    assert spec.name == short_name(name) and len(spec.name) == len("drawn:") + 8
    assert spec.target == (1.5, -2.0) and spec.prototype == tuple(raw.ravel().tolist())


def test_a_drawn_anchor_is_listed_short_and_trains_with_its_drawing(mnist, monkeypatch):
    """/anchors lists a drawing by its short name; training gets the full drawn:CODE, hence its pixels."""
    from streamlit.testing.v1 import AppTest

    from explorer.training.pipeline import anchored_pair
    from explorer.ui import anchorpick

    raw = np.zeros((28, 28), np.float32)
    raw[4:24, 12:16] = 1.0
    full = "drawn:" + encode_drawing(raw)
    short = short_name(full) + "@-1.50:1.50"
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120).run()
    at.switch_page("pages/anchors.py")
    at.session_state[anchorpick.CUSTOM_KEY] = [short]
    at.session_state[anchorpick.DRAWN_KEY] = {short_name(full): full}
    at.session_state["anchors_names"] = ["donut", short]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m for m in at.multiselect if m.key == "anchors_names"][0].value == ["donut", short]

    monkeypatch.setattr(anchorpick.st, "session_state", {anchorpick.DRAWN_KEY: {short_name(full): full}})
    names = tuple(anchorpick.full_name(a) for a in ("donut", short))  # what the page hands to training
    assert names == ("donut", full + "@-1.50:1.50")
    drawn = anchored_pair(names, 3.0, 1, 0)["anchored"].model_config(mnist)["anchors"][1]
    assert drawn["name"] == short_name(full) and drawn["prototype"] == raw.ravel().tolist()
    assert drawn["target"] == [-1.5, 1.5]
