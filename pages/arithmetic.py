"""Arithmetic: a - b + c, attribute vectors from classes or map selections, and interpolation."""

import numpy as np
import streamlit as st
import torch

from explorer import ui
from explorer.analysis.arithmetic import (
    analogy,
    attribute_vector,
    codes_of,
    interpolate,
    load_vectors,
    nearest_rows,
    path_elbo,
    path_log_prior,
    save_vector,
    strength_codes,
    typical_log_prior,
)
from explorer.analysis.projection import plane
from explorer.analysis.traverse import decode_codes
from explorer.errors import ExplorerError
from explorer.figures.courseview import path_figure
from explorer.figures.mapview import class_scatter
from explorer.ui.live_decoder import interpolation_scrubber
from explorer.ui.state import MAP_SELECTION

P = "arith_"
ui.page_header("Latent arithmetic")
cur = ui.current()
model, ds, split = cur.model, cur.dataset, cur.dataset.test
names = ds.class_names
stamp = cur.mtime_ns
ckpt_hash = ui.checkpoint_hash(str(cur.entry.path), stamp)
codes = ui.cached_codes(str(cur.entry.path), stamp, ds.name)  # (N, z) test-split means
sel = st.session_state.get(MAP_SELECTION)
selection = (
    sel["indices"]
    if sel and sel["model"] == cur.entry.name and sel["dataset"] == ds.name and sel["split"] == "test"
    else None
)
y_dec = None
if model.conditional:
    y_dec = st.selectbox(
        "Decode as class (conditional model)",
        range(model.config.n_classes),
        key=P + "y",
        format_func=lambda c: names[c],
    )


@st.cache_data(max_entries=16, show_spinner=False)
def decoded_reference(path: str, stamp: int, dataset: str) -> float:
    from explorer.analysis.arithmetic import decoded_elbo_reference

    return decoded_elbo_reference(ui.cached_model(path, stamp)[0], ui.cached_dataset(dataset).test)


use_sample = st.toggle("Operands from a posterior sample z ~ q(z|x) instead of μ", key=P + "sample")
TABS = {
    "abc": "a − b + c",
    "vectors": "Attribute vectors",
    "interpolation": "Interpolation",
}  # ?tab= opens one (from /learn)
tab_abc, tab_vec, tab_interp = st.tabs(list(TABS.values()), default=TABS.get(st.query_params.get("tab", ""), None))


def operand(col, label: str, cls: int, key: str) -> torch.Tensor:
    with col:
        st.markdown(f"**{label}**")
        i = ui.image_picker(split, names, key=P + key, label=label, default_class=cls, selection=selection)
        z = codes_of(model, split, [i], use_sample, seed=i)[0]
        ui.show_image(
            decode_codes(model, z[None], y_dec)[0],
            width=140,
            caption=f"decode(z_{label}) · {names[int(split.labels[i])]}",
        )
        return z


with tab_abc:
    c1, c2, c3, c4 = st.columns(4)
    za, zb, zc = operand(c1, "A", 7, "a"), operand(c2, "B", 1, "b"), operand(c3, "C", 4, "c")
    result = analogy(za, zb, zc)
    with c4:
        st.markdown("**A − B + C**")
        ui.show_image(decode_codes(model, result[None], y_dec)[0], width=140, caption="decode(z_A − z_B + z_C)")
    near = nearest_rows(codes, result.numpy(), 5)
    st.caption("The 5 real test images nearest to the result in latent space")
    ui.show_gallery(split.images[near], [f"{names[int(split.labels[i])]} · {i}" for i in near], width=84)

with tab_vec:
    st.markdown("An **attribute vector** is the mean code of one set minus the mean code of another.")
    sets = ["class " + n for n in names] + (["the latent-map selection"] if selection else [])
    c1, c2 = st.columns(2)
    set_a = c1.selectbox("Set A (towards)", sets, index=len(sets) - 1 if selection else 0, key=P + "set_a")
    set_b = c2.selectbox("Set B (away from)", sets, index=1 if len(sets) > 1 else 0, key=P + "set_b")
    if not selection:
        st.caption(
            "Tip: select points with the box or lasso tool on the Latent map (test split) to use them as a set here."
        )

    def rows_of(choice: str) -> np.ndarray:
        if choice == "the latent-map selection":
            return np.asarray(selection)
        return np.flatnonzero(split.labels.numpy() == sets.index(choice))

    try:
        v = attribute_vector(codes, rows_of(set_a), rows_of(set_b))
    except ExplorerError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(f"|v| = {np.linalg.norm(v):.2f} · A has {len(rows_of(set_a))} images, B has {len(rows_of(set_b))}")
    c1, c2 = st.columns([2, 3])
    with c1:
        target = ui.image_picker(split, names, key=P + "target", label="Apply to", default_class=3, selection=selection)
        strength = st.slider("Strength", -3.0, 3.0, 1.0, 0.25, key=P + "strength")
    z_t = codes_of(model, split, [target], use_sample, seed=target)[0]
    vt = torch.from_numpy(v)
    with c2:
        cols = st.columns(2)
        with cols[0]:
            ui.show_image(split.images[target], width=140, caption="the image")
        with cols[1]:
            ui.show_image(
                decode_codes(model, (z_t + strength * vt)[None], y_dec)[0],
                width=140,
                caption=f"decode(z + {strength:g}·v)",
            )
    strengths = torch.linspace(-2, 2, 9)
    ui.show_grid(
        decode_codes(model, strength_codes(z_t, vt, strengths), y_dec), nrow=9, scale=3, caption="strength −2 … +2"
    )
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    vname = c1.text_input(
        "Name this vector", f"{set_b.removeprefix('class ')} to {set_a.removeprefix('class ')}", key=P + "vname"
    )
    if c2.button("Save vector", icon=":material/save:", key=P + "save"):
        try:
            saved = save_vector(ckpt_hash, vname, v, about=f"{set_a} minus {set_b}")
            st.success(f"Saved '{saved}'. It appears as an extra slider on the Traverse page for this model.")
        except ExplorerError as exc:
            st.error(str(exc))
    saved = load_vectors(ckpt_hash, model.latent_dim)
    if saved:
        st.caption("Saved for this model: " + ", ".join(saved))

with tab_interp:
    c1, c2, c3 = st.columns([2, 2, 2])
    with c1:
        i0 = ui.image_picker(split, names, key=P + "i0", label="From", default_class=0, selection=selection)
    with c2:
        i1 = ui.image_picker(split, names, key=P + "i1", label="To", default_class=6, selection=selection)
    with c3:
        steps = st.slider("Steps", 3, 16, 10, key=P + "steps")
    z0, z1 = codes_of(model, split, [i0, i1], use_sample, seed=i0)
    paths = {mode: interpolate(z0, z1, steps, mode) for mode in ("linear", "slerp")}
    for mode, path in paths.items():
        ui.show_grid(decode_codes(model, path, y_dec), nrow=steps, scale=3, caption=f"{mode} interpolation")
    interpolation_scrubber(model, ckpt_hash, z0, z1, y_dec, key=P + "scrub")  # decoded live in the browser
    left, right = st.columns(2)
    with left:
        emb, proj, how = plane(codes)
        title = (
            "the path in the 2-D latent space" if how != "PCA" else "the path on the PCA projection of the test codes"
        )
        fig = class_scatter(emb, split.labels.numpy(), names, title, height=420, size=3)
        for mode, dash in (("linear", "solid"), ("slerp", "dot")):
            xy = proj(paths[mode].numpy())
            fig.add_scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="lines+markers",
                name=mode,
                line={"color": "black", "dash": dash, "width": 2},
            )
        st.plotly_chart(fig, key=P + "path")
    with right:
        ref = decoded_reference(str(cur.entry.path), stamp, ds.name)
        fig = path_figure(
            {m: path_elbo(model, p, y_dec) for m, p in paths.items()},
            {m: path_log_prior(p) for m, p in paths.items()},
            ref,
            typical_log_prior(model.latent_dim),
        )
        st.plotly_chart(fig, key=P + "elbo")
    st.caption(
        "Left chart: the −ELBO of each decoded image, against that of decoded test codes (decode(μ(x)), the same "
        "quantity); above the line, the path decodes to images the model finds unlikely. Right: log p(z) under the "
        "prior; above the shaded band the path passes codes as untypical as outliers, which lerp does near the centre."
    )

ui.explainer(
    "Why arithmetic works, and why slerp suits Gaussian latents",
    "The KL term makes the latent space smooth: nearby codes decode to similar images, and directions "
    "tend to mean the same thing everywhere. So a difference of codes (a 'stroke thickness' or 'slant' "
    "direction) can be added to another image's code. It works best between images of similar style and "
    "fails where the path leaves the region the data occupies.\n\n"
    "In high dimensions, samples from N(0, I) lie near a sphere of radius √d, and the centre is almost "
    "never visited. A straight line between two codes cuts through that improbable centre, so its middle "
    "decodes to blurry averages. **Slerp** follows the great circle and keeps the norm typical:\n\n"
    "$$\\mathrm{slerp}(z_0, z_1; t) = \\frac{\\sin((1-t)\\Omega)}{\\sin\\Omega} z_0 + \\frac{\\sin(t\\Omega)}{\\sin\\Omega} z_1,"
    "\\quad \\cos\\Omega = \\frac{z_0 \\cdot z_1}{\\|z_0\\|\\|z_1\\|}$$",
)
