"""Traverse: one slider per latent dimension, decoded live in the browser; traversal grids and exports."""

import streamlit as st
import torch

from explorer import ui
from explorer.analysis.arithmetic import load_vectors
from explorer.analysis.traverse import (
    FEW_SLIDERS,
    MOST_SLIDERS,
    code_of,
    decode_codes,
    gif_bytes,
    has_prior,
    prior_code,
    random_code,
    range_values,
    slider_caption,
    slider_dims,
    slider_ranges,
    traversal_grid,
)
from explorer.figures.viz import image_grid, png_bytes
from explorer.ui.coursepanels import collapse_warning
from explorer.ui.live_decoder import LiveModel, fallback_caption, live_model, live_sliders, released_values, slider_spec

P = "traverse_"  # session-state prefix of this page
MAX_SHOWN = 16  # coordinates printed under the server-decoded image
MAX_GRID = 32  # rows of the traversal grid at most
CODE, REV, STRENGTH, SIG, LIVE = P + "code", P + "rev", P + "strength", P + "sig", P + "live"

ui.page_header("Traverse the latent space")
cur = ui.current()
model, split = cur.model, cur.dataset.test
path, stamp = str(cur.entry.path), cur.mtime_ns
order, kl = ui.cached_dims_by_kl(path, stamp, cur.dataset.name)
zdim, prior = model.latent_dim, has_prior(model)
ckpt = ui.checkpoint_hash(path, stamp)

with st.container(border=True):
    c1, c2, c3 = st.columns([3, 2, 2])
    with c1:
        mode = st.radio(
            "Start from", ["a dataset image", "the origin", "a prior sample"], horizontal=True, key=P + "mode"
        )
        if mode == "a dataset image":
            index = ui.image_picker(split, cur.dataset.class_names, key=P + "pick", label="Start image")
            z0, sig = code_of(model, split, index), f"img{index}"
        elif mode == "a prior sample":
            seed = int(st.number_input("Prior seed", 0, 100_000, 0, key=P + "prior_seed"))
            z0, sig = prior_code(zdim, seed), f"prior{seed}"
        else:
            z0, sig = torch.zeros(zdim), "origin"
    with c2:
        span = st.slider("Slider range (± prior SD)", 1.0, 6.0, 3.0, 0.5, key=P + "span", disabled=not prior)
        show_all = st.toggle(
            f"Show all {zdim} dimensions" if zdim <= MOST_SLIDERS else f"Show the top {MOST_SLIDERS} of {zdim}",
            key=P + "all",
            disabled=zdim <= FEW_SLIDERS,
        )
    with c3:
        y = None
        if model.conditional:
            names = cur.dataset.class_names
            y = st.selectbox(
                "Decode as class",
                range(model.config.n_classes),
                key=P + "class",
                format_func=lambda c: names[c] if c < len(names) else str(c),
            )
        if prior:
            st.caption("Sliders are ordered by each dimension's average KL (nats): the most informative first.")
        else:
            st.caption(
                f"This model ({model.kind}) has no prior, so no KL and no prior SD: each slider spans the 1st–99th "
                "percentile of the test codes in its dimension, widest spread first."
            )
collapse_warning(str(cur.entry.path))  # says so when dimensions have collapsed

codes = None if prior else ui.cached_codes(path, stamp, cur.dataset.name, "test")
ranges = slider_ranges(model, span, codes)  # (z, 2)
shown = slider_dims(order, show_all)
vectors = load_vectors(ckpt, zdim)  # saved on the Arithmetic page
sig = f"{cur.entry.name}|{cur.dataset.name}|{sig}|{span}"


def set_code(z: torch.Tensor) -> None:
    """Put the sliders at code ``z`` (clipped to their ranges) and the vector strengths at 0."""
    lo, hi = torch.as_tensor(ranges[:, 0]), torch.as_tensor(ranges[:, 1])
    st.session_state[CODE] = [round(float(v), 2) for v in torch.minimum(torch.maximum(z.float(), lo), hi)]
    st.session_state[STRENGTH] = {}
    st.session_state[REV] = st.session_state.get(REV, 0) + 1


if st.session_state.get(SIG) != sig or len(st.session_state.get(CODE, [])) != zdim:  # a new start code
    st.session_state[SIG] = sig
    set_code(z0)


def current_code() -> torch.Tensor:
    """The sliders' code plus each saved attribute vector times its strength."""
    z = torch.tensor(st.session_state[CODE])
    for name, v in vectors.items():
        z = z + st.session_state[STRENGTH].get(name, 0.0) * torch.from_numpy(v)
    return z


def _label(d: int) -> str:
    return f"z{d} · KL {kl[d]:.2f}" if prior else f"z{d}"


def on_release() -> None:
    """The browser's slider values, on release: the code the grid, GIF and exports use."""
    got = released_values(st.session_state.get(LIVE))
    if got is None or got[0] != st.session_state[REV] or len(got[1]) != len(shown) + len(vectors):
        return  # from before a Reset or a layout change
    code = list(st.session_state[CODE])
    for d, v in zip(shown, got[1]):
        code[d] = v
    st.session_state[CODE] = code
    st.session_state[STRENGTH] = dict(zip(vectors, got[1][len(shown) :]))


def live_panel(lm: LiveModel) -> None:
    """All sliders and the image in one component: the image follows the hand, the server hears the release."""
    code = st.session_state[CODE]
    sliders = [slider_spec(_label(d), *ranges[d], step=0.01, dim=d) for d in shown]
    sliders += [slider_spec(f"vector: {n}", -3.0, 3.0, 0.05, vec=v) for n, v in vectors.items()]
    values = [code[d] for d in shown] + [st.session_state[STRENGTH].get(n, 0.0) for n in vectors]
    live_sliders(lm, code, sliders, values, st.session_state[REV], key=LIVE, on_change=on_release, y=y, size=260)
    if note := slider_caption(len(shown), zdim, prior):
        st.caption(note)
    st.caption(
        f"Decoded in your browser on every move ({lm.n_bytes / 2**20:.1f} MB of weights, fetched once "
        "per model); the code reaches the server when you let go."
    )


@st.fragment
def server_panel() -> None:
    """The fallback: Streamlit sliders, one server decode per release."""
    rev, code = st.session_state[REV], st.session_state[CODE]
    left, right = st.columns([3, 2], gap="large")
    if note := slider_caption(len(shown), zdim, prior):
        left.caption(note)
    with left:
        cols = st.columns(2)
        for i, d in enumerate(shown):
            code[d] = cols[i % 2].slider(_label(d), *map(float, ranges[d]), float(code[d]), 0.05, key=f"{P}z{d}_{rev}")
        for name in vectors:
            st.session_state[STRENGTH][name] = st.slider(
                f"vector: {name}", -3.0, 3.0, 0.0, 0.05, key=f"{P}vec_{name}_{rev}"
            )
    z = current_code()
    with right:
        ui.show_image(decode_codes(model, z[None], y)[0], width=280, caption="decode(z)")
        st.caption(
            "z = [" + ", ".join(f"{v:+.2f}" for v in z.tolist()[:MAX_SHOWN]) + (", …]" if zdim > MAX_SHOWN else "]")
        )


def randomize() -> None:
    """A prior draw; for a model without a prior, a uniform draw within the sliders' ranges."""
    set_code(random_code(ranges, prior))


lm = live_model(model, ckpt)


@st.fragment
def sliders_and_grid() -> None:
    """The buttons, sliders, image and grid around their code: a press or a release reruns only this."""
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("Reset", on_click=set_code, args=(z0,), key=P + "reset", icon=":material/restart_alt:")
    b2.button("Randomize", key=P + "rand", icon=":material/casino:", on_click=randomize)
    if isinstance(lm, LiveModel):
        live_panel(lm)
    else:
        fallback_caption(lm)
        server_panel()

    st.subheader("Traversal grid")
    g1, g2, _ = st.columns(3)
    k = g1.slider("Rows: top-k dimensions", 1, min(zdim, MAX_GRID), min(8, zdim), key=P + "grid_k")
    steps = g2.slider("Columns: values across the range", 3, 15, 9, 2, key=P + "grid_steps")
    z_now = current_code()
    grid = traversal_grid(model, z_now, order[:k], range_values(ranges[order[:k]], steps), y)  # one batched decode
    across = f"{-span:+.1f} … {span:+.1f}" if prior else "each dimension's 1st … 99th percentile"
    ui.show_grid(
        grid,
        nrow=steps,
        scale=2,
        caption=f"Rows: z{', z'.join(map(str, order[:k]))}; columns: {across}; "
        "around the sliders' code as of the last release",
    )
    e1, e2, e3 = st.columns([2, 2, 3], vertical_alignment="bottom")
    e1.download_button(
        "Grid as PNG",
        lambda: png_bytes(image_grid(grid, nrow=steps, scale=4)),
        "traversal.png",
        "image/png",
        key=P + "png",
        icon=":material/download:",
    )
    gif_dim = e3.selectbox("Dimension for the GIF", order, key=f"{P}gif_dim_{ckpt}", format_func=lambda d: f"z{d}")
    e2.download_button(
        "Sweep as GIF",
        lambda: gif_bytes(traversal_grid(model, z_now, [gif_dim], range_values(ranges[[gif_dim]], 24), y)),
        f"z{gif_dim}-sweep.gif",
        "image/gif",
        key=P + "gif",
        icon=":material/animated_images:",
    )


sliders_and_grid()

ui.explainer(
    "What a traversal shows; active and collapsed dimensions",
    "Each row changes one latent coordinate and holds the rest fixed, so it shows what that direction "
    "*means* to the decoder: stroke width, slant, which digit. A dimension's **average KL** measures how "
    "much information the encoder puts into it. KL near zero means the posterior equals the prior for "
    "every image: the dimension is **collapsed** (inactive), the decoder ignores it, and its row stays "
    "constant. Active dimensions have KL well above 0.01 nats. Raising β pushes more dimensions to "
    "collapse; the rows that survive tend to be more disentangled.",
)
