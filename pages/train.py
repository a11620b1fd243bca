"""Train: a VAE trains live in a worker process while the page shows curves, maps and reconstructions."""

import time
from pathlib import Path

import streamlit as st

from explorer import ui
from explorer.analysis.anchors import anchor_names
from explorer.analysis.generate import prior_samples
from explorer.catalog import checkpoint_name
from explorer.errors import ExplorerError
from explorer.figures.trainview import curves_figure, newest_snapshot, read_run, snapshot_epoch
from explorer.models import get_model_class, model_names
from explorer.training.pipeline import DEFAULT_ANCHOR_RATE, RunSpec, ae_against_vae, beta_sweep, datasets_for
from explorer.training.train import TrainSettings
from explorer.training.trainjob import spec_to_dict
from explorer.ui.configform import config_form
from explorer.ui.coursepanels import collapse_warning

P = "train_"
DATASET = P + "dataset"  # the chosen dataset, for the map's class names below

ui.page_header("Train a VAE")
runner = ui.job_runner()


def settings_ui() -> RunSpec:
    """The run's settings as a RunSpec (validated when submitted): model options come from its config."""
    c1, c2 = st.columns(2)
    kinds = model_names()
    model = c1.selectbox("Model", kinds, index=kinds.index("vae-mlp"), key=P + "model")
    dataset = c2.selectbox(
        "Dataset",
        datasets_for(model),
        key=f"{P}dataset_{model}",
        help="Only the datasets this model trains on: paired ones for joint-vae.",
    )
    st.session_state[DATASET] = dataset
    config = config_form(model, P + "cfg_")
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", 1, 200, 5, key=P + "epochs")
    batch = c2.select_slider("Batch size", [32, 64, 128, 256, 512], 128, key=P + "batch")
    lr = c3.select_slider(
        "Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], 1e-3, key=P + "lr", format_func=lambda v: f"{v:g}"
    )
    seed = c4.number_input("Seed", 0, 100_000, 0, key=P + "seed")
    anchors, rate = (), 0.0
    if get_model_class(model).stochastic:  # anchors act through the KL term
        try:
            choices = anchor_names(ui.cached_dataset(dataset))
        except ExplorerError:
            choices = []  # the dataset is missing: submitting says so
        anchors = st.multiselect(
            "Anchors (optional)",
            choices,
            key=f"{P}anchors_{dataset}",
            help="Pull images that look like each prototype towards a target region. See the Anchors page.",
        )
        rate = st.slider("Anchor rate", 0.5, 10.0, DEFAULT_ANCHOR_RATE, 0.5, key=P + "rate") if anchors else 0.0
    return RunSpec(
        model, dataset, config, TrainSettings(int(epochs), int(batch), float(lr), int(seed)), tuple(anchors), rate
    )


def submit(spec: RunSpec, name: str) -> str | None:
    """Validate and queue a run; shows the error and returns None if the settings are bad."""
    try:
        spec.model_config(ui.cached_dataset(spec.dataset))
    except ExplorerError as exc:
        st.error(f"Cannot start: {exc}")
        return None
    return runner.submit("train", {"spec": spec_to_dict(spec), "name": name})


def run_name(spec: RunSpec, tag: str = "") -> str:
    return f"{spec.model}-z{spec.config['latent_dim']}-{spec.dataset}{tag}-{time.strftime('%m%d-%H%M%S')}"


with st.container(border=True):
    spec = settings_ui()
    b1, b2, b3, _ = st.columns([1, 1, 1, 2])
    if b1.button("Start training", type="primary", icon=":material/play_arrow:", key=P + "start"):
        if job := submit(spec, run_name(spec)):
            st.session_state[P + "job"] = job
    if b2.button(
        "β sweep: 0.5, 1, 4",
        icon=":material/compare:",
        key=P + "beta_sweep",
        help="Trains the same model three times with β = 0.5, 1 and 4, same seed.",
    ):
        runs = beta_sweep(spec)
        jobs = {label: submit(s, run_name(s, f"-beta{s.config['beta']:g}")) for label, s in runs.items()}
        st.session_state[P + "group"] = {"kind": "beta", "jobs": jobs}
    if b3.button(
        "AE against VAE",
        icon=":material/compare_arrows:",
        key=P + "aevae",
        help="Trains ae-mlp and vae-mlp with a 2-D latent, same seed.",
        disabled=get_model_class(spec.model).needs_dataset,
    ):  # one-modality models only
        jobs = {label: submit(s, run_name(s, "-cmp")) for label, s in ae_against_vae(spec).items()}
        st.session_state[P + "group"] = {"kind": "aevae", "jobs": jobs}


def snapshot_ui(job_id: str, class_names: tuple[str, ...], height: int = 380, title: str = "") -> None:
    path = newest_snapshot(runner.job_dir(job_id))
    view = (
        ui.cached_epoch_view(str(path), class_names, title or f"epoch {snapshot_epoch(path)}", height) if path else None
    )
    if view is None:
        st.caption("The latent map appears after the first epoch.")
        return
    st.plotly_chart(view[0], key=f"{P}map_{job_id}_{path.stem}")
    st.image(view[1], caption="8 test images (top) and their reconstructions (bottom)")


def finished_ui(status, job_id: str) -> None:
    ckpt = (status.extra or {}).get("checkpoint")
    if not ckpt:
        return
    name = checkpoint_name(ckpt)
    c1, c2 = st.columns([1, 1])
    if c1.button(f"Explore {name}", icon=":material/visibility:", key=f"{P}use_{job_id}"):
        ui.open_model(name)
        st.rerun()
    # The bytes themselves, not a deferred callable: the 1.5 s refresh re-registers the same content
    # under the same URL, where a deferred file could vanish between the refresh and the click.
    c2.download_button(
        "Download checkpoint",
        Path(ckpt).read_bytes(),
        f"{name}.safetensors",
        key=f"{P}dl_{job_id}",
        icon=":material/download:",
        mime="application/octet-stream",
    )
    collapse_warning(ckpt)  # posterior collapse is said where it happens


job_id = st.session_state.get(P + "job")
if job_id:
    st.subheader("This run")

    # Two fragments at two paces: the bar and the curves every 1.5 s, the epoch's map (WebGL, the
    # costliest thing here for a browser to redraw) every 3 s. Each rerun costs every open tab.
    @st.fragment(run_every=1.5)
    def live() -> None:
        status = ui.follow_job(job_id, key=P + "stop")  # once it ends, a full rerun refreshes the sidebar's picker
        if status is None:
            st.warning("This run's files are gone.")
            return
        if status.state == "stopped" and ui.has_result(status):  # the panel says stopped; this, what it kept
            name = Path(status.extra["checkpoint"]).name
            at = ui.stopped_epoch(status, runner.job_dir(job_id))
            held = f"at {at}, the last one completed" if at else "at the last epoch completed"
            st.info(
                f"Saved {name} {held} before the stop. It is now in the sidebar's picker for every page.",
                icon=":material/save:",
            )
            finished_ui(status, job_id)
        elif ui.has_result(status):
            st.success(f"Finished: {status.message}. The model is now in the sidebar's picker for every page.")
            finished_ui(status, job_id)
        by = st.radio("Curves by", ["step", "epoch"], horizontal=True, key=P + "by")
        view = read_run(runner.job_dir(job_id), snapshot=False)
        if view.curves or view.history:
            st.plotly_chart(curves_figure(view, by), key=f"{P}curves")

    @st.fragment(run_every=3.0)
    def epoch_view() -> None:
        snapshot_ui(job_id, ui.cached_dataset(st.session_state.get(DATASET, "mnist")).class_names)

    left, right = st.columns([3, 2], gap="large")
    with left:
        live()
    with right:
        epoch_view()

group = st.session_state.get(P + "group")
if group:
    st.subheader("β sweep" if group["kind"] == "beta" else "Autoencoder against VAE")
    ds_names = ui.cached_dataset(st.session_state.get(DATASET, "mnist")).class_names

    @st.fragment(run_every=2.0)
    def compare() -> None:
        cols = st.columns(len(group["jobs"]))
        for col, (label, jid) in zip(cols, group["jobs"].items()):
            with col:
                st.markdown(f"**{label}**")
                status = (
                    ui.follow_job(jid, key=f"{P}stop_{jid}", stoppable=False, rerun_on_result=False) if jid else None
                )
                if status is None:
                    continue
                snapshot_ui(jid, ds_names, height=300, title=" ")
                hist = read_run(runner.job_dir(jid), snapshot=False).history
                if hist:
                    st.caption(f"test recon {hist[-1]['test_recon']:.1f} · KL {hist[-1]['test_kl']:.2f} nats")
                ckpt = (status.extra or {}).get("checkpoint")
                if group["kind"] == "aevae" and status.state == "done" and ckpt:
                    model, _ = ui.cached_model(ckpt, Path(ckpt).stat().st_mtime_ns)
                    ui.show_grid(
                        prior_samples(model, 32, seed=0)[0], nrow=8, scale=2, caption="decoded from z ~ N(0, I)"
                    )

    compare()
    if group["kind"] == "aevae":
        st.caption(
            "The autoencoder's codes are not pulled towards N(0, I): its map has gaps and an arbitrary "
            "scale, so points drawn from the prior often decode to nothing recognisable. The VAE's KL "
            "term fills the prior's space, so its samples look like digits."
        )
    else:
        st.caption(
            "Higher β weighs the KL term more: codes crowd towards the prior, dimensions collapse, "
            "reconstructions blur, and the KL falls while the reconstruction error rises."
        )


@st.fragment(run_every=2.0)
def running_jobs() -> None:
    ui.running_jobs_ui(key=P + "running_")


# Built only while open: closed, the list still read every job folder every 2 s in every /train tab.
with ui.lazy_expander(
    "Jobs running now, from every session and app server", P + "running_open", ":material/sync:"
) as running_open:
    if running_open:
        running_jobs()

with ui.lazy_expander("Recent runs", P + "recent_open") as recent_open:
    if recent_open:
        recent = runner.jobs("train")[:10]
        for s in recent:
            st.caption(ui.run_line(s, runner.job_dir(s.id)))
        if not recent:
            st.caption("No training run yet.")

ui.explainer(
    "The ELBO and what each curve means",
    "A VAE maximises the evidence lower bound (ELBO) on log p(x). We plot its negative, in nats per image:\n\n"
    "$$-\\mathrm{ELBO} = \\underbrace{-\\mathbb{E}_{q(z|x)} \\log p(x|z)}_{\\text{recon}} + "
    "\\underbrace{\\mathrm{KL}(q(z|x)\\,\\|\\,p(z))}_{\\text{KL}}$$\n\n"
    "- **recon** falls as the decoder learns to redraw images from their codes.\n"
    "- **KL** measures how far each posterior is from the prior N(0, I): the information the code carries. "
    "It usually rises early (codes spread out to carry information) and then settles.\n"
    "- **total** is recon + β·KL, what training minimises. Test curves (dashed) above train curves "
    "mean the model generalises less well; a growing gap means overfitting.\n"
    "- Any other curve is a further term of this model's loss, added to total at its weight: **anchor** "
    "(the anchors' pull), the joint VAE's **unimodal** ELBOs and alignment terms, β-TCVAE's **tc**.",
)
