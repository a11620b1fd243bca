"""Home: what a VAE is, the chosen model's metrics, reconstructions and prior samples."""

import streamlit as st

from explorer import ui
from explorer.analysis.generate import prior_samples, reconstructions
from explorer.course.demos import architecture
from explorer.figures.courseview import architecture_figure
from explorer.ui.coursepanels import collapse_warning

ui.page_header("Latent Explorer")
st.markdown(
    "A **variational autoencoder** squeezes each image into a few numbers, its *latent code* "
    "z, and learns to rebuild the image from that code. Training pulls the codes towards a "
    "standard normal distribution, so any point drawn from that normal decodes to a plausible "
    "image. Pick a model in the sidebar and look inside it."
)
with st.expander("What each page is for", expanded=False):
    st.markdown(
        "- **Latent map**: every image's code as a scatter (t-SNE, UMAP, PCA or raw axes); click a point.\n"
        "- **Traverse**: one slider per latent dimension, and traversal grids.\n"
        "- **Generate**: samples from the prior, reconstructions, anomalies, denoising.\n"
        "- **Arithmetic**: a − b + c, attribute vectors and interpolation.\n"
        "- **Anchors**: steer chosen shapes into chosen latent regions.\n"
        "- **Train**: train a small VAE live and watch the latent map take shape.\n"
        "- **Shared space**: one latent space for two modalities."
    )

cur = ui.current()
ui.model_summary(cur)
collapse_warning(str(cur.entry.path))
with st.expander("Architecture, drawn from the model's config", icon=":material/account_tree:"):
    st.plotly_chart(architecture_figure(architecture(cur.model), cur.entry.name), key="home_arch")

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Originals and reconstructions")
    seed = st.number_input("Which test images (seed)", 0, 10_000, 0, key="home_recon_seed")
    x, x_hat, _ = reconstructions(cur.model, cur.dataset.test, n=10, seed=int(seed))
    ui.show_grid(x, nrow=10, scale=3, caption="Test images")
    ui.show_grid(x_hat, nrow=10, scale=3, caption="Their reconstructions (decoded posterior means)")
with right:
    st.subheader("Samples from the prior")
    c1, c2 = st.columns(2)
    s_seed = c1.number_input("Sample seed", 0, 10_000, 0, key="home_sample_seed")
    temp = c2.slider(
        "Temperature",
        0.1,
        2.0,
        1.0,
        0.1,
        key="home_temperature",
        help="Scales the prior's standard deviation: lower gives typical, higher gives diverse samples.",
    )
    samples, labels = prior_samples(
        cur.model, n=60 if cur.model.conditional else 64, seed=int(s_seed), temperature=temp
    )
    caption = "z ~ N(0, T²I), decoded" + (", one row per class" if labels is not None else "")
    ui.show_grid(samples, nrow=6 if labels is not None else 8, scale=3, caption=caption)
