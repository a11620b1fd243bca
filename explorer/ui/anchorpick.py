"""Make your own anchor: a training image or a drawing as the prototype, and a target clicked on a 2-D latent map."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explorer.data import Dataset
from explorer.data.drawing import PREFIX, encode_drawing, short_name
from explorer.figures.mapview import GRID, add_click_targets, class_scatter, decode_point
from explorer.ui.draw_canvas import pick_or_draw
from explorer.ui.widgets import show_image

CUSTOM_KEY = "anchors_custom"  # the custom anchor names made this session, e.g. "image:17@-1.5:2.0"
DRAWN_KEY = "anchors_drawn"  # the short name of each drawn prototype made this session -> its full 'drawn:CODE'
EXTENT = 3.0


def _target_map(codes: np.ndarray | None, labels: np.ndarray | None, class_names: tuple[str, ...]) -> go.Figure:
    """The 2-D latent plane with a click grid, over the current model's test codes when it has two dimensions."""
    fig = class_scatter(codes, labels, class_names, height=360, size=3) if codes is not None else go.Figure()
    axis = np.linspace(-EXTENT, EXTENT, 25, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis)
    add_click_targets(fig, np.stack([gx.ravel(), gy.ravel()], 1), "anchor target here")
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        plot_bgcolor="white",
        title="click where this anchor should pull its look-alikes",
        xaxis_range=[-EXTENT - 0.3, EXTENT + 0.3],
        yaxis_range=[-EXTENT - 0.3, EXTENT + 0.3],
    )
    return fig


def custom_anchor_ui(
    ds: Dataset, codes: np.ndarray | None, labels: np.ndarray | None, key: str, select_key: str
) -> list[str]:
    """Pick a training image (or draw a prototype) and click a target; returns every custom anchor name made so far this session.

    A new anchor is also added to the selection held in ``select_key`` (a multiselect drawn after this).
    """
    made: list[str] = st.session_state.setdefault(CUSTOM_KEY, [])
    left, right = st.columns([1, 2], gap="large")
    with left:
        proto, what = _prototype_ui(ds, key)
    with right:
        event = st.plotly_chart(
            _target_map(codes, labels, ds.class_names), on_select="rerun", selection_mode="points", key=key + "map"
        )
    pts = [d for p in ((event.selection.points if event and event.selection else []) or []) if (d := decode_point(p))]
    grid = [p for p in pts if p[0] == GRID]
    if proto is None:
        st.caption("Draw a prototype on the pad, then click a spot on the map to set its target.")
    elif grid:
        j = grid[0][1]
        axis = np.linspace(-EXTENT, EXTENT, 25)
        x, y = axis[j % 25], axis[j // 25]
        name = f"{short_name(proto)}@{x:.2f}:{y:.2f}"  # a drawing's code is long: lists show its short name
        st.caption(f"Target ({x:+.2f}, {y:+.2f}) for {what}.")
        if st.button(f"Add anchor {name}", icon=":material/add:", key=key + "add") and name not in made:
            st.session_state.setdefault(DRAWN_KEY, {})[short_name(proto)] = proto
            made.append(name)
            chosen = list(st.session_state.get(select_key, []))
            st.session_state[select_key] = (chosen + [name])[-4:]
            st.rerun()
    else:
        st.caption("Click a spot on the map to set this anchor's target.")
    return made


def _prototype_ui(ds: Dataset, key: str) -> tuple[str | None, str]:
    """The prototype's anchor name ('image:I' or 'drawn:CODE', None while the pad is blank) and a few words on it."""
    image, i = pick_or_draw(ds.train, ds.class_names, key + "img", "a prototype", default_class=2, edit=True)
    if i is not None:
        show_image(image, width=112, caption=f"prototype: training image {i}")
        return f"image:{i}", f"training image {i}"
    if image is None:
        return None, ""
    return PREFIX + encode_drawing(image), "your drawing"


def full_name(name: str) -> str:
    """An anchor name as training takes it: a drawn one's short name expanded to its 'drawn:CODE'."""
    base, at, target = name.partition("@")
    return st.session_state.get(DRAWN_KEY, {}).get(base, base) + at + target
