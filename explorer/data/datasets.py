"""Dataset loaders. Every loader returns a ``Dataset`` with a deterministic train/test split."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from explorer.data.idx import find_idx, read_idx
from explorer.errors import DatasetError

SPLIT_SEED = 0  # fixed: the bundled MNIST split must be the same everywhere
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # fmt: skip
DIGIT_CLASSES = tuple(str(i) for i in range(10))
DATASET_NAMES = ("mnist", "fashion-mnist", "digits")


@dataclass(frozen=True)
class Split:
    """Images (N, C, H, W) float32 in [0,1] and labels (N,) int64."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset_indices(self, n: int | None, seed: int = 0) -> Tensor:
        """Indices of a seeded random subset of at most n items (all, in order, when n is None)."""
        if n is None or n >= len(self):
            return torch.arange(len(self))
        return torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]

    def subset(self, n: int | None, seed: int = 0) -> Split:
        """A seeded random subset of at most n items (the whole split when n is None)."""
        if n is None or n >= len(self):
            return self
        idx = self.subset_indices(n, seed)
        return Split(self.images[idx], self.labels[idx])


@dataclass(frozen=True)
class Dataset:
    """A named dataset with its two splits."""

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    source: str  # where the files came from, for the UI and metadata
    split_desc: str  # how train/test were made, recorded in checkpoints

    @property
    def in_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def split(self, which: str) -> Split:
        """``train``, ``test`` or ``all`` (train then test)."""
        if which == "train":
            return self.train
        if which == "test":
            return self.test
        if which == "all":
            return Split(
                torch.cat([self.train.images, self.test.images]), torch.cat([self.train.labels, self.test.labels])
            )
        raise DatasetError(f"split must be train, test or all, got {which!r}")


def _to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    x = torch.from_numpy(np.array(images, copy=True)).float()  # IDX buffers are read-only
    if images.dtype == np.uint8:
        x = x / 255.0
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    return Split(x.contiguous(), torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def _seeded_split(images: np.ndarray, labels: np.ndarray, n_test: int, seed: int = SPLIT_SEED) -> tuple[Split, Split]:
    perm = np.random.default_rng(seed).permutation(len(labels))
    test, train = perm[:n_test], perm[n_test:]
    return _to_split(images[train], labels[train]), _to_split(images[test], labels[test])


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
    return Dataset(name, _to_split(*train), _to_split(*test), classes, str(folder), "standard 60k/10k")


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
    train, test = _seeded_split(images, labels, n_test=1000)
    return Dataset("mnist", train, test, DIGIT_CLASSES, "bundled MNIST 10k test set",
                   f"bundled t10k, seeded {SPLIT_SEED}: 9000 train / 1000 test")  # fmt: skip


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
        "set EXPLORER_FASHION_MNIST_DIR to a folder with the four IDX files, or opt in to a download "
        "with --download (needs a network)."
    )


def _digits(data_dir: str | None, download: bool) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0,1]
    train, test = _seeded_split(images, d.target, n_test=360)
    return Dataset("digits", train, test, DIGIT_CLASSES, "scikit-learn bundled digits (8x8)",
                   f"seeded {SPLIT_SEED}: 1437 train / 360 test")  # fmt: skip


_LOADERS = {"mnist": _mnist, "fashion-mnist": _fashion, "digits": _digits}


@functools.lru_cache(maxsize=6)
def load_dataset(name: str, data_dir: str | None = None, download: bool = False) -> Dataset:
    """Load ``mnist``, ``fashion-mnist``, ``digits``, or a path to a ``.npz`` file.

    Cached per process: callers must not modify the returned tensors.
    """
    if name.endswith(".npz"):
        from explorer.data.npz import load_npz

        return load_npz(name)
    if "+" in name:
        from explorer.data.paired import PAIRED_NAMES, load_paired

        if name not in PAIRED_NAMES:
            raise DatasetError(f"unknown paired dataset {name!r}; choose {', '.join(PAIRED_NAMES)}")
        return load_paired(name, lambda n: load_dataset(n, None, download))
    if name not in _LOADERS:
        raise DatasetError(f"unknown dataset {name!r}; choose {', '.join(DATASET_NAMES)} or a .npz file")
    return _LOADERS[name](data_dir, download)


def load_npz(path: str | Path) -> Dataset:
    """A user's ``.npz`` (see ``explorer.data.npz``)."""
    from explorer.data.npz import load_npz as _load

    return _load(path)
