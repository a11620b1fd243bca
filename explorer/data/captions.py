"""Captions for digits: attributes measured on each image, quantised into words, phrased in English.

Four attributes are measured on the image itself (torch, batched, no skeleton library):

- ``thickness``: mean stroke width in pixels, 2 x ink area / boundary length (a morphology proxy:
  a stroke of width w and length L has area w L and two edges of length L);
- ``slant``: the shear of the ink from its second moments, -cov(x, y) / var(y); positive leans right;
- ``width``: the horizontal spread with the slant removed, 4 sqrt(var(x) - cov(x, y)^2 / var(y)), in pixels;
- ``size``: the radius of gyration of the ink, sqrt(var(x) + var(y)), in pixels.

Thickness and slant are quantised on fixed thresholds (near the tertiles of the bundled MNIST
training split) into three words; width and size on each class's median into two (a "wide one"
is wide for a one). A caption is the class word plus these words in one of several phrasings.
The captions of a split are computed once and cached under ``$EXPLORER_HOME/captions``.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from explorer.storage import atomic_write_bytes, atomic_write_json, home_dir

CAPTION_VERSION = 1  # bump when measures, thresholds or phrasings change: the cache key includes it
CLASS_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = ("thickness", "slant", "width", "size")
LEVEL_WORDS = {
    "thickness": ("thin", "medium", "thick"),
    "slant": ("left-slanted", "upright", "right-slanted"),
    "width": ("narrow", "wide"),
    "size": ("small", "large"),
}
VOCAB = CLASS_WORDS + tuple(w for a in ATTRIBUTES for w in LEVEL_WORDS[a])  # the words a caption vector holds
# Fixed cut points: thickness in pixels and slant (shear) for all classes; width and size at each class's median.
THICKNESS_CUTS = (2.6, 3.2)
SLANT_CUTS = (-0.02, 0.2)
WIDTH_MEDIANS = (19.13, 4.02, 16.10, 13.97, 15.02, 14.76, 14.59, 13.59, 12.97, 12.79)  # per class, pixels
SIZE_MEDIANS = (7.48, 5.82, 7.21, 7.12, 6.14, 7.17, 6.44, 6.78, 6.70, 6.14)  # per class, pixels
# Other spellings that mean a vocabulary word, and words that carry nothing (read, not encoded).
SYNONYMS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "bold": "thick",
    "heavy": "thick",
    "fat": "thick",
    "light": "thin",
    "fine": "thin",
    "skinny": "thin",
    "regular": "medium",
    "normal": "medium",
    "slanted": "right-slanted",
    "slanting": "right-slanted",
    "italic": "right-slanted",
    "leaning": "right-slanted",
    "tilted": "right-slanted",
    "right": "right-slanted",
    "left": "left-slanted",
    "backslanted": "left-slanted",
    "back-slanted": "left-slanted",
    "straight": "upright",
    "vertical": "upright",
    "slim": "narrow",
    "condensed": "narrow",
    "broad": "wide",
    "big": "large",
    "tiny": "small",
    "little": "small",
}
FILLER = frozenset(
    (
        "a",
        "an",
        "the",
        "digit",
        "number",
        "numeral",
        "written",
        "drawn",
        "handwritten",
        "and",
        "with",
        "in",
        "of",
        "to",
        "is",
        "it",
        "that",
        "this",
        "very",
        "quite",
        "rather",
        "stroke",
        "strokes",
        "ink",
        "pen",
        "lines",
        "line",
        "shape",
        "shaped",
        "s",
    )
)
PHRASINGS = (
    "a {thickness}, {slant} {cls}, {width} and {size}",
    "a {size} {width} {cls} in {thickness} strokes, {slant}",
    "{cls}: {thickness}, {slant}, {width}, {size}",
    "a {slant} {cls} drawn {thickness}, {size} and {width}",
)
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z]+)*")


def measure(images: Tensor) -> Tensor:
    """Thickness, slant, width and size of each image. (B, 1, H, W) in [0, 1] -> (B, 4)."""
    m = images.float().flatten(0, -3) if images.dim() > 3 else images.float()  # (B, H, W)
    m = m.reshape(-1, *m.shape[-2:])
    _, h, w = m.shape
    mass = m.sum((1, 2)).clamp_min(1e-6)  # (B,)
    rows = torch.arange(h, dtype=m.dtype, device=m.device)[None, :, None]
    cols = torch.arange(w, dtype=m.dtype, device=m.device)[None, None, :]
    dy = rows - ((m * rows).sum((1, 2)) / mass)[:, None, None]  # (B, H, 1)
    dx = cols - ((m * cols).sum((1, 2)) / mass)[:, None, None]  # (B, 1, W)
    vy = ((m * dy**2).sum((1, 2)) / mass).clamp_min(1e-6)
    vx = (m * dx**2).sum((1, 2)) / mass
    cxy = (m * dx * dy).sum((1, 2)) / mass
    ink = (m > 0.5).float()[:, None]  # (B, 1, H, W)
    pad = F.pad(ink, (1, 1, 1, 1))
    eroded = (
        ink * pad[..., :-2, 1:-1] * pad[..., 2:, 1:-1] * pad[..., 1:-1, :-2] * pad[..., 1:-1, 2:]
    )  # 4-neighbour erosion
    boundary = (ink - eroded).sum((1, 2, 3)).clamp_min(1)
    thickness = 2 * ink.sum((1, 2, 3)) / boundary
    slant = -cxy / vy
    width = 4 * (vx - cxy**2 / vy).clamp_min(0).sqrt()
    size = (vx + vy).sqrt()
    return torch.stack([thickness, slant, width, size], 1)


def quantise(measures: Tensor, labels: Tensor) -> Tensor:
    """Level index of each attribute (into ``LEVEL_WORDS``). (B, 4), (B,) -> (B, 4) int64."""
    y = labels.long().cpu()
    m = measures.cpu().contiguous()
    thick = torch.bucketize(m[:, 0].contiguous(), torch.tensor(THICKNESS_CUTS))
    slant = torch.bucketize(m[:, 1].contiguous(), torch.tensor(SLANT_CUTS))  # a high shear leans right: index 2
    width = (m[:, 2] > torch.tensor(WIDTH_MEDIANS)[y]).long()
    size = (m[:, 3] > torch.tensor(SIZE_MEDIANS)[y]).long()
    return torch.stack([thick, slant, width, size], 1)


def words_of(label: int, levels: Tensor | list[int]) -> dict[str, str]:
    """The class word and one word per attribute."""
    lv = [int(v) for v in levels]
    return {"cls": CLASS_WORDS[int(label)], **{a: LEVEL_WORDS[a][lv[i]] for i, a in enumerate(ATTRIBUTES)}}


def caption(label: int, levels: Tensor | list[int], phrasing: int = 0) -> str:
    """One English caption, e.g. ``a thick, right-slanted seven, narrow and large``."""
    return PHRASINGS[phrasing % len(PHRASINGS)].format(**words_of(label, levels))


def tokenize(text: str) -> tuple[list[str], list[str]]:
    """Vocabulary words in ``text`` (synonyms mapped, filler dropped) and the words outside the vocabulary."""
    known, unknown = [], []
    for tok in _TOKEN.findall(text.lower()):
        word = SYNONYMS.get(tok, tok)
        if word in VOCAB:
            known.append(word)
        elif tok not in FILLER:
            unknown.append(tok)
    if "left-slanted" in known:  # "slanted to the left": the bare "slanted" is not a second, rightward slant
        known = [w for w in known if w != "right-slanted"]
    return list(dict.fromkeys(known)), list(dict.fromkeys(unknown))


def bag_of_words(words: list[str]) -> Tensor:
    """A multi-hot vector over ``VOCAB``. -> (V,)"""
    v = torch.zeros(len(VOCAB))
    for w in words:
        v[VOCAB.index(w)] = 1.0
    return v


def level_bags(labels: Tensor, levels: Tensor, keep: Tensor | None = None) -> Tensor:
    """Caption vectors from classes and attribute levels; ``keep`` (B, 5) masks class and attribute words. -> (B, V)"""
    n = len(labels)
    offsets = torch.tensor([s.start for s in vocab_slices().values()])  # (5,) first index of each group
    idx = torch.cat([labels.long().cpu()[:, None], levels.long().cpu()], 1) + offsets  # (B, 5) vocabulary indices
    src = torch.ones(n, len(offsets)) if keep is None else keep.float().cpu()
    out = torch.zeros(n, len(VOCAB)).scatter_(1, idx, src)
    return out


def vocab_slices() -> dict[str, slice]:
    """Where each word group (``class`` and each attribute) sits in ``VOCAB``."""
    out, start = {"class": slice(0, len(CLASS_WORDS))}, len(CLASS_WORDS)
    for a in ATTRIBUTES:
        out[a] = slice(start, start + len(LEVEL_WORDS[a]))
        start += len(LEVEL_WORDS[a])
    return out


@dataclass(frozen=True)
class CaptionTable:
    """The measured attributes, their levels and one caption per image of a split."""

    measures: np.ndarray  # (N, 4) float32
    levels: np.ndarray  # (N, 4) int64
    labels: np.ndarray  # (N,) int64
    captions: tuple[str, ...]


def caption_table(images: Tensor, labels: Tensor, batch: int = 2000) -> CaptionTable:
    """Measure and caption every image (phrasing chosen by index), cached on disk by the data's hash."""
    x = images.detach().cpu().contiguous()
    y = labels.detach().cpu().long().contiguous()
    key = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes() + f"v{CAPTION_VERSION}".encode()).hexdigest()[:20]
    path = home_dir() / "captions" / f"{key}.npz"
    if path.exists() and path.with_suffix(".json").exists():
        with np.load(path, allow_pickle=False) as f:
            return CaptionTable(f["measures"], f["levels"], f["labels"], tuple(str(c) for c in f["captions"]))
    meas = torch.cat([measure(x[i : i + batch]) for i in range(0, len(x), batch)]) if len(x) else torch.zeros(0, 4)
    lev = quantise(meas, y)
    caps = tuple(caption(int(c), lv, i) for i, (c, lv) in enumerate(zip(y, lev)))
    table = CaptionTable(meas.numpy().astype(np.float32), lev.numpy(), y.numpy(), caps)
    buf = io.BytesIO()
    np.savez(buf, measures=table.measures, levels=table.levels, labels=table.labels, captions=np.array(caps, dtype=str))
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_json(
        path.with_suffix(".json"),
        {
            "version": CAPTION_VERSION,
            "n": len(y),
            "attributes": ATTRIBUTES,
            "vocab": VOCAB,
            "thickness_cuts": THICKNESS_CUTS,
            "slant_cuts": SLANT_CUTS,
        },
    )
    return table


def vocabulary_summary() -> str:
    """The vocabulary as one line per word group (for the README and the UI)."""
    return "\n".join([f"class: {', '.join(CLASS_WORDS)}"] + [f"{a}: {', '.join(LEVEL_WORDS[a])}" for a in ATTRIBUTES])
