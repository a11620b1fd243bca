"""Hand-drawn 28x28 images made into model inputs, and carried inside anchor names.

MNIST digits were made by fitting each NIST stroke image into a 20x20 box (aspect ratio kept,
anti-aliased), then placing it in a 28x28 field so that its centre of mass lies at the centre.
``center_drawing`` does the same to a drawing, so a model sees it as it saw its training digits.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

import numpy as np
import torch
import torch.nn.functional as F

from explorer.errors import ConfigError

SIDE = 28  # the drawing grid and the model input are SIDE x SIDE
BOX = 20  # MNIST's size-normalising box
LEVELS = 15  # an encoded drawing keeps 16 grey levels (4 bits a pixel)
PREFIX = "drawn:"  # anchor names of drawn prototypes: 'drawn:CODE' or 'drawn:CODE@x:y'
_PACKED = SIDE * SIDE // 2  # bytes of a packed drawing
_MAX_CODE = 4 * ((_PACKED + 64) // 3 + 1)  # base64 of the packed bytes, zlib's worst case included


def as_grid(pixels: object) -> np.ndarray:
    """784 values (any shape) as a (28, 28) float32 array clipped to [0, 1]; refuses any other size or NaN."""
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.size != SIDE * SIDE:
        raise ConfigError(f"a drawing has {SIDE * SIDE} pixels, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ConfigError("a drawing has non-finite pixels")
    return np.clip(arr.reshape(SIDE, SIDE), 0.0, 1.0)


def center_drawing(pixels: object, threshold: float = 0.05) -> torch.Tensor:
    """A raw drawing (784 values in [0, 1]) prepared as MNIST digits were: (1, 28, 28).

    The ink (pixels above ``threshold``) is cropped to its bounding box, scaled so its longer side
    is 20 pixels (aspect ratio kept, anti-aliased), and placed so that its centre of mass is at the
    centre of the 28x28 field. A blank drawing stays blank.
    """
    img = torch.from_numpy(as_grid(pixels))  # (28, 28)
    rows, cols = torch.nonzero(img > threshold, as_tuple=True)
    out = torch.zeros(1, SIDE, SIDE)
    if rows.numel() == 0:
        return out
    crop = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # (h, w)
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    box = F.interpolate(crop[None, None], size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0]
    box = box.clamp(0, 1)  # (≤20, ≤20)
    mass = box.sum()
    if mass <= 0:
        return out
    ys, xs = torch.arange(box.shape[0], dtype=torch.float32), torch.arange(box.shape[1], dtype=torch.float32)
    cy, cx = float((box.sum(1) * ys).sum() / mass), float((box.sum(0) * xs).sum() / mass)
    top, left = round(SIDE / 2 - cy), round(SIDE / 2 - cx)  # pixel 14, where MNIST digits have theirs
    # Paste with clipping: a lopsided shape may push part of its box past the edge, as in MNIST.
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(SIDE, top + box.shape[0]), min(SIDE, left + box.shape[1])
    out[0, y0:y1, x0:x1] = box[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def encode_drawing(pixels: object) -> str:
    """A drawing as a short text code (16 grey levels, zlib, base64url) for an anchor name: 'drawn:' + code."""
    q = np.rint(as_grid(pixels).ravel() * LEVELS).astype(np.uint8)  # (784,) in 0..15
    packed = (q[0::2] << 4 | q[1::2]).astype(np.uint8).tobytes()
    return base64.urlsafe_b64encode(zlib.compress(packed, 9)).decode().rstrip("=")


def decode_drawing(code: str) -> torch.Tensor:
    """The (784,) prototype of a drawing code; a malformed code is a ConfigError, never a large allocation."""
    if not code or len(code) > _MAX_CODE:
        raise ConfigError("a drawn anchor's code is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
        inflater = zlib.decompressobj()
        packed = inflater.decompress(raw, _PACKED + 1)  # never inflates past one drawing
    except (ValueError, zlib.error):
        raise ConfigError("a drawn anchor's code is not a drawing") from None
    if len(packed) != _PACKED or not inflater.eof:
        raise ConfigError("a drawn anchor's code is not a 28x28 drawing")
    b = np.frombuffer(packed, dtype=np.uint8)
    q = np.empty(SIDE * SIDE, dtype=np.float32)
    q[0::2], q[1::2] = b >> 4, b & 15
    return torch.from_numpy(q / LEVELS)


def short_name(name: str) -> str:
    """An anchor's name to show and store: 'drawn:' + 8 hex digits of its code's hash; other names as they are."""
    if not name.startswith(PREFIX):
        return name
    return PREFIX + hashlib.sha1(name[len(PREFIX) :].encode()).hexdigest()[:8]
