"""Validate and load a user's ``.npz``: ``images`` (N,H,W) or (N,C,H,W), optional ``labels``.

Nothing is decompressed before the ``.npy`` headers inside the zip have been read and the
declared shape, dtype and size checked; the pixels are then streamed in chunks and converted
to float32 (uint8 stays uint8), so a small file that declares or inflates to gigabytes is
refused at the cost of a few kilobytes.
"""

from __future__ import annotations

import math
import stat
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from explorer.data.base import SPLIT_SEED, Dataset, seeded_split
from explorer.errors import DatasetError

MAX_NPZ_BYTES = 512 * 1024 * 1024  # the file on disk
MAX_VALUES = 64_000_000  # N*C*H*W after loading: 70k 28x28 images are 55M (220 MB as float32)
MAX_SIDE = 128
MAX_CLASSES = 1000
CHUNK_BYTES = 8 * 2**20  # decompress and convert this much at a time
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def check_image_shape(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(N, H, W) or (N, C, H, W) within the limits, as (N, C, H, W); DatasetError otherwise."""
    if len(shape) == 3:
        shape = (shape[0], 1, *shape[1:])
    if len(shape) != 4:
        raise DatasetError(f"images must be (N, H, W) or (N, C, H, W), got shape {shape}")
    n, c, h, w = shape
    if n < 2:
        raise DatasetError(f"need at least 2 images, got {n}")
    if c not in (1, 3) or not (4 <= h <= MAX_SIDE and 4 <= w <= MAX_SIDE):
        raise DatasetError(f"images must have 1 or 3 channels and sides of 4-{MAX_SIDE} px, got {shape}")
    if math.prod(shape) > MAX_VALUES:
        raise DatasetError(f"{math.prod(shape):,} pixel values is more than the {MAX_VALUES:,} supported")
    return n, c, h, w


def _check_image_dtype(dtype: np.dtype) -> None:
    if dtype.hasobject or (dtype != np.uint8 and dtype.kind not in "fb"):
        raise DatasetError(f"images must be uint8 or float in [0,1], got dtype {dtype}")


def _check_values(chunk: np.ndarray) -> np.ndarray:
    """A chunk of images as uint8 or float32 in [0,1]."""
    if chunk.dtype == np.uint8:
        return chunk
    if chunk.dtype == np.bool_:
        return chunk.astype(np.float32)
    chunk = chunk.astype(np.float32)
    if not np.isfinite(chunk).all():
        raise DatasetError("images contain NaN or infinite values")
    lo, hi = float(chunk.min()), float(chunk.max())
    if lo < 0 or hi > 1:
        hint = " (these look like 0-255 pixels stored as float: divide by 255 or store uint8)" if hi > 1.5 else ""
        raise DatasetError(f"float images must lie in [0,1], got values from {lo:g} to {hi:g}{hint}")
    return chunk


def check_images(images: np.ndarray) -> np.ndarray:
    """Return in-memory images as (N, C, H, W), uint8 or float32 in [0,1], or raise DatasetError."""
    _check_image_dtype(images.dtype)
    shape = check_image_shape(images.shape)
    return _check_values(images.reshape(shape))


def check_labels(labels: np.ndarray | None, n: int) -> np.ndarray:
    """Return labels (N,) int64 in [0, MAX_CLASSES), or zeros when absent."""
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    if labels.dtype.hasobject or labels.dtype.kind not in "iub":
        raise DatasetError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.reshape(-1)
    if len(labels) != n:
        raise DatasetError(f"{n} images but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        raise DatasetError(f"labels must lie in 0..{MAX_CLASSES - 1}")
    return labels.astype(np.int64)


def _read_header(f: IO[bytes], name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The declared shape and dtype of an .npy stream; leaves ``f`` at the first data byte."""
    try:
        version = np.lib.format.read_magic(f)
        if version not in _HEADER_READERS:
            raise DatasetError(f"{name}: unsupported .npy version {version}")
        shape, fortran, dtype = _HEADER_READERS[version](f)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise DatasetError(f"{name}: bad .npy header ({str(exc)[:80]})") from None
    if dtype.hasobject:
        raise DatasetError(f"{name} holds Python objects, which need pickle to load: refused")
    if fortran and len(shape) > 1:
        raise DatasetError(f"{name} is stored in Fortran order; save it with np.ascontiguousarray first")
    return tuple(shape), dtype


def _stream(zf: zipfile.ZipFile, member: str, shape: tuple[int, ...], dtype: np.dtype, convert) -> np.ndarray:
    """Read ``member``'s data in chunks of rows, passing each through ``convert`` into one array."""
    row_values = math.prod(shape[1:])
    row_bytes = max(1, dtype.itemsize * row_values)
    rows = max(1, CHUNK_BYTES // row_bytes)
    out: np.ndarray | None = None
    with zf.open(member) as f:
        _read_header(f, member)
        for start in range(0, shape[0], rows):
            k = min(rows, shape[0] - start)
            buf = f.read(k * row_bytes)
            if len(buf) != k * row_bytes:
                raise DatasetError(f"{member} is truncated: it holds less data than its header declares")
            chunk = convert(np.frombuffer(buf, dtype).reshape(k, *shape[1:]))
            if out is None:
                out = np.empty((shape[0], *chunk.shape[1:]), chunk.dtype)
            out[start : start + k] = chunk
    assert out is not None
    return out


def load_npz(path: str | Path) -> Dataset:
    """Load and validate a ``.npz`` file; never unpickles, and checks sizes before decompressing."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise DatasetError(f"{path} is not a file") from None
    if not stat.S_ISREG(st.st_mode):
        raise DatasetError(f"{path} is not a regular file")
    if st.st_size > MAX_NPZ_BYTES:
        raise DatasetError(f"{path} is larger than {MAX_NPZ_BYTES // 2**20} MB")
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n.removesuffix(".npy"): n for n in zf.namelist()}
            if "images" not in names:
                raise DatasetError(f"{path.name} has no 'images' array (it has {sorted(names)[:10]})")
            with zf.open(names["images"]) as f:
                shape, dtype = _read_header(f, "images")
            _check_image_dtype(dtype)
            n, c, h, w = check_image_shape(shape)
            labels = None
            if "labels" in names:
                with zf.open(names["labels"]) as f:
                    lshape, ldtype = _read_header(f, "labels")
                if ldtype.kind not in "iub" or math.prod(lshape) != n:
                    raise DatasetError(f"labels must be {n} integers, got shape {lshape} dtype {ldtype}")
                labels = _stream(zf, names["labels"], lshape, ldtype, lambda x: x.astype(np.int64))
            images = _stream(zf, names["images"], shape, dtype, lambda x: _check_values(x.reshape(-1, c, h, w)))
    except DatasetError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, KeyError, ValueError, NotImplementedError) as exc:
        raise DatasetError(f"{path.name} is not a readable .npz file: {str(exc)[:100]}") from None
    labels = check_labels(labels, n)
    n_classes = int(labels.max()) + 1
    n_test = max(1, n // 10)
    train, test = seeded_split(images, labels, n_test=n_test)
    return Dataset(
        f"npz:{path.name}",
        train,
        test,
        tuple(str(i) for i in range(n_classes)),
        str(path),
        f"seeded {SPLIT_SEED}: {n - n_test} train / {n_test} test",
    )
