"""/shared for a caption model: type a caption and see digits; pick a digit and read its caption."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.analysis.captioning import caption_to_digits, caption_traversal, image_to_caption
from explorer.analysis.traverse import code_of, traversal_values
from explorer.data.captions import ATTRIBUTES, caption_table, vocabulary_summary
from explorer.figures.mapview import shared_map_figure
from explorer.models import BaseVAE
from explorer.ui.draw_canvas import pick_or_draw
from explorer.ui.widgets import image_picker, show_grid, show_image

K = "shared_text_"  # this module owns every session-state key that starts with it
K_TEXT, K_SEED, K_DIGIT, K_TRAV_DIGIT, K_DIM = K + "text", K + "seed", K + "digit", K + "trav_digit", K + "dim"
EXAMPLE = "a thick seven"


def caption_space(model: BaseVAE, pair: object, codes: dict, dims_by_kl: list[int]) -> None:
    """The caption tabs of /shared. ``codes``: each modality's test codes (a, la, b, lb) encoded alone."""
    text_tab, read_tab, map_tab, trav_tab = st.tabs(["Caption → digits", "Digit → caption", "Shared map", "Traversal"])
    names = pair.class_names  # type: ignore[attr-defined]
    test = pair.test  # type: ignore[attr-defined]
    with text_tab:
        _caption_to_digits(model)
    with read_tab:
        _digit_to_caption(model, test, names)
    with map_tab:
        rng = np.random.default_rng(0)
        ia, ib = rng.permutation(len(codes["a"]))[:1500], rng.permutation(len(codes["b"]))[:1500]
        m1, m2 = model.config.modalities  # type: ignore[attr-defined]
        fig = shared_map_figure(
            (m1, m2), (codes["a"][ia], codes["b"][ib]), (codes["la"][ia], codes["lb"][ib]), (names, names)
        )
        st.plotly_chart(fig, key=K + "map")
        st.caption("Digits (circles) and their full captions (crosses), each encoded alone, coloured by class.")
    with trav_tab:
        _traversal(model, test, names, dims_by_kl)


def _caption_to_digits(model: BaseVAE) -> None:
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    text = c1.text_input(
        "Caption",
        EXAMPLE,
        key=K_TEXT,
        max_chars=200,
        help="Class and attribute words; other words are named and ignored",
    )
    seed = int(c2.number_input("Seed", 0, 9999, 0, key=K_SEED))
    out = caption_to_digits(model, text, n=16, seed=seed)
    if out.ignored:
        st.warning(f"Not in the vocabulary, ignored: **{', '.join(out.ignored)}**", icon=":material/spellcheck:")
    if not out.words:
        st.info("No vocabulary word in this caption: the digits come from the text encoder's empty caption.")
    else:
        st.markdown("Read: " + " · ".join(f"`{w}`" for w in out.words))
    show_grid(out.images, nrow=8, scale=3, caption="16 digits from q(z | caption): its mean first, then 15 draws")
    with st.expander("Vocabulary"):
        st.code(vocabulary_summary(), language=None)
        st.caption(
            "Synonyms are read too (bold → thick, big → large, 7 → seven, slanted/italic → right-slanted, …); "
            "filler words such as *a*, *the*, *digit*, *with* are skipped."
        )


def _digit_to_caption(model: BaseVAE, test: object, names: tuple[str, ...]) -> None:
    left, right = st.columns([2, 3], gap="large")
    with left:
        image, i = pick_or_draw(test, names, K_DIGIT, "a digit", default_class=7)
        if i is not None:
            show_image(image, width=140)
            measured = caption_table(test.images, test.labels).captions[i]  # type: ignore[attr-defined]
    if image is None:
        right.caption("Draw a digit on the pad to read its caption.")
        return
    out = image_to_caption(model, image)
    with right:
        st.markdown(f"Decoded from its code: **{out['caption']}**")
        if i is not None:
            st.caption(f"Measured on the image: {measured}")
        rows = [
            {"word group": g, "word": w, "probability": p}
            for g in ("class", *ATTRIBUTES)
            for w, p in out["groups"][g].items()
            if g != "class" or p > 0.01
        ]
        st.dataframe(
            rows,
            hide_index=True,
            height=35 * (len(rows) + 1) + 3,
            column_config={"probability": st.column_config.ProgressColumn(format="%.2f", min_value=0.0, max_value=1.0)},
        )
        st.caption(
            "Each word's probability within its group, from the text decoder at the digit's code "
            "(class words under 1% hidden)."
        )


def _traversal(model: BaseVAE, test: object, names: tuple[str, ...], dims_by_kl: list[int]) -> None:
    c1, c2 = st.columns([3, 2])
    with c1:
        i = image_picker(test, names, key=K_TRAV_DIGIT, label="Start from", default_class=7)  # type: ignore[arg-type]
    dim = c2.selectbox("Dimension (by KL)", dims_by_kl, key=K_DIM, format_func=lambda d: f"z{d}")
    z = code_of(model, test, i)  # type: ignore[arg-type]  # (z,): the digit's posterior mean
    values = traversal_values(3.0, 7)
    images, caps = caption_traversal(model, z, int(dim), values)
    cols = st.columns(len(values))
    prev = caps[0].split()
    for col, v, im, cap in zip(cols, values.tolist(), images, caps):
        words = cap.split()  # one phrasing throughout, so the words line up
        marked = " ".join(f"**{w}**" if w != p else w for w, p in zip(words, prev)) if len(words) == len(prev) else cap
        prev = words
        with col:
            show_image(im, width=84)
            st.caption(f"z{dim} = {v:+.1f}  \n{marked}")
    st.caption(
        "One code through both decoders: the digit and its caption as one latent dimension moves from −3 to +3; "
        "words that change from the step before are in bold."
    )
