"""Generate: prior samples, reconstructions with errors, anomaly ranking, denoising."""

import streamlit as st
import torch

from explorer import ui
from explorer.analysis.corrupt import CORRUPTIONS, corrupt, recon_errors
from explorer.analysis.generate import prior_samples, reconstruct, reconstructions
from explorer.course.steps import STEPS
from explorer.ui import course

P = "generate_"

ui.page_header("Generate")
cur = ui.current()
model, ds = cur.model, cur.dataset
stamp = cur.mtime_ns
names = ds.class_names
samples_tab, recon_tab, anomaly_tab, denoise_tab, compare_tab = st.tabs(
    ["Samples", "Reconstructions", "Anomalies", "Denoising", "Loss and latent size"]
)

with samples_tab:
    c1, c2, c3 = st.columns(3)
    seed = int(c1.number_input("Seed", 0, 100_000, 0, key=P + "seed"))
    temp = c2.slider("Temperature T", 0.1, 2.0, 1.0, 0.1, key=P + "temp", help="z ~ N(0, T²I)")
    n = c3.select_slider("How many", [16, 32, 64, 128], 64, key=P + "n")
    images, labels = prior_samples(model, n=max(n, 10 * 8) if model.conditional else n, seed=seed, temperature=temp)
    if labels is not None:
        per_row = len(images) // model.config.n_classes
        st.caption("Class-conditional samples: one row per class, " + ", ".join(names[: model.config.n_classes]))
        ui.show_grid(images, nrow=per_row, scale=3)
    else:
        ui.show_grid(images, nrow=16, scale=3, caption=f"{n} samples decoded from z ~ N(0, {temp:.1f}² I)")
    ui.explainer(
        "Sampling from the prior, and the reparameterization trick",
        "Training pushes every image's posterior q(z|x) = N(μ(x), σ(x)²) towards the prior N(0, I), so "
        "codes drawn from the prior land where the decoder has learnt to draw. Lower temperature samples "
        "nearer the centre: cleaner, more typical images; higher temperature gives more variety and more "
        "failures.\n\nTo train through a random draw, the VAE writes it as a deterministic function of the "
        "encoder's outputs and independent noise:\n\n$$z = \\mu + \\sigma \\odot \\varepsilon, \\quad "
        "\\varepsilon \\sim \\mathcal{N}(0, I)$$\n\nso gradients reach μ and σ = exp(½ log σ²). The loss is "
        "the negative ELBO:\n\n$$\\mathcal{L} = -\\mathbb{E}_{q(z|x)}[\\log p(x|z)] + "
        "\\beta\\,\\mathrm{KL}(q(z|x)\\,\\|\\,\\mathcal{N}(0, I))$$",
    )

with recon_tab:
    c1, c2, c3 = st.columns(3)
    r_seed = int(c1.number_input("Which test images (seed)", 0, 100_000, 0, key=P + "r_seed"))
    r_n = c2.select_slider("How many", [8, 16, 24, 32], 16, key=P + "r_n")
    view = c3.radio(
        "Error view",
        ["bce", "mse"],
        horizontal=True,
        key=P + "view",
        format_func=lambda v: {"bce": "BCE (nats)", "mse": "summed squared error"}[v],
    )
    x, x_hat, idx = reconstructions(model, ds.test, r_n, r_seed)
    errs = recon_errors(x, x_hat, view)
    cols = st.columns(8)
    for i in range(len(x)):
        with cols[i % 8]:
            ui.show_image(
                torch.cat([x[i], x_hat[i]], dim=-2),
                width=84,
                caption=f"{names[int(ds.test.labels[idx[i]])]} · {errs[i]:.1f}",
            )
    st.caption("Each pair: original above, reconstruction below; the number is the reconstruction error.")

with anomaly_tab:
    scores = ui.cached_image_scores(str(cur.entry.path), stamp, ds.name, "test")
    elbo = torch.tensor(scores["elbo"])
    k = st.slider("Show", 4, 32, 16, 4, key=P + "k")
    order = torch.argsort(elbo, descending=True)
    st.markdown(f"**Least likely** test images (highest −ELBO, nats) out of {len(elbo):,}: candidates for anomalies.")
    worst = order[:k].tolist()
    ui.show_gallery(ds.test.images[worst], [f"{names[int(ds.test.labels[i])]} · {elbo[i]:.0f}" for i in worst])
    st.markdown("**Most likely** (lowest −ELBO): what the model finds most typical.")
    best = order.flip(0)[:k].tolist()
    ui.show_gallery(ds.test.images[best], [f"{names[int(ds.test.labels[i])]} · {elbo[i]:.0f}" for i in best])
    ui.explainer(
        "Anomaly detection with a VAE",
        "The negative ELBO bounds −log p(x) from above, so a high value flags an image the model "
        "finds unlikely: badly written digits, odd crops, or images from another dataset. Choose "
        "another dataset in the sidebar (say Fashion-MNIST under an MNIST model) and its images "
        "score far worse. The bound mixes two parts: images that are hard to rebuild (recon) and "
        "codes far from the prior (KL).",
    )

with denoise_tab:
    c1, c2 = st.columns([3, 2])
    with c1:
        index = ui.image_picker(ds.test, names, key=P + "dn", label="Image")
    with c2:
        kind = st.selectbox("Corruption", CORRUPTIONS, key=P + "dn_kind")
        amount = st.slider("Strength", 0.0, 1.0, 0.3, 0.05, key=P + "dn_amount")
    x = ds.test.images[index : index + 1]
    noisy = corrupt(x, kind, amount, seed=index)
    cleaned = reconstruct(model, noisy, ds.test.labels[index : index + 1])
    cols = st.columns(3)
    for col, img, cap in zip(
        cols,
        (x[0], noisy[0], cleaned[0]),
        ("original", f"{kind} ({amount:.2f})", "reconstruction of the corrupted input"),
    ):
        with col:
            ui.show_image(img, width=224, caption=cap)
    st.caption("The encoder maps the corrupted image near the codes of clean images, so the decoder draws a clean one.")

with compare_tab:  # the course's small models (checkpoints/course/): the same text and widgets as /learn's steps
    for key, widget in (("bce-vs-mse", course.bce_vs_mse), ("latent-size", course.latent_size)):
        step = next(s for s in STEPS if s.key == key)
        st.subheader(step.title)
        st.markdown(step.body)
        st.latex(step.formula)
        widget()
