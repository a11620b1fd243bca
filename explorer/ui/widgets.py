"""Small widgets the pages share: image grids, model summary, explainers."""

from __future__ import annotations

import streamlit as st
from torch import Tensor

from explorer.ui.sidebar import Current
from explorer.viz import history_figure, image_grid


def show_grid(images: Tensor, nrow: int = 8, scale: int = 3, caption: str | None = None) -> None:
    """Draw a tiled image grid with crisp (nearest-neighbour) pixels."""
    st.image(image_grid(images, nrow=nrow, scale=scale), caption=caption)


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
    st.caption(f"Trained on **{m['dataset']}** ({m['split']}) for {m['epochs']} epochs, seed {m['seed']}. "
               f"Now showing **{cur.dataset.name}** ({cur.dataset.source}).")  # fmt: skip
    with st.expander("Training curves and metadata"):
        if m.get("history"):
            st.plotly_chart(history_figure(m["history"]), key="widgets_history")
        st.json(m, expanded=False)
