"""A ``st.components.v2`` drawing pad: a 28x28 grey grid drawn with a soft round brush.

The browser keeps the grid and sends it back as component state only when a stroke ends (or on
Clear): ``{"key": initial_key, "pixels": [784 floats in 0..1]}``. Assets are plain JS and CSS
shipped in this package; nothing is fetched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st
import torch

from explorer.data.drawing import SIDE, as_grid, center_drawing
from explorer.errors import ConfigError
from explorer.ui.live_decoder import packaged_component

NAME = "draw_canvas"


def _mount() -> Callable[..., Any]:
    """The drawing pad component (assets read from the package)."""
    return packaged_component(NAME, __package__, ("component.js",), "draw_canvas.css")


def _initial_key(initial: np.ndarray | None) -> str:
    """Names the start image: a new one replaces the drawing in the browser, the same one does not."""
    return "blank" if initial is None else hashlib.sha1(initial.tobytes()).hexdigest()[:12]


def draw_canvas(
    key: str, initial: object | None = None, size: int = 280, label: str | None = None
) -> np.ndarray | None:
    """The drawing pad; returns the drawing as (28, 28) float32 in [0, 1], or None while it is blank.

    ``initial`` (784 values in [0, 1]) is a start image to edit; until the first stroke on it, it is
    what is returned. Choosing another start image replaces the drawing.
    """
    start = None if initial is None else as_grid(initial.numpy() if isinstance(initial, torch.Tensor) else initial)
    ikey = _initial_key(start)
    data = {
        "size": int(size),
        "label": label,
        "initial": None if start is None else np.round(start.ravel(), 3).tolist(),
        "initial_key": ikey,
    }
    result = _mount()(key=key, data=data, on_image_change=lambda: None)
    state = getattr(result, "image", None) if result is not None else None
    grid = start
    if isinstance(state, dict) and state.get("key") == ikey:  # drawn on this start image
        try:
            grid = as_grid(state.get("pixels"))
        except (ConfigError, TypeError, ValueError):
            grid = start  # a malformed state from the browser: keep the start image
    if grid is None or not (grid > 0.05).any():
        return None
    return grid


def drawing_input(key: str, initial: object | None = None, size: int = 224) -> torch.Tensor | None:
    """The pad and, under it, the 28x28 image the model will see (centred as MNIST digits are).

    Returns that (1, 28, 28) image, or None while the pad is blank.
    """
    from explorer.ui.widgets import show_image

    raw = draw_canvas(key, initial=initial, size=size)
    if raw is None:
        st.caption("The model will see your drawing centred in a 20×20 box, as MNIST digits are.")
        return None
    image = center_drawing(raw)  # (1, 28, 28)
    left, right = st.columns([1, 2], vertical_alignment="center")
    with left, st.container(key=key + "_preview"):  # tests find the preview by this key
        show_image(image, width=84)
    right.caption(f"What the model sees: your drawing scaled to fit 20×20, centred by mass in {SIDE}×{SIDE}.")
    return image


def pick_or_draw(
    split: Any, class_names: tuple[str, ...], key: str, noun: str, default_class: int = 0, edit: bool = False
) -> tuple[torch.Tensor | None, int | None]:
    """Pick an image of ``split`` or draw one: (the (1, 28, 28) image, its index in ``split`` or None if drawn).

    The image is None while the pad is blank. With ``edit``, a drawing may start from a picked image.
    """
    from explorer.ui.widgets import image_picker

    sources = (f"pick {noun}", f"draw {noun}")
    label = noun.split()[-1].capitalize()
    if st.radio(label, sources, horizontal=True, key=key + "_source") == sources[0]:
        i = image_picker(split, class_names, key=key, label=label, default_class=default_class)
        return split.images[i], i
    start = None
    if edit and st.toggle(
        "Start from a dataset image", key=key + "_from", help="Pick an image, then edit it on the pad"
    ):
        start = split.images[image_picker(split, class_names, key=key, label="Start from", default_class=default_class)]
    return drawing_input(key + "_pad", initial=start, size=196), None
