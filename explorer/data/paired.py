"""Paired datasets for the joint VAE: MNIST with a second modality that shares only the class.

The second modality is drawn from the class label by a *partner*, so pairs are re-drawn every
time a batch is seen: ``mnist+fashion-mnist`` pairs each digit with a random Fashion-MNIST item
of the same class index; ``mnist+label`` pairs it with its one-hot class; ``mnist+caption`` with
a caption measured on the digit itself (explorer/data/captions.py), some words dropped at random.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from explorer.data import captions
from explorer.data.base import Dataset, Split

PAIRED_NAMES = ("mnist+fashion-mnist", "mnist+label", "mnist+caption")


class ClassPartner:
    """Images of another dataset, drawn at random by class (train pool while training, else test)."""

    kind = "image"

    def __init__(self, name: str, train: Split, test: Split) -> None:
        self.name = name
        self.train, self.test = train, test
        self.shape = tuple(train.images.shape[1:])
        self._pools = {
            part: [torch.nonzero(s.labels == c).flatten() for c in range(int(s.labels.max()) + 1)]
            for part, s in (("train", train), ("test", test))
        }

    def draw(
        self, y: Tensor, training: bool, generator: torch.Generator | None = None, x: Tensor | None = None
    ) -> Tensor:
        """One random partner per label. (B,) -> (B, C, H, W) on y's device."""
        part = "train" if training else "test"
        split = self.train if training else self.test
        out = torch.empty(len(y), dtype=torch.long)
        y_cpu = y.cpu()
        gen = generator if generator is not None and generator.device.type == "cpu" else None
        for c in y_cpu.unique().tolist():
            rows = torch.nonzero(y_cpu == c).flatten()
            pool = self._pools[part][c]
            out[rows] = pool[torch.randint(len(pool), (len(rows),), generator=gen)]
        return split.images[out].to(y.device)


class LabelPartner:
    """The class itself, one-hot."""

    kind = "label"

    def __init__(self, n_classes: int) -> None:
        self.name = "label"
        self.shape = (n_classes,)

    def draw(
        self, y: Tensor, training: bool, generator: torch.Generator | None = None, x: Tensor | None = None
    ) -> Tensor:
        return F.one_hot(y.long(), self.shape[0]).float()


class CaptionPartner:
    """A caption of each digit as a bag of words over ``captions.VOCAB``, measured on the image itself.

    While training, each word is kept at random (the class word with ``KEEP_CLASS``, each attribute
    word with ``KEEP_ATTRIBUTE``) so that short captions such as "a thick seven" are in the data;
    otherwise the full caption.
    """

    kind = "text"
    KEEP_CLASS, KEEP_ATTRIBUTE = 0.9, 0.5

    def __init__(self) -> None:
        self.name = "caption"
        self.shape = (len(captions.VOCAB),)

    def bags(self, images: Tensor, labels: Tensor) -> Tensor:
        """Full captions of a split, from the cached caption table. -> (N, V)"""
        table = captions.caption_table(images, labels)
        return captions.level_bags(torch.from_numpy(table.labels), torch.from_numpy(table.levels))

    def draw(
        self, y: Tensor, training: bool, generator: torch.Generator | None = None, x: Tensor | None = None
    ) -> Tensor:
        """The caption vectors of the digits x. (B, C, H, W), (B,) -> (B, V) on y's device."""
        if x is None:
            raise ValueError("a caption is measured on its digit: pass the images x")
        levels = captions.quantise(captions.measure(x), y)  # (B, 4)
        keep = None
        if training:
            gen = generator if generator is not None and generator.device.type == "cpu" else None
            p = torch.tensor([self.KEEP_CLASS] + [self.KEEP_ATTRIBUTE] * levels.shape[1])
            keep = torch.rand(len(y), len(p), generator=gen) < p  # (B, 5)
        return captions.level_bags(y, levels, keep).to(y.device)


@dataclass(frozen=True)
class PairedDataset(Dataset):
    """A Dataset of modality-1 images whose partner supplies modality 2."""

    partner: ClassPartner | LabelPartner | CaptionPartner | None = None


def load_paired(name: str, load) -> PairedDataset:
    """Build ``mnist+fashion-mnist``, ``mnist+label`` or ``mnist+caption`` (``load`` loads a plain dataset by name)."""
    first, second = name.split("+", 1)
    base = load(first)
    if second == "caption":
        partner = CaptionPartner()
    else:
        partner = (
            LabelPartner(base.n_classes)
            if second == "label"
            else ClassPartner(second, load(second).train, load(second).test)
        )
    fields = {f: getattr(base, f) for f in ("train", "test", "class_names", "source", "split_desc")}
    ds = PairedDataset(name=name, partner=partner, **fields)
    return replace(ds, source=f"{base.source} + {second}")
