"""Dataset loaders: shapes, ranges, fixed splits, seeded subsets, user .npz files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.data import load_dataset, load_npz
from explorer.data.datasets import FASHION_DEBIAN_DIR
from explorer.errors import DatasetError


def _check(ds, n_train, n_test, shape):
    assert len(ds.train) == n_train and len(ds.test) == n_test
    assert tuple(ds.train.images.shape[1:]) == shape == ds.in_shape
    assert ds.train.images.dtype == torch.float32 and ds.train.labels.dtype == torch.int64
    assert 0 <= float(ds.train.images.min()) and float(ds.train.images.max()) <= 1
    assert len(ds.class_names) == 10 and set(ds.test.labels.tolist()) == set(range(10))


def test_bundled_mnist_split(mnist):
    _check(mnist, 9000, 1000, (1, 28, 28))
    assert float(mnist.train.images.max()) == 1.0  # scaled from uint8


def test_bundled_split_is_deterministic(mnist):
    from explorer.data.datasets import _mnist

    again = _mnist(None, False)
    assert torch.equal(again.test.labels, mnist.test.labels)
    assert torch.equal(again.test.images[:5], mnist.test.images[:5])


def test_seeded_subset(mnist):
    a, b, c = mnist.train.subset(100, 1), mnist.train.subset(100, 1), mnist.train.subset(100, 2)
    assert len(a) == 100 and torch.equal(a.labels, b.labels) and not torch.equal(a.images, c.images)
    assert mnist.split("all").images.shape[0] == 10_000


def test_full_mnist_from_folder(tmp_path, mnist):
    """A folder with the four IDX files gives the standard train/test split."""
    import gzip
    import shutil
    from importlib import resources

    src = resources.files("explorer.data") / "mnist"
    for prefix in ("train", "t10k"):  # reuse the bundled files as a stand-in 'full' set
        for kind in ("images-idx3", "labels-idx1"):
            with resources.as_file(src / f"t10k-{kind}-ubyte.gz") as p:
                with gzip.open(p) as fin, open(tmp_path / f"{prefix}-{kind}-ubyte", "wb") as fout:
                    shutil.copyfileobj(fin, fout)
    ds = load_dataset("mnist", str(tmp_path))
    assert len(ds.train) == 10_000 and len(ds.test) == 10_000 and ds.split_desc == "standard 60k/10k"


def test_digits():
    _check(load_dataset("digits"), 1437, 360, (1, 8, 8))


@pytest.mark.skipif(not FASHION_DEBIAN_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist():
    ds = load_dataset("fashion-mnist")
    _check(ds, 60_000, 10_000, (1, 28, 28))
    assert ds.class_names[0] == "T-shirt/top"


def test_fashion_missing_says_how_to_get_it(tmp_path):
    from explorer.data.datasets import _fashion

    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        _fashion(str(tmp_path), False)


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("cifar-1000")


@pytest.mark.parametrize("dtype", ["uint8", "float32", "bool"])
def test_npz_good(tmp_path, dtype):
    rng = np.random.default_rng(0)
    images = rng.random((50, 3, 16, 16))
    images = (
        (images * 255).astype(np.uint8)
        if dtype == "uint8"
        else (images > 0.5 if dtype == "bool" else images.astype(np.float32))
    )
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(50) % 4)
    ds = load_npz(tmp_path / "d.npz")
    assert ds.in_shape == (3, 16, 16) and len(ds.train) + len(ds.test) == 50 and ds.n_classes == 4
    assert 0 <= float(ds.train.images.min()) and float(ds.train.images.max()) <= 1


def test_npz_without_labels(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((10, 28, 28), np.uint8))
    ds = load_npz(tmp_path / "d.npz")
    assert ds.n_classes == 1 and int(ds.train.labels.max()) == 0
