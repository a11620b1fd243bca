"""/train's epoch snapshots: the newest is found, a broken one is skipped, and its view is built once per file."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from explorer.figures.trainview import newest_snapshot, read_run


def _snapshot(path, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = {
        "embedding": rng.normal(size=(30, 2)).astype(np.float32),
        "labels": rng.integers(0, 3, 30),
        "originals": rng.random((8, 1, 28, 28), dtype=np.float32),
        "recons": rng.random((8, 1, 28, 28), dtype=np.float32),
    }
    np.savez(path, **s)
    return s


@pytest.fixture
def job(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps([{"epoch": 1, "train_total": 3.0}]))
    for epoch in (2, 9, 10):  # numbered so that names sort as epochs do
        _snapshot(tmp_path / f"epoch_{epoch:03d}.npz", epoch)
    return tmp_path


def test_newest_snapshot_and_read_run(job):
    assert newest_snapshot(job).name == "epoch_010.npz"
    view = read_run(job)
    assert view.snapshot_epoch == 10 and view.snapshot["embedding"].shape == (30, 2)
    bare = read_run(job, snapshot=False)  # /train's curves tick reads no snapshot
    assert bare.snapshot is None and bare.history == view.history
    (job / "epoch_011.npz").write_bytes(b"not a zip")
    assert read_run(job).snapshot is None  # an unreadable newest file shows nothing rather than failing
    (empty := job / "empty").mkdir()
    assert newest_snapshot(empty) is None


def test_epoch_view_is_the_snapshot_drawn_once_per_file(job):
    from explorer.ui.resources import cached_epoch_view

    path = str(newest_snapshot(job))
    snap = np.load(path)
    fig, png = cached_epoch_view(path, ("a", "b", "c"), "epoch 10", 300)
    spec = fig.to_dict()
    xs = [
        np.frombuffer(base64.b64decode(t["x"]["bdata"]), t["x"]["dtype"]) for t in spec["data"]
    ]  # plotly's typed arrays
    assert sorted(np.concatenate(xs).tolist()) == sorted(snap["embedding"][:, 0].tolist())  # every point, once
    names = {t["name"] for t in spec["data"]}
    assert names == {("a", "b", "c")[c] for c in np.unique(snap["labels"])}
    assert spec["layout"]["title"]["text"] == "epoch 10" and spec["layout"]["height"] == 300
    image = np.asarray(Image.open(io.BytesIO(png)))
    assert image.shape[:2] == (2 * (2 * (28 + 2) + 2), 2 * (8 * (28 + 2) + 2))  # 2 rows of 8, scale 2
    top_left = image[4:60, 4:60, 0].astype(float) / 255  # the first original, upscaled twice
    assert np.allclose(top_left[::2, ::2], snap["originals"][0, 0], atol=1 / 255)
    assert cached_epoch_view(path, ("a", "b", "c"), "epoch 10", 300)[0] is fig  # shared, not rebuilt
    (job / "epoch_011.npz").write_bytes(b"not a zip")
    assert cached_epoch_view(str(job / "epoch_011.npz"), ("a",), "", 300) is None
