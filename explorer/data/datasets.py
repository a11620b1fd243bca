"""Dataset loaders. Every loader returns a ``Dataset`` with a deterministic train/test split."""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

import numpy as np

from explorer.data.base import SPLIT_SEED, Dataset, seeded_split, to_split
from explorer.data.idx import find_idx, read_idx
from explorer.data.npz import load_npz
from explorer.data.paired import PAIRED_NAMES, load_paired
from explorer.errors import DatasetError

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))
DATASET_NAMES = ("mnist", "fashion-mnist", "digits")
DATASET_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "digits": (1, 8, 8)}  # (C, H, W)


def datasets_of_shape(shape: tuple[int, ...] | list[int]) -> list[str]:
    """The built-in datasets whose images are ``shape`` (C, H, W), without loading any."""
    return [name for name in DATASET_NAMES if DATASET_SHAPES[name] == tuple(shape)]


def _read_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    img, lab = find_idx(folder, f"{prefix}-images-idx3-ubyte"), find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if img is None or lab is None:
        return None
    images, labels = read_idx(img), read_idx(lab)
    if len(images) != len(labels):
        raise DatasetError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _standard(folder: Path, name: str, classes: tuple[str, ...]) -> Dataset | None:
    """The standard 60k/10k split from a folder of the four IDX files, if they are all there."""
    train, test = _read_pair(folder, "train"), _read_pair(folder, "t10k")
    if train is None or test is None:
        return None
    return Dataset(name, to_split(*train), to_split(*test), classes, str(folder), "standard 60k/10k")


def _torchvision_dir(name: str, download: bool) -> Path | None:
    root = Path(os.environ.get("EXPLORER_HOME", Path.home() / ".cache" / "latent-explorer")) / "torchvision"
    cls_name = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[name]
    raw = root / cls_name / "raw"
    if download and not raw.is_dir():
        import torchvision  # only on an explicit opt-in; needs a network

        try:
            getattr(torchvision.datasets, cls_name)(str(root), download=True)
        except Exception as exc:  # noqa: BLE001 - any network failure becomes one message
            raise DatasetError(f"could not download {name}: {exc}") from None
    return raw if raw.is_dir() else None


def _mnist(data_dir: str | None, download: bool) -> Dataset:
    folder = data_dir or os.environ.get("EXPLORER_MNIST_DIR")
    candidates = [Path(folder)] if folder else []
    tv = _torchvision_dir("mnist", download)
    candidates += [tv] if tv else []
    for c in candidates:
        full = _standard(c, "mnist", DIGIT_CLASSES)
        if full is not None:
            return full
    if folder:
        raise DatasetError(f"no MNIST IDX files (train-*/t10k-*) in {folder}")
    bundled = resources.files("explorer.data") / "mnist"
    with resources.as_file(bundled) as path:
        images, labels = _read_pair(Path(path), "t10k")  # type: ignore[misc]
    train, test = seeded_split(images, labels, n_test=1000)
    return Dataset(
        "mnist",
        train,
        test,
        DIGIT_CLASSES,
        "bundled MNIST 10k test set",
        f"bundled t10k, seeded {SPLIT_SEED}: 9000 train / 1000 test",
    )


def _fashion(data_dir: str | None, download: bool) -> Dataset:
    folder = data_dir or os.environ.get("EXPLORER_FASHION_MNIST_DIR")
    candidates = [Path(folder)] if folder else [FASHION_DEBIAN_DIR]
    tv = _torchvision_dir("fashion-mnist", download)
    candidates += [tv] if tv else []
    for c in candidates:
        if c.is_dir():
            ds = _standard(c, "fashion-mnist", FASHION_CLASSES)
            if ds is not None:
                return ds
    raise DatasetError(
        "Fashion-MNIST is not installed. Install it with `apt-get install dataset-fashion-mnist`, "
        "set EXPLORER_FASHION_MNIST_DIR (or pass --data-dir) to a folder with the four IDX files, or opt in to "
        "a download from Python with load_dataset('fashion-mnist', download=True) (needs a network)."
    )


def _digits(data_dir: str | None, download: bool) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0,1]
    train, test = seeded_split(images, d.target, n_test=360)
    return Dataset(
        "digits",
        train,
        test,
        DIGIT_CLASSES,
        "scikit-learn bundled digits (8x8)",
        f"seeded {SPLIT_SEED}: 1437 train / 360 test",
    )


_LOADERS = {"mnist": _mnist, "fashion-mnist": _fashion, "digits": _digits}


@functools.lru_cache(maxsize=6)
def load_dataset(name: str, data_dir: str | None = None, download: bool = False) -> Dataset:
    """Load ``mnist``, ``fashion-mnist``, ``digits``, or a path to a ``.npz`` file.

    Cached per process: callers must not modify the returned tensors.
    """
    if name.endswith(".npz"):
        return load_npz(name)
    if "+" in name:
        if name not in PAIRED_NAMES:
            raise DatasetError(f"unknown paired dataset {name!r}; choose {', '.join(PAIRED_NAMES)}")
        return load_paired(name, lambda n: load_dataset(n, None, download))
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; choose {', '.join(DATASET_NAMES)} or a .npz file")
    return _LOADERS[name](data_dir, download)
