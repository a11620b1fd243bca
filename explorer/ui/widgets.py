"""Small widgets the pages share: image grids, model summary, explainers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import streamlit as st
from torch import Tensor

from explorer.analysis.traverse import pick_index
from explorer.data import Split
from explorer.figures.viz import history_figure, image_grid

if TYPE_CHECKING:  # the sidebar imports this module (lazy_expander), so only the type is named here
    from explorer.ui.sidebar import Current


@contextlib.contextmanager
def lazy_expander(label: str, key: str, icon: str | None = None) -> Iterator[bool]:
    """An expander whose body the caller builds only while it is open: yields whether it is.

    Opening or closing it reruns the page; closed, a costly body (figures, k-means, a job list
    polled by a fragment) costs nothing on every rerun of the page.
    """
    with st.expander(label, icon=icon, key=key, on_change="rerun") as box:
        yield box.open


def show_grid(images: Tensor, nrow: int = 8, scale: int = 3, caption: str | None = None) -> None:
    """Draw a tiled image grid upscaled ``scale`` times; Streamlit shrinks it to fit its column."""
    st.image(image_grid(images, nrow=nrow, scale=scale), caption=caption)


def show_gallery(images: Tensor, captions: list[str], width: int = 84) -> None:
    """Images (N, C, H, W) side by side, each with its caption."""
    arrs = [(im.detach().clamp(0, 1).cpu() * 255).round().byte().permute(1, 2, 0).squeeze(-1).numpy() for im in images]
    st.image(arrs, caption=captions, width=width)


def show_image(image: Tensor, width: int = 280, caption: str | None = None) -> None:
    """Draw one image (C, H, W) at native size, upscaled by the browser to ``width`` px."""
    arr = (image.detach().clamp(0, 1).cpu() * 255).round().byte()
    st.image(arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy(), caption=caption, width=width)


def explainer(title: str, body: str) -> None:
    """A folded-by-default explanation."""
    with st.expander(title, expanded=False, icon=":material/school:"):
        st.markdown(body)


def model_summary(cur: Current) -> None:
    """Test metrics as big numbers, training curves, and the raw metadata."""
    m = cur.meta
    tm = m.get("test_metrics", {})
    cols = st.columns(5)
    cols[0].metric("Model", m["model"])
    cols[1].metric("Latent size", m["latent_dim"])
    cols[2].metric(
        "Test −ELBO (nats)", f"{tm['elbo']:.1f}" if "elbo" in tm else "–", help="recon + KL; lower is better"
    )
    cols[3].metric("Reconstruction", f"{tm['recon']:.1f}" if "recon" in tm else "–")
    cols[4].metric("KL", f"{tm['kl']:.2f}" if "kl" in tm else "–")
    if cur.entry.foreign:  # imported ONNX pair or trusted --model: no training recipe to report
        kind = "an ONNX pair" if m["model"] == "onnx" else "your own torch code"
        n = f"{tm['n']:,} " if "n" in tm else ""
        st.caption(
            f"Trained outside this app ({kind}); metrics measured here on {n}**{m['dataset']}** test images. "
            f"Now showing **{cur.dataset.name}** ({cur.dataset.source})."
        )
    else:
        st.caption(
            f"Trained on **{m['dataset']}** ({m['split']}) for {m['epochs']} epochs, seed {m['seed']}. "
            f"Now showing **{cur.dataset.name}** ({cur.dataset.source})."
        )
    with st.expander("Training curves and metadata"):
        if m.get("history"):
            st.plotly_chart(history_figure(m["history"]), key="widgets_history")
        st.json(m, expanded=False)


def image_picker(
    split: Split,
    class_names: tuple[str, ...],
    key: str,
    label: str = "Image",
    default_class: int = 0,
    default_index: int = 0,
    selection: list[int] | None = None,
) -> int:
    """Pick one image of a split: at random from a class, by index, or from a latent-map selection."""
    modes = ["random from a class", "by index"] + (["from the map selection"] if selection else [])
    how = st.radio(f"{label}: pick", modes, horizontal=True, key=f"{key}_how", label_visibility="collapsed")
    if how == "by index":
        return int(st.number_input(f"{label} index", 0, len(split) - 1, default_index, key=f"{key}_index"))
    if how == "from the map selection" and selection:
        fmt = lambda i: f"{i} ({class_names[int(split.labels[i])]})"  # noqa: E731
        return int(
            st.selectbox(f"{label} from the {len(selection)} selected", selection, key=f"{key}_sel", format_func=fmt)
        )
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    present = sorted(set(split.labels.tolist()))
    cls = c1.selectbox(
        f"{label} class",
        present,
        index=present.index(default_class) if default_class in present else 0,
        key=f"{key}_class",
        format_func=lambda c: class_names[c] if c < len(class_names) else str(c),
    )
    draw_key = f"{key}_draw"
    if c2.button(":material/shuffle:", key=f"{key}_another", help="Another random image of this class"):
        st.session_state[draw_key] = st.session_state.get(draw_key, 0) + 1
    return pick_index(split, int(cls), st.session_state.get(draw_key, 0))
