"""Validate and load a user's ``.npz``: ``images`` (N,H,W) or (N,C,H,W), optional ``labels``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from explorer.data.base import SPLIT_SEED, Dataset, seeded_split
from explorer.errors import DatasetError

MAX_NPZ_BYTES = 512 * 1024 * 1024
MAX_VALUES = 200_000_000  # N*C*H*W: 70k 28x28 images are 55M
MAX_SIDE = 128
MAX_CLASSES = 1000


def check_images(images: np.ndarray) -> np.ndarray:
    """Return images as (N, C, H, W), uint8 or float32 in [0,1], or raise DatasetError."""
    if images.dtype == object or images.dtype.kind in "USV":
        raise DatasetError(f"images must be numbers, got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DatasetError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    if n < 2:
        raise DatasetError(f"need at least 2 images, got {n}")
    if c not in (1, 3) or not (4 <= h <= MAX_SIDE and 4 <= w <= MAX_SIDE):
        raise DatasetError(f"images must have 1 or 3 channels and sides of 4-{MAX_SIDE} px, got {images.shape}")
    if images.size > MAX_VALUES:
        raise DatasetError(f"{images.size:,} pixel values is more than the {MAX_VALUES:,} supported")
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.bool_:
        return images.astype(np.float32)
    if images.dtype.kind != "f":
        raise DatasetError(f"images must be uint8 or float in [0,1], got dtype {images.dtype}")
    if not np.isfinite(images).all():
        raise DatasetError("images contain NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        hint = " (these look like 0-255 pixels stored as float: divide by 255 or store uint8)" if hi > 1.5 else ""
        raise DatasetError(f"float images must lie in [0,1], got values from {lo:g} to {hi:g}{hint}")
    return images.astype(np.float32)


def check_labels(labels: np.ndarray | None, n: int) -> np.ndarray:
    """Return labels (N,) int64 in [0, MAX_CLASSES), or zeros when absent."""
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    if labels.dtype == object or labels.dtype.kind not in "iub":
        raise DatasetError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.reshape(-1)
    if len(labels) != n:
        raise DatasetError(f"{n} images but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        raise DatasetError(f"labels must lie in 0..{MAX_CLASSES - 1}")
    return labels.astype(np.int64)


def load_npz(path: str | Path) -> Dataset:
    """Load and validate a ``.npz`` file; never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} is not a file")
    if path.stat().st_size > MAX_NPZ_BYTES:
        raise DatasetError(f"{path} is larger than {MAX_NPZ_BYTES // 2**20} MB")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise DatasetError(f"{path.name} has no 'images' array (it has {z.files})")
            images = z["images"]
            labels = z["labels"] if "labels" in z.files else None
    except DatasetError:
        raise
    except ValueError as exc:  # object arrays need pickle: refused
        raise DatasetError(f"{path.name}: {exc}") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise DatasetError(f"{path.name} is not a readable .npz file: {exc}") from None
    images = check_images(images)
    labels = check_labels(labels, len(images))
    n_classes = int(labels.max()) + 1
    n_test = max(1, len(images) // 10)
    train, test = seeded_split(images, labels, n_test=n_test)
    return Dataset(f"npz:{path.name}", train, test, tuple(str(i) for i in range(n_classes)), str(path),
                   f"seeded {SPLIT_SEED}: {len(images) - n_test} train / {n_test} test")  # fmt: skip
