"""Images and captions in one latent space: how well each direction works (issue 20).

On the 1,000-image test split of the bundled MNIST, with the shipped ``mnist-caption-joint-vae``
(or ``--checkpoint``):

- digit -> caption: the caption decoded from each digit's code; its class word against the label,
  its attribute words against the words measured on the image. Reference: a reader that knows only
  the class and says each class's most common word (measured in the same run).
- caption -> digit: for every class and each thickness and slant word, 32 digits decoded from
  q(z | "a WORD CLASS"). A small CNN trained here on the 9,000 training digits reads their class
  (reference: its accuracy on the real test digits); their measured thickness and slant are compared
  with the caption's word (reference: digits from the bare "a CLASS").
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import print_table

from explorer.analysis.captioning import (
    caption_to_image_accuracy,
    class_only_attribute_accuracy,
    classify,
    image_to_caption_accuracy,
    train_digit_classifier,
)
from explorer.catalog import resolve
from explorer.checkpoint import load_for_use
from explorer.data import load_dataset
from explorer.data.captions import ATTRIBUTES, caption_table, vocabulary_summary


def run(checkpoint: str = "mnist-caption-joint-vae", n: int = 32) -> list[tuple[str, str, str, str]]:
    model, meta = load_for_use(resolve(checkpoint))
    ds = load_dataset(meta["dataset"])
    t0 = time.perf_counter()
    clf = train_digit_classifier(ds.train)
    clf_acc = float((classify(clf, ds.test.images) == ds.test.labels).float().mean())
    i2c = image_to_caption_accuracy(model, ds.test)
    base = class_only_attribute_accuracy(ds.train, ds.test)
    c2i = caption_to_image_accuracy(model, clf, n=n)
    t = caption_table(ds.test.images, ds.test.labels)
    gap = lambda j: float(t.measures[t.levels[:, j] == 2, j].mean() - t.measures[t.levels[:, j] == 0, j].mean())  # noqa: E731
    real = {"thick": gap(0), "slant": gap(1)}  # the same gaps between real digits measured thick/thin, right/left
    rows = [("digit -> caption: class word", f"{i2c['class']:.1%}", "goal 90%", "-")]
    for a in (*ATTRIBUTES, "attributes"):
        what = "all attribute words" if a == "attributes" else f"{a} word"
        rows.append(
            (f"digit -> caption: {what}", f"{i2c[a]:.1%}", f"{base[a]:.1%} (class only)", f"{i2c[a] / base[a]:.2f}x")
        )
    rows += [
        (
            "caption -> digit: class (CNN judge)",
            f"{c2i['class']:.1%}",
            f"{clf_acc:.1%} (judge on real digits)",
            f"{c2i['class'] / clf_acc:.2f}x",
        ),
        (
            "caption -> digit: thickness follows the word",
            f"{c2i['thickness']:.1%}",
            "33.3% (chance, 3 words)",
            f"{c2i['thickness'] * 3:.2f}x",
        ),
        (
            "caption -> digit: slant follows the word",
            f"{c2i['slant']:.1%}",
            "33.3% (chance, 3 words)",
            f"{c2i['slant'] * 3:.2f}x",
        ),
        (
            "caption -> digit: thick minus thin stroke",
            f"{c2i['thick_minus_thin']:+.2f} px",
            f"{real['thick']:+.2f} px (real test digits)",
            f"{c2i['thick_minus_thin'] / real['thick']:.2f}x",
        ),
        (
            "caption -> digit: right- minus left-slanted shear",
            f"{c2i['right_minus_left']:+.2f}",
            f"{real['slant']:+.2f} (real test digits)",
            f"{c2i['right_minus_left'] / real['slant']:.2f}x",
        ),
    ]
    print(
        f"checkpoint {checkpoint}, {len(ds.test)} test digits, {n} digits per caption, {time.perf_counter() - t0:.0f} s"
    )
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="mnist-caption-joint-vae")
    ap.add_argument("-n", type=int, default=32, help="digits decoded per caption")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print_table(run(args.checkpoint, args.n))
    print("\nvocabulary:\n" + vocabulary_summary())
