"""Dataset types: ``Split`` (images and labels) and ``Dataset`` (a named pair of splits)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from explorer.errors import DatasetError

SPLIT_SEED = 0  # fixed: the bundled MNIST split must be the same everywhere


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


def to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    x = torch.from_numpy(np.array(images, copy=True)).float()  # IDX buffers are read-only
    if images.dtype == np.uint8:
        x = x / 255.0
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    return Split(x.contiguous(), torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def seeded_split(images: np.ndarray, labels: np.ndarray, n_test: int, seed: int = SPLIT_SEED) -> tuple[Split, Split]:
    perm = np.random.default_rng(seed).permutation(len(labels))
    test, train = perm[:n_test], perm[n_test:]
    return to_split(images[train], labels[train]), to_split(images[test], labels[test])
