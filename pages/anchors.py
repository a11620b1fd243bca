"""Anchors: steer chosen shapes into chosen latent regions, and see where they land."""

import time

import streamlit as st
import torch

from explorer import ui
from explorer.analysis.anchors import anchor_names, describe, scores_of, short_run_warning, specs_of, target_distances
from explorer.analysis.evaluate import encode_split
from explorer.catalog import checkpoint_name, find_baseline, list_checkpoints
from explorer.figures.anchorview import anchor_figure, claimed_regions, class_map_figure, decoded_plane, distance_figure
from explorer.training.pipeline import DEFAULT_ANCHOR_RATE, PAIR_DATASET, anchored_pair
from explorer.training.trainjob import spec_to_dict
from explorer.ui.anchorpick import custom_anchor_ui, full_name

P = "anchors_"

ui.page_header("Anchor regions")
st.markdown(
    "An **anchor** is a prototype image with a target point in latent space. During training, each "
    "image's posterior mean is pulled towards the targets of the prototypes it resembles, weighted by "
    "its score, so a model retrained from scratch puts the same shapes in the same places again. "
    "Prototypes can be the built-in *donut* and *stick*, a class's mean image, or any training image."
)
cur = ui.current()
model, ds = cur.model, cur.dataset


def train_pair_ui() -> None:
    """Train an anchored model and its plain twin (same seed, same data) in background workers."""
    runner = ui.job_runner()
    c1, c2, c3, c4 = st.columns(4)
    with st.expander(
        "Make your own anchor: a training image or a drawing, and a target you click", icon=":material/add_location:"
    ):
        mnist, over = (
            ui.cached_dataset(PAIR_DATASET),
            model.latent_dim == 2 and ds.name == "mnist",
        )  # the pair trains on MNIST
        custom = custom_anchor_ui(
            mnist,
            ui.cached_codes(str(cur.entry.path), cur.mtime_ns, ds.name) if over else None,
            mnist.test.labels.numpy() if over else None,
            P + "custom_",
            P + "names",
        )
    choices = anchor_names(mnist) + custom
    anchors = c1.multiselect("Anchors", choices, ["donut", "stick"], key=P + "names", max_selections=4)
    rate = c2.slider("Anchor rate", 0.5, 10.0, DEFAULT_ANCHOR_RATE, 0.5, key=P + "rate")
    epochs = c3.slider("Epochs", 1, 30, 5, key=P + "epochs")
    seed = int(c4.number_input("Seed", 0, 10_000, 0, key=P + "seed"))
    if st.button(
        "Train the anchored model and its plain twin",
        icon=":material/model_training:",
        disabled=len(anchors) < 1,
        key=P + "go",
    ):
        stamp = time.strftime("%H%M%S")
        tag = "-".join(a.replace(":", "") for a in anchors)
        names = {"anchored": f"anchored-{tag}-s{seed}-{stamp}", "plain": f"plain-s{seed}-{stamp}"}
        st.session_state[P + "jobs"] = {
            kind: runner.submit("train", {"spec": spec_to_dict(spec), "name": names[kind]})
            for kind, spec in anchored_pair(tuple(full_name(a) for a in anchors), rate, epochs, seed).items()
        }

    jobs = st.session_state.get(P + "jobs", {})
    if jobs:
        ids = list(jobs.values())

        @st.fragment(run_every=1.0)
        def progress() -> None:
            statuses = []
            for kind, j in jobs.items():
                st.caption(f"{kind} model")
                statuses.append(ui.follow_job(j, key=P + "stop" + j, rerun_on_result=False))
            if all(s and not s.active for s in statuses) and st.session_state.get(P + "shown") != ids:
                st.session_state[P + "shown"] = ids
                if done := [s for s in statuses if ui.has_result(s)]:
                    ui.open_model(checkpoint_name(done[0].extra["checkpoint"]))
                st.rerun(scope="app")

        progress()


if cur.entry.foreign:  # anchors are a training loss; an imported model was trained elsewhere
    st.info(
        f"Anchors are a loss used in training, and **{cur.entry.name}** was trained outside this app, so it "
        "has none to show. Train an anchored model and its plain twin here.",
        icon=":material/anchor:",
    )
    train_pair_ui()
    st.stop()
if not model.config.anchors:
    st.info(
        "This model was trained without anchors. Pick **mnist-vae-mlp-z2-anchored** in the sidebar, "
        "or train an anchored model and its plain twin here.",
        icon=":material/anchor:",
    )
    train_pair_ui()
    st.stop()

protos, targets, names = specs_of(model.config)
stamp = cur.mtime_ns
st.markdown(describe(names, targets))


@st.cache_data(max_entries=16, show_spinner="Encoding the test split…")
def analysis(path: str, stamp: int, dataset: str, other: str | None, other_stamp: int = 0) -> dict:
    m = ui.cached_model(path, stamp)[0]
    split = ui.cached_dataset(dataset).test
    scores = scores_of(split.images, protos, m.config.anchor_score)
    mu, _ = encode_split(m, split)
    out = {
        "mu": mu,
        "scores": scores.numpy(),
        "labels": split.labels.numpy(),
        "dist": target_distances(torch.from_numpy(mu), scores, targets),
    }
    if m.latent_dim == 2:  # decoded lattices: the regions each anchor claims, and the plane itself
        out.update(regions=claimed_regions(m, protos, kind=m.config.anchor_score), plane=decoded_plane(m))
    if other:
        o = ui.cached_model(other, other_stamp)[0]
        omu, _ = encode_split(o, split)
        out.update(other_mu=omu, other_dist=target_distances(torch.from_numpy(omu), scores, targets))
    return out


baseline = find_baseline(cur.entry, list_checkpoints())
a = analysis(
    str(cur.entry.path),
    stamp,
    ds.name,
    str(baseline.path) if baseline else None,
    baseline.path.stat().st_mtime_ns if baseline else 0,
)
mu2, t2 = a["mu"][:, :2], targets.numpy()[:, :2]
if model.latent_dim != 2:
    st.caption(f"This model's latent has {model.latent_dim} dimensions; the plots show the first two.")
st.caption(f"Anchors: {', '.join(names)} · rate {model.config.anchor_rate:g} · score: {model.config.anchor_score}")

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Where the data lands")
    regions = a.get("regions")
    st.plotly_chart(
        anchor_figure(
            mu2, a["scores"], t2, names, regions, title="Test codes by anchor score; tint = region each anchor claims"
        ),
        key=P + "fig",
    )
    st.caption("Each tinted region is where the decoded image scores highest against that anchor's prototype.")
with right:
    st.subheader("Decoded over the latent plane")
    if model.latent_dim == 2:
        ui.show_grid(a["plane"], nrow=15, scale=1, caption="z from (−4, +4) top-left to (+4, −4) bottom-right")
    st.markdown("**Prototypes**")
    ui.show_gallery(protos.view(-1, *model.config.in_shape), names, width=84)

st.subheader("Anchored against plain")
if baseline is None:
    st.info("No plain twin of this model (same recipe and seed, no anchors) is known. Train a pair below.")
else:
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        class_map_figure(mu2, a["labels"], t2, names, f"{cur.entry.name} (anchored)", ds.class_names), key=P + "cmp1"
    )
    c2.plotly_chart(
        class_map_figure(a["other_mu"][:, :2], a["labels"], t2, names, f"{baseline.name} (no anchors)", ds.class_names),
        key=P + "cmp2",
    )
st.plotly_chart(distance_figure(names, a["dist"], a.get("other_dist")), key=P + "dist")
st.caption(
    "Mean distance from the codes of each anchor's top-scored 10% of test images to that anchor's target: "
    "lower means the anchor pulled its data home."
)
if warn := short_run_warning(names, a["dist"], a.get("other_dist"), int(cur.meta["epochs"])):
    st.warning(warn, icon=":material/timer:")

with st.expander("Train an anchored model and its plain twin", icon=":material/model_training:"):
    train_pair_ui()

ui.explainer(
    "The anchored KL, and how it relates to conditional VAEs",
    "The VAE's KL term pulls every posterior mean μ towards 0. The anchored loss computes the KL on a "
    "shifted mean instead:\n\n$$\\mathrm{KL}_{anch} = -\\tfrac12 \\sum_j \\big(1 + \\log\\sigma_j^2 - "
    "(\\mu_j - r\\textstyle\\sum_k s_k(x)\\,t_{kj})^2 - \\sigma_j^2\\big)$$\n\nwhere $s_k(x)$ is the score of "
    "image x against prototype k (its normalised overlap $x\\cdot p_k / \\sum x$), $t_k$ is the anchor's "
    "target and r the rate. The minimum is now at μ = r·Σ s_k t_k, so round images are pulled towards "
    "the donut's corner and upright strokes towards the stick's. With targets at ∓(1, 1), this is exactly "
    "the classic donut/stick loss: KL on μ + r·s with s = donut overlap − stick overlap.\n\n"
    "A **conditional VAE** gives the decoder the label and lets the latent code ignore it; an anchored "
    "VAE does the opposite: it writes a soft, continuous 'label' (the score) *into* a chosen region of "
    "the latent space, with no labels needed, so the layout becomes predictable across retraining.",
)
