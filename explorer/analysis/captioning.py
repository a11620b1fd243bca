"""Images and captions in one latent space: caption -> digits, digit -> caption, and how well both work.

Works on a ``joint-vae`` trained on ``mnist+caption`` (its second modality is a bag of words over
``explorer.data.captions.VOCAB``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.data import Split
from explorer.data.captions import (
    ATTRIBUTES,
    CLASS_WORDS,
    LEVEL_WORDS,
    VOCAB,
    bag_of_words,
    caption,
    caption_table,
    measure,
    quantise,
    tokenize,
    vocab_slices,
)
from explorer.errors import ExplorerError
from explorer.models import BaseVAE


def is_caption_model(model: BaseVAE) -> bool:
    """True for a joint VAE whose second modality is a caption over this vocabulary."""
    cfg = model.config
    return getattr(cfg, "second", None) == "text" and tuple(getattr(cfg, "second_shape", ())) == (len(VOCAB),)


def _check(model: BaseVAE) -> None:
    if not is_caption_model(model):
        raise ExplorerError("this needs a joint-vae trained on mnist+caption (e.g. mnist-caption-joint-vae)")


@dataclass(frozen=True)
class CaptionDigits:
    """Digits decoded from a typed caption's posterior."""

    images: Tensor  # (n, 1, H, W): the posterior mean first, then draws from q(z | caption)
    words: list[str]  # the vocabulary words read from the text
    ignored: list[str]  # words outside the vocabulary, named and ignored


@torch.no_grad()
def caption_to_digits(model: BaseVAE, text: str, n: int = 16, seed: int = 0) -> CaptionDigits:
    """Encode a caption alone and decode n digits from q(z | caption) (the first from its mean)."""
    _check(model)
    words, ignored = tokenize(text)
    mu, lv = model.encode_modality(1, bag_of_words(words)[None].to(model.device))  # type: ignore[attr-defined]  # (1, z)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    z = model.reparameterize(mu.repeat(n, 1), lv.repeat(n, 1), gen)  # (n, z)
    z[0] = mu[0]
    return CaptionDigits(model.decode(z).cpu(), words, ignored)


def read_caption(probs: Tensor) -> tuple[Tensor, Tensor]:
    """The most likely class word and attribute level of each decoded caption. (B, V) -> (B,), (B, 4)"""
    sl = vocab_slices()
    labels = probs[:, sl["class"]].argmax(1)
    levels = torch.stack([probs[:, sl[a]].argmax(1) for a in ATTRIBUTES], 1)
    return labels, levels


def words_from_codes(model: BaseVAE, z: Tensor) -> list[str]:
    """The caption decoded from each code, in the first phrasing. (B, z) -> B strings"""
    _check(model)
    with torch.no_grad():
        probs = model.decode_modality(1, z.to(model.device)).cpu()  # type: ignore[attr-defined]  # (B, V)
    labels, levels = read_caption(probs)
    return [caption(int(c), lv) for c, lv in zip(labels, levels)]


@torch.no_grad()
def caption_traversal(model: BaseVAE, z: Tensor, dim: int, values: Tensor) -> tuple[Tensor, list[str]]:
    """Set dimension ``dim`` of code z to each value: the digits and the captions decoded together.

    (z,), (S,) -> images (S, 1, H, W), S captions
    """
    _check(model)
    codes = z.reshape(1, -1).repeat(len(values), 1).to(model.device)  # (S, z)
    codes[:, dim] = values.to(codes)
    return model.decode(codes).cpu(), words_from_codes(model, codes)


@torch.no_grad()
def image_to_caption(model: BaseVAE, image: Tensor) -> dict:
    """Decode a caption from a digit's code, with each word group's probabilities.

    image: (1, H, W) or (1, 1, H, W). Returns ``caption``, ``probs`` (each word's probability of being
    in a caption, as the decoder gives it) and ``groups``: for the class and each attribute, its words'
    probabilities normalised within the group.
    """
    _check(model)
    mu, _ = model.encode(image.reshape(1, *model.config.in_shape).to(model.device))
    probs = model.decode_modality(1, mu).cpu()[0]  # type: ignore[attr-defined]  # (V,)
    labels, levels = read_caption(probs[None])
    groups = {}
    for name, sl in vocab_slices().items():
        p = probs[sl] / probs[sl].sum().clamp_min(1e-8)
        groups[name] = dict(zip(VOCAB[sl], (float(v) for v in p)))
    return {"caption": caption(int(labels[0]), levels[0]), "probs": dict(zip(VOCAB, probs.tolist())), "groups": groups}


# --- measuring ----------------------------------------------------------------------------------


def train_digit_classifier(split: Split, epochs: int = 4, seed: int = 0) -> nn.Module:
    """A small CNN that reads MNIST digits (the judge of generated digits). Eval mode on return."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(split), generator=gen).split(128):
            loss = F.cross_entropy(net(split.images[idx]), split.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def classify(net: nn.Module, images: Tensor) -> Tensor:
    """Predicted classes. (B, 1, 28, 28) -> (B,)"""
    return torch.cat([net(images[i : i + 1000].cpu()).argmax(1) for i in range(0, len(images), 1000)])


@torch.no_grad()
def image_to_caption_accuracy(model: BaseVAE, split: Split) -> dict[str, float]:
    """Digit -> caption: class-word accuracy and each attribute word's accuracy against the measured word."""
    _check(model)
    table = caption_table(split.images, split.labels)
    probs = torch.cat(
        [
            model.decode_modality(1, model.encode(split.images[i : i + 2000].to(model.device))[0]).cpu()  # type: ignore[attr-defined]
            for i in range(0, len(split), 2000)
        ]
    )
    labels, levels = read_caption(probs)
    out = {"class": float((labels.numpy() == table.labels).mean())}
    for j, a in enumerate(ATTRIBUTES):
        out[a] = float((levels[:, j].numpy() == table.levels[:, j]).mean())
    out["attributes"] = float(np.mean([out[a] for a in ATTRIBUTES]))
    return out


@torch.no_grad()
def caption_to_image_accuracy(model: BaseVAE, classifier: nn.Module, n: int = 32, seed: int = 0) -> dict[str, float]:
    """Caption -> digits: class accuracy by ``classifier``, and whether the digits' measured thickness and
    slant follow the caption's word.

    For every class and each thickness and slant word, ``n`` digits are decoded from q(z | "a WORD
    CLASS"). ``class``: fraction the classifier reads as the class (over all captions). ``thickness``
    / ``slant``: fraction of digits whose measured level is the caption's word. ``thick_minus_thin``
    and ``right_minus_left``: the gap between the mean measures of the extreme words' digits.
    """
    _check(model)
    correct, total, hits, means = 0, 0, {"thickness": [], "slant": []}, {}
    for j, attr in enumerate(ATTRIBUTES[:2]):
        for level, word in enumerate(LEVEL_WORDS[attr]):
            vals = []
            for c, cls in enumerate(CLASS_WORDS):
                imgs = caption_to_digits(model, f"a {word} {cls}", n=n, seed=seed + c).images  # (n, 1, H, W)
                correct += int((classify(classifier, imgs) == c).sum())
                total += n
                m = measure(imgs)  # (n, 4)
                hits[attr].append((quantise(m, torch.full((n,), c))[:, j] == level).float().mean().item())
                vals.append(m[:, j])
            means[word] = float(torch.cat(vals).mean())
    return {
        "class": correct / total,
        "thickness": float(np.mean(hits["thickness"])),
        "slant": float(np.mean(hits["slant"])),
        "thick_minus_thin": means["thick"] - means["thin"],
        "right_minus_left": means["right-slanted"] - means["left-slanted"],
    }


def class_only_attribute_accuracy(train: Split, test: Split) -> dict[str, float]:
    """The attribute-word accuracy of a reader that knows only the class: each class's most common word."""
    tr, te = caption_table(train.images, train.labels), caption_table(test.images, test.labels)
    out = {}
    for j, a in enumerate(ATTRIBUTES):
        common = [np.bincount(tr.levels[tr.labels == c, j], minlength=len(LEVEL_WORDS[a])).argmax() for c in range(10)]
        out[a] = float((np.array(common)[te.labels] == te.levels[:, j]).mean())
    out["attributes"] = float(np.mean([out[a] for a in ATTRIBUTES]))
    return out
