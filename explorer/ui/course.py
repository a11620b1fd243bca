"""The /learn page's live demonstrations: one small widget per lesson step, each calling the core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import torch

from explorer.analysis.evaluate import ACTIVE_KL, encode_split
from explorer.analysis.generate import reconstruct, style_rows
from explorer.catalog import list_checkpoints
from explorer.course import demos
from explorer.course.steps import AE, CVAE, Z2, Z16
from explorer.figures import courseview as cv
from explorer.figures import reparamview as rv
from explorer.figures.mapview import class_scatter
from explorer.figures.viz import kl_bars_figure
from explorer.models import BaseVAE
from explorer.ui.coursepanels import kmeans_panel, projections_panel
from explorer.ui.resources import cached_dataset, cached_dims_by_kl, cached_image_scores, cached_model
from explorer.ui.widgets import show_gallery, show_grid, show_image

P = "learn_"
DATA = "mnist"


def _path(name: str) -> Path:
    """A shipped checkpoint by name, or a course model by name."""
    course = demos.course_checkpoints()
    if name in course:
        return course[name]
    for e in list_checkpoints():
        if e.name == name:
            return e.path
    st.warning(f"The checkpoint {name} is missing; run `make checkpoints`.")
    st.stop()


def _model(name: str) -> tuple[BaseVAE, str, int]:
    """(model, path, stamp) of a checkpoint by name, loaded once per process."""
    path = _path(name)
    stamp = path.stat().st_mtime_ns
    return cached_model(str(path), stamp)[0], str(path), stamp


@st.cache_data(max_entries=16, show_spinner="Encoding the test images…")
def _codes(path: str, stamp: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, logvar, labels) of the MNIST test split."""
    split = cached_dataset(DATA).test
    mu, logvar = encode_split(cached_model(path, stamp)[0], split)
    return mu, logvar, split.labels.numpy()


def _test():
    return cached_dataset(DATA).test


def _index(label: str, key: str, default: int = 0) -> int:
    return int(st.number_input(label, 0, len(_test()) - 1, default, key=P + key))


# --- steps ------------------------------------------------------------------------------------
def ae_vs_vae() -> None:
    names = [e.name for e in list_checkpoints() if e.source == "shipped"]
    picks = [
        col.selectbox(label, names, names.index(default) if default in names else 0, key=P + key)
        for col, label, default, key in zip(
            st.columns(2), ("Top diagram", "Bottom diagram"), (AE, Z2), ("arch_a", "arch_b")
        )
    ]
    for name, key in zip(picks, ("arch_a", "arch_b")):  # one above the other: a full width keeps the labels apart
        st.plotly_chart(cv.architecture_figure(demos.architecture(_model(name)[0]), name), key=P + key + "_fig")


def latent_space() -> None:
    mu, _, labels = _codes(*_model(Z2)[1:])
    fig = class_scatter(
        mu, labels, cached_dataset(DATA).class_names, f"μ(x) of {len(mu):,} test digits, z = 2", height=430
    )
    st.plotly_chart(fig, key=P + "space")


def elbo() -> None:
    model, path, stamp = _model(Z2)
    scores = cached_image_scores(path, stamp, DATA, "test")
    i = _index("Test image", "elbo_i", 7)
    x = _test().images[i]
    c1, c2, c3 = st.columns([1, 1, 3])
    with c1:
        show_image(x, 120, "image")
    with c2:
        show_image(reconstruct(model, x[None])[0], 120, "reconstruction")
    with c3:
        m = st.columns(3)
        med = {k: float(np.median(v)) for k, v in scores.items()}
        for col, k, label in zip(m, ("recon", "kl", "elbo"), ("reconstruction", "KL", "−ELBO")):
            col.metric(label, f"{scores[k][i]:.1f}", f"{scores[k][i] - med[k]:+.1f} vs median", delta_color="inverse")
        st.caption("nats for this image; the delta compares with the median test image.")


def bce_vs_mse() -> None:
    from explorer.analysis.generate import prior_samples, reconstructions

    seed = int(st.number_input("Seed", 0, 1000, 0, key=P + "bm_seed"))
    cols = st.columns(2)
    for col, name, label in zip(cols, ("mnist-vae-z2", "mnist-vae-z2-mse"), ("BCE", "MSE")):
        model = _model(name)[0]
        with col:
            x, xr, _ = reconstructions(model, _test(), 8, seed)
            show_grid(torch.cat([x, xr]), nrow=8, scale=2, caption=f"{label}: test images (top) and reconstructions")
            show_grid(prior_samples(model, 32, seed)[0], nrow=8, scale=2, caption=f"{label}: 32 samples from the prior")


def reparam() -> None:
    model, path, stamp = _model(Z2)
    c1, c2 = st.columns(2)
    with c1:
        i = _index("Test image", "rp_i", 0)
    seed = int(c2.number_input("Seed for ε", 0, 10_000, 0, key=P + "rp_seed"))
    rep = demos.reparameterise(model, _test().images[i], seed=seed)
    a, b, c, d = st.columns([1, 1, 1, 3])
    with a:
        show_image(_test().images[i], 110, "image x")
    with b:
        show_image(rep.decoded_mean, 110, "decode(μ)")
    with c:
        show_image(rep.decoded, 110, "decode(z)")
    with d:
        eps = ", ".join(f"{v:+.2f}" for v in rep.eps.tolist())
        st.markdown(f"ε = ({eps}) → z = μ + σ⊙ε = ({', '.join(f'{v:+.2f}' for v in rep.z.tolist())})")
        st.plotly_chart(rv.reparam_bars(rep), key=P + "rp_bars")
    left, right = st.columns([3, 2])
    mu, _, _ = _codes(path, stamp)
    left.plotly_chart(rv.reparam_cloud(rep, mu), key=P + "rp_cloud")
    right.plotly_chart(rv.gradient_diagram(rep), key=P + "rp_grad")


def beta() -> None:
    from explorer.analysis.traverse import code_of, traversal_grid, traversal_values

    model, path, stamp = _model(Z16)
    order, kl = cached_dims_by_kl(path, stamp, DATA)
    i = _index("Start from test image", "beta_i", 3)
    rows = order[:4]
    show_grid(
        traversal_grid(model, code_of(model, _test(), i), rows, traversal_values(3.0, 9)),
        nrow=9,
        scale=2,
        caption="rows: the 4 dimensions with most KL ("
        + ", ".join(f"z{d}: {kl[d]:.2f} nats" for d in rows)
        + "), each moved from −3 to +3",
    )


def collapse() -> None:
    options = [Z16] + [f"mnist-vae-z{z}" for z in demos.COURSE_SIZES if z >= 8]
    name = st.radio("Model", options, horizontal=True, key=P + "col_model")
    model, path, stamp = _model(name)
    _, kl = cached_dims_by_kl(path, stamp, DATA)
    fig = kl_bars_figure(kl, ACTIVE_KL)
    st.plotly_chart(fig, key=P + "col_fig")
    msg = demos.collapse_message(np.array(kl), model.stochastic)
    n_active = len(demos.active_dims(np.array(kl)))
    (st.warning(msg, icon=":material/warning:") if msg else st.success(f"All {n_active} dimensions are active."))


@st.cache_data(max_entries=2, show_spinner="Scoring the course models…")
def _sweep(stamps: tuple[int, ...]) -> tuple[list[dict], list[dict]]:
    split = _test()
    rows, ae = [], []
    for name, path in demos.course_checkpoints().items():
        if name.endswith("mse"):
            continue
        row = demos.latent_size_row(cached_model(str(path), path.stat().st_mtime_ns)[0], split)
        (ae if "-ae-" in name else rows).append({**row, "name": name})
    return rows, ae


def latent_size() -> None:
    course = demos.course_checkpoints()
    rows, ae = _sweep(tuple(p.stat().st_mtime_ns for p in course.values()))
    st.plotly_chart(cv.sweep_figure(rows, ae), key=P + "sweep")
    seed = int(st.number_input("Images (seed)", 0, 1000, 0, key=P + "sw_seed"))
    idx = torch.randperm(len(_test()), generator=torch.Generator().manual_seed(seed))[:8]
    x = _test().images[idx]
    grid = [x] + [reconstruct(_model(r["name"])[0], x) for r in rows + ae]
    show_grid(
        torch.cat(grid),
        nrow=8,
        scale=2,
        caption="rows: the images, then reconstructions with z = "
        + ", ".join(str(r["z"]) for r in rows)
        + " (VAE), then the AE with z = "
        + ", ".join(str(r["z"]) for r in ae),
    )


def sampling() -> None:
    from explorer.analysis.generate import prior_samples

    c1, c2 = st.columns([3, 1])
    t = c1.select_slider("Temperature T", [0.3, 0.5, 0.7, 1.0, 1.3, 1.6, 2.0], 1.0, key=P + "temp")
    seed = int(c2.number_input("Seed", 0, 1000, 0, key=P + "temp_seed"))
    show_grid(
        prior_samples(_model(Z16)[0], 32, seed, t)[0], nrow=16, scale=2, caption=f"32 draws from N(0, {t}² I), decoded"
    )


def _class_pick(label: str, key: str, default: int) -> int:
    from explorer.analysis.traverse import pick_index

    cls = st.selectbox(label, range(10), default, key=P + key)
    return pick_index(_test(), int(cls), 0)


def interpolation() -> None:
    from explorer.analysis.arithmetic import interpolate, path_elbo, path_log_prior, typical_log_prior
    from explorer.analysis.traverse import code_of, decode_codes

    model, path, stamp = _model(Z16)
    c1, c2 = st.columns(2)
    with c1:
        i0 = _class_pick("From digit", "ip0", 1)
    with c2:
        i1 = _class_pick("To digit", "ip1", 0)
    z0, z1 = code_of(model, _test(), i0), code_of(model, _test(), i1)
    paths = {m: interpolate(z0, z1, 10, m) for m in ("linear", "slerp")}
    for m, p in paths.items():
        show_grid(decode_codes(model, p), nrow=10, scale=2, caption=m)
    ref = _reference(path, stamp)
    fig = cv.path_figure(
        {m: path_elbo(model, p) for m, p in paths.items()},
        {m: path_log_prior(p) for m, p in paths.items()},
        ref,
        typical_log_prior(model.latent_dim),
    )
    st.plotly_chart(fig, key=P + "ip_fig")


@st.cache_data(max_entries=8, show_spinner=False)
def _reference(path: str, stamp: int) -> float:
    from explorer.analysis.arithmetic import decoded_elbo_reference

    return decoded_elbo_reference(cached_model(path, stamp)[0], _test())


def arithmetic() -> None:
    from explorer.analysis.arithmetic import analogy, nearest_rows
    from explorer.analysis.traverse import code_of, decode_codes

    model, path, stamp = _model(Z16)
    cols = st.columns(3)
    picks = []
    for col, (label, key, default) in zip(cols, (("a", "ar_a", 7), ("b", "ar_b", 1), ("c", "ar_c", 4))):
        with col:
            picks.append(_class_pick(f"{label}: a digit", key, default))
    za, zb, zc = (code_of(model, _test(), i) for i in picks)
    z = analogy(za, zb, zc)
    mu, _, _ = _codes(path, stamp)
    near = nearest_rows(mu, z.numpy(), 5)
    show_gallery(
        torch.cat([_test().images[picks], decode_codes(model, z[None]), _test().images[near]]),
        ["a", "b", "c", "decode(a − b + c)"] + [f"nearest real {k + 1}" for k in range(5)],
        width=84,
    )


def cvae() -> None:
    model = _model(CVAE)[0]
    seed = int(st.number_input("Style seed", 0, 1000, 0, key=P + "cvae_seed"))
    _, images = style_rows(model, 4, seed)  # (4 * 10, C, H, W)
    show_grid(
        images, nrow=model.config.n_classes, scale=2, caption="each row: one style code z, decoded with classes 0–9"
    )


def anomaly() -> None:
    from explorer.analysis.corrupt import corrupt
    from explorer.analysis.evaluate import per_sample_terms
    from explorer.data import Split

    model = _model(Z16)[0]
    c1, c2 = st.columns(2)
    with c1:
        i = _index("Test image", "an_i", 11)
    amount = c2.slider("Noise", 0.0, 1.0, 0.4, 0.1, key=P + "an_amt")
    x = _test().images[i : i + 1]
    noisy = corrupt(x, "gaussian noise", amount, seed=i)
    both = torch.cat([x, noisy])
    scores = per_sample_terms(model, Split(both, torch.zeros(2, dtype=torch.long)))["elbo"]
    show_gallery(
        torch.cat([both, reconstruct(model, both)]),
        [f"clean · −ELBO {scores[0]:.0f}", f"noisy · −ELBO {scores[1]:.0f}", "decode(μ(clean))", "decode(μ(noisy))"],
        width=130,
    )


def clustering() -> None:
    from explorer.analysis.projection import plane

    _, path, stamp = _model(Z16)
    mu, _, labels = _codes(path, stamp)
    kmeans_panel(f"{path}:{stamp}", plane(mu)[0], mu, labels, cached_dataset(DATA).class_names, P + "cl_")


def aggregate() -> None:
    from explorer.analysis.projection import plane

    name = st.radio("Model", [Z2, Z16], horizontal=True, key=P + "agg_model")
    _, path, stamp = _model(name)
    mu, logvar, _ = _codes(path, stamp)
    q = demos.aggregate_posterior(mu, logvar, 1000)
    prior = np.random.default_rng(1).standard_normal((1000, mu.shape[1])).astype(np.float32)
    _, project, how = plane(mu)
    st.plotly_chart(cv.prior_vs_aggregate(project(prior), project(q), how, demos.moment_gap(q)), key=P + "agg")


def shared() -> None:
    from explorer.analysis.multimodal import nearest_across

    model, path, stamp = _model("mnist-fashion-joint-vae")
    pair = cached_dataset(model.config.modalities[0] + "+" + model.config.modalities[1])
    a, b = _joint_codes(path, stamp, pair.name)
    direction = st.radio("Query", ["digit → garments", "garment → digits"], horizontal=True, key=P + "sh_dir")
    i = int(st.number_input("Query item (test index)", 0, len(a[0]) - 1, 3, key=P + "sh_i"))
    fashion = pair.partner.test
    (qa, qimg), (tb, timgs, tnames) = (
        ((a, pair.test.images), (b, fashion.images, cached_dataset(pair.partner.name).class_names))
        if direction.startswith("digit")
        else ((b, fashion.images), (a, pair.test.images, pair.class_names))
    )
    rows, dist = nearest_across(qa[0], i, tb[0], 8)
    show_gallery(
        torch.cat([qimg[i : i + 1], timgs[rows]]),
        ["query"] + [f"{tnames[tb[1][r]]} · {d:.2f}" for r, d in zip(rows, dist)],
        width=84,
    )


@st.cache_data(max_entries=4, show_spinner="Encoding both modalities…")
def _joint_codes(path: str, stamp: int, pair_name: str):
    from explorer.analysis.multimodal import encode_modality

    m = cached_model(path, stamp)[0]
    pair = cached_dataset(pair_name)
    a, _, la = encode_modality(m, pair, m.config.modalities[0])
    b, _, lb = encode_modality(m, pair, m.config.modalities[1])
    return (a, la), (b, lb)


def anchors() -> None:
    from explorer.analysis.anchors import scores_of, specs_of
    from explorer.figures.anchorview import anchor_figure

    model, path, stamp = _model("mnist-vae-mlp-z2-anchored")
    protos, targets, names = specs_of(model.config)
    mu, _, _ = _codes(path, stamp)
    scores = scores_of(_test().images, protos, model.config.anchor_score).numpy()
    st.plotly_chart(
        anchor_figure(
            mu[:, :2], scores, targets.numpy()[:, :2], names, title="test codes by anchor score; stars: targets"
        ),
        key=P + "anchors",
    )


def projections() -> None:
    _, path, stamp = _model(Z16)
    projections_panel(path, stamp, DATA, P + "proj_")


DEMOS = {
    "ae-vs-vae": ae_vs_vae,
    "latent-space": latent_space,
    "elbo": elbo,
    "bce-vs-mse": bce_vs_mse,
    "reparam": reparam,
    "beta": beta,
    "collapse": collapse,
    "latent-size": latent_size,
    "sampling": sampling,
    "interpolation": interpolation,
    "arithmetic": arithmetic,
    "cvae": cvae,
    "anomaly": anomaly,
    "clustering": clustering,
    "projections": projections,
    "aggregate": aggregate,
    "shared": shared,
    "anchors": anchors,
}
