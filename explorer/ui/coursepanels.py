"""Course demonstrations that other pages show too: the collapse warning, the reparameterisation trick,
k-means and the three maps side by side. Each is a thin widget over ``explorer.course.demos``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import torch

from explorer.course import demos
from explorer.figures import courseview as cv
from explorer.figures import reparamview as rv
from explorer.figures.mapview import class_scatter
from explorer.models import BaseVAE
from explorer.ui.resources import cached_dataset, cached_dims_by_kl, cached_model
from explorer.ui.widgets import show_image


def collapse_warning(path: str) -> None:
    """A one-line warning under a model's results when some or all of its latent dimensions are inactive."""
    p = Path(path)
    model, meta = cached_model(str(p), p.stat().st_mtime_ns)
    _, kl = cached_dims_by_kl(str(p), p.stat().st_mtime_ns, meta["dataset"])
    if msg := demos.collapse_message(np.array(kl), model.stochastic):
        st.warning(f"{msg} [Why](/learn?step=7)", icon=":material/warning:")


def reparam_panel(
    model: BaseVAE, x: torch.Tensor, y: int | None, key: str, background: np.ndarray | None = None
) -> None:
    """z = mu + sigma * eps for one image: its draw, decode, and (2-D latents) the cloud of q(z|x) over ``background``."""
    seed = int(st.number_input("Seed for ε", 0, 10_000, 0, key=key + "seed"))
    rep = demos.reparameterise(model, x, y if model.conditional else None, seed=seed)
    c1, c2 = st.columns([1, 3])
    with c1:
        show_image(rep.decoded, 140, "decode(z), z = μ + σ⊙ε")
    c2.plotly_chart(rv.reparam_bars(rep), key=key + "bars")
    if model.latent_dim == 2:
        st.plotly_chart(rv.reparam_cloud(rep, background), key=key + "cloud")


@st.cache_data(max_entries=8, show_spinner="k-means on the codes…")
def _kmeans(map_key: str, k: int, _mu: np.ndarray, _labels: np.ndarray) -> demos.Clustering:
    return demos.kmeans_clusters(_mu, _labels, k)


def kmeans_panel(
    map_key: str, xy: np.ndarray, mu: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], key: str
) -> None:
    """k-means on mu (scikit-learn): ARI and NMI against the labels, the clusters on the map, a confusion matrix."""
    k = st.slider("Clusters k", 2, 20, 10, key=key + "k")
    cl = _kmeans(map_key, k, mu, labels)
    c = st.columns(2)
    c[0].metric("Adjusted Rand index", f"{cl.ari:.3f}", help="1 = the clusters are the classes, 0 = chance")
    c[1].metric("Normalised mutual information", f"{cl.nmi:.3f}")
    left, right = st.columns(2)
    left.plotly_chart(
        class_scatter(xy[:, :2], cl.assign, cv.cluster_names(cl, class_names), "k-means clusters on this map"),
        key=key + "map",
    )
    right.plotly_chart(cv.confusion_figure(cl, class_names), key=key + "conf")


def projections_panel(path: str, stamp: int, dataset: str, key: str) -> None:
    """PCA, t-SNE and UMAP of the same test codes side by side, each with its 10-NN accuracy and trustworthiness.

    The maps are the ones /latent-map shows by default: computed once, in worker processes, and cached on disk.
    """
    from explorer.analysis.projection import ProjectionParams, cache_key
    from explorer.ui.jobs import job_runner
    from explorer.ui.resources import checkpoint_hash, ready_projection

    runner = job_runner()
    labels = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    keys = {m: cache_key(checkpoint_hash(path, stamp), dataset, ProjectionParams(method=m)) for m in labels}
    for m, k in keys.items():
        s = runner.status(f"map-{k}")
        retry = (
            s is not None
            and s.state == "failed"
            and st.button(f"Compute the {labels[m]} map again", key=key + "retry" + m)
        )
        if ready_projection(k) is None and (s is None or s.state == "stopped" or retry):
            runner.submit(
                "projection",
                {"checkpoint": path, "dataset": dataset, "projection": ProjectionParams(method=m).to_dict()},
                f"map-{k}",
            )
    missing = any(ready_projection(k) is None for k in keys.values())
    names = cached_dataset(dataset).class_names

    @st.fragment(run_every=2.0 if missing else None)
    def panels() -> None:
        for col, (m, k) in zip(st.columns(3), keys.items()):
            proj = ready_projection(k)
            with col:
                s = runner.status(f"map-{k}")
                if proj is None and s is not None and s.state == "failed":
                    st.error(f"{labels[m]}: {s.error}")
                    continue
                if proj is None:
                    st.info(
                        f"{labels[m]}: {s.message if s else 'queued'} ({(s.progress if s else 0):.0%})",
                        icon=":material/hourglass:",
                    )
                    continue
                q = proj.meta["quality"]
                st.plotly_chart(
                    class_scatter(
                        proj.embedding,
                        proj.labels,
                        names,
                        f"{labels[m]} · 10-NN {q['knn_map']:.2f} · trust. {q['trustworthiness']:.2f}",
                        height=360,
                        size=3,
                    ),
                    key=key + m,
                )
        if missing and all(ready_projection(k) is not None for k in keys.values()):
            st.rerun(scope="app")

    panels()
    if (pca := ready_projection(keys["pca"])) is not None:
        st.caption(
            f"10-NN: cross-validated class accuracy from each point's 10 nearest map neighbours; on the codes "
            f"themselves it is {pca.meta['quality']['knn_latent']:.2f}. Trustworthiness: 1 when every map neighbour "
            "is also a latent neighbour."
        )
