"""Traverse: one slider per latent dimension, decoded live; traversal grids and exports."""

import streamlit as st
import torch

from explorer import ui
from explorer.analysis.arithmetic import load_vectors
from explorer.analysis.traverse import code_of, decode_codes, gif_bytes, prior_code, traversal_grid, traversal_values
from explorer.figures.viz import image_grid, png_bytes

P = "traverse_"  # session-state prefix of this page

ui.page_header("Traverse the latent space")
cur = ui.current()
model, split = cur.model, cur.dataset.test
order, kl = ui.cached_dims_by_kl(str(cur.entry.path), cur.mtime_ns, cur.dataset.name)
zdim = model.latent_dim

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
        span = st.slider("Slider range (± prior SD)", 1.0, 6.0, 3.0, 0.5, key=P + "span")
        show_all = st.toggle(f"Show all {zdim} dimensions", key=P + "all", disabled=zdim <= 16)
    with c3:
        y = None
        if model.conditional:
            names = cur.dataset.class_names
            y = st.selectbox("Decode as class", range(model.config.n_classes), key=P + "class",
                             format_func=lambda c: names[c] if c < len(names) else str(c))  # fmt: skip
        st.caption("Sliders are ordered by each dimension's average KL (nats): the most informative first.")

shown = order if (show_all or zdim <= 16) else order[:16]
vectors = load_vectors(
    ui.checkpoint_hash(str(cur.entry.path), cur.mtime_ns), zdim
)  # from Arithmetic
keys = {d: f"{P}z{d}" for d in range(zdim)}
sig = f"{cur.entry.name}|{cur.dataset.name}|{sig}|{span}"


def set_code(z: torch.Tensor) -> None:
    for d in range(zdim):
        st.session_state[keys[d]] = float(min(span, max(-span, round(float(z[d]), 2))))


if st.session_state.get(P + "sig") != sig:  # a new start code resets the sliders
    st.session_state[P + "sig"] = sig
    set_code(z0)


def current_code() -> torch.Tensor:
    """The sliders' code plus each saved attribute vector times its strength slider."""
    z = torch.tensor([st.session_state.get(keys[d], float(z0[d])) for d in range(zdim)])
    for name, v in vectors.items():
        z = z + st.session_state.get(f"{P}vec_{name}", 0.0) * torch.from_numpy(v)
    return z


@st.fragment
def live_decoder() -> None:
    """Only this part reruns when a slider moves."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        cols = st.columns(2)
        for i, d in enumerate(shown):
            cols[i % 2].slider(f"z{d} · KL {kl[d]:.2f}", -span, span, step=0.05, key=keys[d])
        for name in vectors:  # saved on the Arithmetic page
            st.slider(
                f"vector: {name}",
                -3.0,
                3.0,
                0.0,
                0.05,
                key=f"{P}vec_{name}",
                help="Adds strength × this attribute vector",
            )
    z = current_code()
    with right:
        ui.show_image(decode_codes(model, z[None], y)[0], width=280, caption="decode(z)")
        st.caption("z = [" + ", ".join(f"{v:+.2f}" for v in z.tolist()[:16]) + (", …]" if zdim > 16 else "]"))


b1, b2, _ = st.columns([1, 1, 4])  # outside the fragment: a click reruns the page, sliders stay light
b1.button("Reset", on_click=set_code, args=(z0,), key=P + "reset", icon=":material/restart_alt:")
b2.button("Randomize", key=P + "rand", icon=":material/casino:", on_click=lambda: set_code(torch.randn(zdim)))
live_decoder()

st.subheader("Traversal grid")
g1, g2, g3 = st.columns(3)
k = g1.slider("Rows: top-k dimensions", 1, zdim, min(8, zdim), key=P + "grid_k")
steps = g2.slider("Columns: values across the range", 3, 15, 9, 2, key=P + "grid_steps")
g3.button("Refresh from the sliders", key=P + "grid_refresh", icon=":material/refresh:",
          help="The grid is drawn around the sliders' code as of the last refresh.")  # fmt: skip
z_now, values = current_code(), traversal_values(span, steps)
grid = traversal_grid(model, z_now, order[:k], values, y)  # one batched decode
ui.show_grid(grid, nrow=steps, scale=2, caption=f"Rows: z{', z'.join(map(str, order[:k]))}; "
             f"columns: {-span:+.1f} … {span:+.1f}")  # fmt: skip
e1, e2, e3 = st.columns([2, 2, 3], vertical_alignment="bottom")
e1.download_button("Grid as PNG", lambda: png_bytes(image_grid(grid, nrow=steps, scale=4)), "traversal.png",
                   "image/png", key=P + "png", icon=":material/download:")  # fmt: skip
gif_dim = e3.selectbox("Dimension for the GIF", order, key=P + "gif_dim", format_func=lambda d: f"z{d}")
e2.download_button("Sweep as GIF", lambda: gif_bytes(traversal_grid(model, z_now, [gif_dim], traversal_values(span, 24), y)),
                   f"z{gif_dim}-sweep.gif", "image/gif", key=P + "gif", icon=":material/animated_images:")  # fmt: skip

ui.explainer(
    "What a traversal shows; active and collapsed dimensions",
    "Each row changes one latent coordinate and holds the rest fixed, so it shows what that direction "
    "*means* to the decoder: stroke width, slant, which digit. A dimension's **average KL** measures how "
    "much information the encoder puts into it. KL near zero means the posterior equals the prior for "
    "every image: the dimension is **collapsed** (inactive), the decoder ignores it, and its row stays "
    "constant. Active dimensions have KL well above 0.01 nats. Raising β pushes more dimensions to "
    "collapse; the rows that survive tend to be more disentangled.",
)
