"""Captions measured on digits: attribute measures against built controls, words, the cache, the paired dataset."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from explorer.data import load_dataset
from explorer.data.captions import (
    ATTRIBUTES,
    LEVEL_WORDS,
    SIZE_MEDIANS,
    SLANT_CUTS,
    THICKNESS_CUTS,
    VOCAB,
    WIDTH_MEDIANS,
    caption,
    caption_table,
    level_bags,
    measure,
    quantise,
    tokenize,
    words_of,
)


def bar(width: int, shear: float = 0.0, length: int = 20) -> torch.Tensor:
    """A vertical bar `width` px wide, its top shifted right by shear * length. -> (1, 1, 28, 28)"""
    img = torch.zeros(1, 1, 28, 28)
    for r in range(4, 4 + length):
        c0 = round(14 - width / 2 + shear * (4 + length / 2 - r))
        img[0, 0, r, c0 : c0 + width] = 1.0
    return img


def affine(x: torch.Tensor, theta: list[list[float]]) -> torch.Tensor:
    """Warp images by a 2x3 affine matrix in normalised coordinates (output -> input)."""
    t = torch.tensor(theta, dtype=torch.float32)[None].expand(len(x), 2, 3)
    return F.grid_sample(x, F.affine_grid(t, list(x.shape), align_corners=False), align_corners=False)


def digits_at(level: dict[int, int], n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """n test digits whose measured levels match `level` ({attribute index: level})."""
    s = load_dataset("mnist").test
    lv = quantise(measure(s.images), s.labels)
    ok = torch.ones(len(s), dtype=torch.bool)
    for j, v in level.items():
        ok &= lv[:, j] == v
    idx = torch.nonzero(ok).flatten()[:n]
    return s.images[idx], s.labels[idx]


def test_measures_on_bars_of_known_width_and_shear():
    thin, thick = measure(bar(1)), measure(bar(5))
    assert thin[0, 0] < THICKNESS_CUTS[0] < THICKNESS_CUTS[1] < thick[0, 0]
    widths = torch.cat([measure(bar(w))[:, 0] for w in range(2, 7)])  # 2 x area / boundary, less at the bar's ends
    assert bool((widths.diff() > 0.5).all()) and abs(float(widths[-1]) - 6) < 1.2
    assert abs(float(measure(bar(3))[0, 1])) < 0.02  # upright
    for s in (0.3, -0.3):
        assert abs(float(measure(bar(3, shear=s))[0, 1]) - s) < 0.05  # the second-moment shear is the shear
    # the sheared bar is as wide as the upright one once the slant is taken out
    assert abs(float(measure(bar(3, shear=0.3))[0, 2] - measure(bar(3))[0, 2])) < 0.5


def test_a_dilated_digit_reads_thick_and_an_eroded_one_thin():
    x, y = digits_at({0: 1})  # medium strokes
    dilated = F.max_pool2d(x, 3, 1, 1)
    eroded = F.pad(-F.max_pool2d(-x, 2, 1), (0, 1, 0, 1))
    assert (quantise(measure(dilated), y)[:, 0] == 2).float().mean() > 0.9  # "thick"
    assert (quantise(measure(eroded), y)[:, 0] == 0).float().mean() > 0.9  # "thin"


def test_a_sheared_digit_reads_slanted_and_the_other_way_left_slanted():
    x, y = digits_at({1: 1})  # upright
    # output (u, v) samples input (u + k v, v): rows further down move left, so the top leans right
    right, left = affine(x, [[1, 0.45, 0], [0, 1, 0]]), affine(x, [[1, -0.45, 0], [0, 1, 0]])
    assert (quantise(measure(right), y)[:, 1] == 2).float().mean() > 0.9  # "right-slanted"
    assert (quantise(measure(left), y)[:, 1] == 0).float().mean() > 0.9  # "left-slanted"


def test_stretched_digits_read_wide_and_shrunk_ones_small():
    x, y = digits_at({2: 0, 3: 0})  # narrow and small for their class
    wide = affine(x, [[0.7, 0, 0], [0, 1, 0]])  # 1/0.7 times wider
    assert (quantise(measure(wide), y)[:, 2] == 1).float().mean() > 0.9
    x, y = digits_at({3: 1})  # large
    small = affine(x, [[1.35, 0, 0], [0, 1.35, 0]])  # shrunk to 74%
    assert (quantise(measure(small), y)[:, 3] == 0).float().mean() > 0.9


def test_cut_points_sit_at_the_bundled_training_splits_quantiles():
    """The fixed thresholds are the tertiles (thickness, slant) and class medians (width, size) of the data."""
    s = load_dataset("mnist").train
    m = measure(s.images)
    q = torch.tensor([1 / 3, 2 / 3])
    assert torch.allclose(m[:, 0].quantile(q), torch.tensor(THICKNESS_CUTS), atol=0.05)
    assert torch.allclose(m[:, 1].quantile(q), torch.tensor(SLANT_CUTS), atol=0.02)
    for c in range(10):
        assert abs(float(m[s.labels == c, 2].median()) - WIDTH_MEDIANS[c]) < 0.1
        assert abs(float(m[s.labels == c, 3].median()) - SIZE_MEDIANS[c]) < 0.1


def test_captions_phrasings_and_tokenizer():
    levels = [2, 2, 0, 1]
    texts = {caption(7, levels, p) for p in range(4)}
    assert len(texts) == 4  # several phrasings of the same words
    for t in texts:
        words, ignored = tokenize(t)
        assert sorted(words) == sorted(words_of(7, levels).values()) and ignored == []
    assert "a thick, right-slanted seven, narrow and large" in texts
    words, ignored = tokenize("A bold 7 slanting to the LEFT, with a serif!")
    assert sorted(words) == ["left-slanted", "seven", "thick"] and ignored == ["serif"]
    bag = level_bags(torch.tensor([7]), torch.tensor([levels]))[0]
    assert [VOCAB[i] for i in torch.nonzero(bag).flatten()] == ["seven", "thick", "right-slanted", "narrow", "large"]
    assert len(VOCAB) == 10 + sum(len(LEVEL_WORDS[a]) for a in ATTRIBUTES)


def test_caption_table_is_cached_with_a_sidecar(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path))
    s = load_dataset("mnist").test.subset(200)
    first = caption_table(s.images, s.labels)
    files = sorted(p.name for p in (tmp_path / "captions").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".npz")
    assert json.loads((tmp_path / "captions" / files[0]).read_text())["vocab"] == list(VOCAB)
    again = caption_table(s.images, s.labels)
    assert again.captions == first.captions and (again.levels == first.levels).all()
    assert len(first.captions) == 200 and first.captions[0] == caption(int(s.labels[0]), first.levels[0], 0)
    assert sorted(p.name for p in (tmp_path / "captions").iterdir()) == files  # read back, not rewritten


def test_paired_caption_dataset_drops_words_only_while_training():
    ds = load_dataset("mnist+caption")
    x, y = ds.train.images[:256], ds.train.labels[:256]
    full = ds.partner.draw(y, False, x=x)
    assert full.shape == (256, len(VOCAB)) and bool((full.sum(1) == 5).all())
    assert torch.equal(full[:, :10].argmax(1), y)  # the class word is the label's
    a = ds.partner.draw(y, True, torch.Generator().manual_seed(0), x=x)
    b = ds.partner.draw(y, True, torch.Generator().manual_seed(1), x=x)
    assert not torch.equal(a, b) and bool((a <= full).all())  # a subset of the caption's words
    kept = a[:, 10:].sum() / full[:, 10:].sum()
    assert 0.4 < float(kept) < 0.6  # each attribute word is kept with probability 0.5
    with pytest.raises(ValueError):
        ds.partner.draw(y, True)  # a caption is measured on its digit
