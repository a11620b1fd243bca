"""Latent map: the codes of a split as a PCA, t-SNE, UMAP or raw scatter, linked to the decoder."""

import numpy as np
import streamlit as st
import torch

from explorer import ui
from explorer.analysis.projection import ProjectionParams, cache_key
from explorer.analysis.traverse import decode_codes
from explorer.figures.mapview import DATA, GRID, PRIOR, code_figure, decode_point, nearest
from explorer.ui.coursepanels import kmeans_panel, projections_panel, reparam_panel
from explorer.ui.live_decoder import live_map_hover
from explorer.ui.state import MAP_SELECTION

P = "latentmap_"
LAST_POINTS = P + "last_points"  # the clicked points and the figure they were clicked on
SELECTION_KEY = MAP_SELECTION  # read by the arithmetic page on purpose

ui.page_header("Latent map")
cur = ui.current()
model, ds = cur.model, cur.dataset
zdim = model.latent_dim
stamp = cur.mtime_ns
names = ds.class_names
linked = {k: st.query_params.get(k) for k in ("method", "prior")}  # /learn's links preset the view, once per link
if st.session_state.get(P + "linked") != linked:
    st.session_state[P + "linked"] = linked
    if linked["method"] in ("pca", "tsne", "umap") or (linked["method"] == "raw" and zdim >= 2):
        st.session_state[P + "method"] = linked["method"]
    if linked["prior"] in ("0", "1"):
        st.session_state[P + "prior"] = linked["prior"] == "1"

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    methods = (["raw"] if zdim >= 2 else []) + ["pca", "tsne", "umap"]
    labels = {"raw": "raw latent axes", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    method = c1.radio("Method", methods, horizontal=True, key=P + "method", format_func=labels.get)
    split = c2.selectbox("Split", ["test", "train", "all"], key=P + "split")
    n_split = len(ds.split(split))
    sizes = sorted({s for s in (1000, 2000, 5000, 10_000, 20_000) if s < n_split} | {n_split})
    if len(sizes) > 1:
        limit = c3.select_slider(
            "Points",
            sizes,
            value=min(sizes, key=lambda s: abs(s - 5000)),
            key=P + "limit",
            format_func=lambda s: f"{s:,}",
        )
    else:
        limit = n_split
        c3.caption(f"Points  \n**{n_split:,}** (the whole split)")
    color_by = c4.selectbox(
        "Colour by",
        ["class", "recon", "kl"],
        key=P + "color",
        format_func={"class": "class", "recon": "reconstruction error", "kl": "KL of the sample"}.get,
    )
    d1, d2, d3, d4 = st.columns(4)
    three_d = d1.toggle("3-D", key=P + "3d", disabled=method == "raw" and zdim < 3)
    show_prior = d2.toggle(
        "Prior overlay",
        key=P + "prior",
        help="Samples from N(0, I) mapped the same way: holes in the "
        "aggregate posterior show as prior samples with no data around them.",
    )
    kw: dict = {}
    with d3.popover("Method settings", icon=":material/settings:"):
        if method == "raw":
            a = st.selectbox("x axis", range(zdim), 0, key=P + "ax0", format_func=lambda d: f"z{d}")
            b = st.selectbox("y axis", range(zdim), 1, key=P + "ax1", format_func=lambda d: f"z{d}")
            axes = [a, b] + (
                [st.selectbox("z axis", range(zdim), 2, key=P + "ax2", format_func=lambda d: f"z{d}")]
                if three_d
                else []
            )
            kw["axes"] = tuple(axes)
        elif method == "tsne":
            kw["perplexity"] = st.slider("Perplexity", 5.0, 100.0, 30.0, 5.0, key=P + "perp")
            kw["n_iter"] = st.slider("Iterations after early exaggeration", 100, 750, 250, 50, key=P + "iter")
        elif method == "umap":
            kw["n_neighbors"] = st.slider("Neighbours", 5, 100, 15, key=P + "nn")
            kw["min_dist"] = st.slider("Minimum distance", 0.0, 0.99, 0.1, 0.05, key=P + "md")
        else:
            st.caption("PCA has no settings: it keeps the directions of largest variance.")
        seed = st.number_input("Seed", 0, 10_000, 0, key=P + "seed")
    manifold = d4.toggle(
        "Decoded manifold", value=True, key=P + "manifold", disabled=not (method == "raw" and zdim == 2)
    )

params = ProjectionParams(
    method=method,
    dims=3 if three_d else 2,
    split=split,
    limit=None if limit >= n_split else limit,
    seed=int(seed),
    **kw,
)
key = cache_key(ui.checkpoint_hash(str(cur.entry.path), stamp), ds.name, params)
proj = ui.ready_projection(key)

if proj is None:
    runner = ui.job_runner()
    job_id = f"map-{key}"
    st_job = runner.status(job_id)
    # Done without its cached map (the cache was cleared): computed again. Stopped, failed or lost:
    # it stays so until the user asks, with the panel's Start again; a rerun must not restart it.
    if st_job is None or st_job.state == "done":
        runner.submit(
            "projection",
            {"checkpoint": str(cur.entry.path), "dataset": ds.name, "projection": params.to_dict()},
            job_id,
        )
    what = f"{labels[method]} map of {params.limit or n_split:,} codes"

    @st.fragment(run_every=1.0)
    def wait_for_map() -> None:
        line = st.empty()  # above the panel, though it depends on the status the panel reads
        status = ui.follow_job(job_id, key=P + "stop")
        if status is not None and status.state == "stopped":
            line.caption(f"The {what} was stopped before it finished. Start again computes it.")
        elif status is None or status.active:
            line.caption(
                f"Computing the {what} in a background worker; "
                "other pages and other users are not held up. Finished maps are cached on disk."
            )
        partial = runner.job_dir(job_id) / "partial.npy"
        if status and status.active and partial.is_file():
            try:
                emb = np.load(partial, allow_pickle=False)
                st.caption("The layout as t-SNE optimises it:")
                st.scatter_chart({"x": emb[:, 0], "y": emb[:, 1]}, x="x", y="y", height=420, size=4)
            except (OSError, ValueError):
                pass

    wait_for_map()
    st.stop()


# --- the finished map ------------------------------------------------------------------
@st.fragment
def map_and_point() -> None:
    """The map and the clicked point's panel: a click reruns only this, not the sidebar and the settings."""
    split_data = ds.split(split)
    highlight = tuple(st.session_state.get(P + "highlight") or ())
    fig, targets = ui.cached_latent_map(key, stamp, color_by, show_prior, highlight, manifold, model, proj, names)

    left, right = st.columns([3, 1], gap="medium")
    with left:
        event = st.plotly_chart(
            fig,
            on_select="rerun",
            selection_mode=("points", "box", "lasso"),
            key=P + "chart",
            config={"toImageButtonOptions": {"format": "png", "filename": f"latent-map-{method}", "scale": 2}},
        )
    with right:
        if method == "raw" and zdim == 2 and not three_d:  # hover decodes in the browser (explorer/ui/live_decoder)
            live_map_hover(
                model,
                ui.checkpoint_hash(str(cur.entry.path), stamp),
                P + "chart",
                kw["axes"],
                0 if model.conditional else None,
                key=P + "hover",
            )
        q = proj.meta["quality"]
        st.metric("10-NN accuracy, latent", f"{q['knn_latent']:.3f}", help="Cross-validated 10-NN class accuracy of μ")
        st.metric("10-NN accuracy, map", f"{q['knn_map']:.3f}", help="The same on the 2-D/3-D map")
        st.metric(
            "Trustworthiness", f"{q['trustworthiness']:.3f}", help="1 = every map neighbour is a latent neighbour"
        )
        st.caption(f"{proj.meta['n']:,} points · computed in {proj.meta['seconds']:.1f} s")

        st.download_button(
            "Projection as CSV",
            lambda: proj.to_csv(names),
            f"latent-map-{method}.csv",
            "text/csv",
            key=P + "csv",
            icon=":material/download:",
        )
        st.caption("PNG: the camera icon in the plot's toolbar.")

    points = [
        d for p in ((event.selection.points if event and event.selection else []) or []) if (d := decode_point(p))
    ]
    figure_sig = (key, color_by, show_prior, highlight, manifold)
    last = st.session_state.get(LAST_POINTS)
    if points:
        st.session_state[LAST_POINTS] = (figure_sig, points)
    elif last and last[0][0] == key and last[0] != figure_sig:  # a new figure (a toggle) clears plotly's selection
        points = last[1]
        st.session_state[LAST_POINTS] = (figure_sig, points)
    data_rows = [i for kind, i in points if kind == DATA]
    if len(data_rows) > 1:  # a box or lasso selection: keep it for the arithmetic page
        st.session_state[SELECTION_KEY] = {
            "model": cur.entry.name,
            "dataset": ds.name,
            "split": split,
            "indices": [int(proj.index[r]) for r in data_rows],
        }
        st.success(
            f"{len(data_rows):,} points selected. The Arithmetic page can turn this selection into an attribute vector."
        )
    elif len(data_rows) == 1:
        r = data_rows[0]
        i = int(proj.index[r])
        x = split_data.images[i : i + 1]
        st.subheader(f"{names[proj.labels[r]]} · index {i}")
        c1, c2, c3 = st.columns([1, 1, 3])
        with c1:
            ui.show_image(x[0], width=168, caption="image")
        with c2:
            ui.show_image(
                decode_codes(model, torch.from_numpy(proj.mu[r : r + 1]), int(proj.labels[r]))[0],
                width=168,
                caption="reconstruction",
            )
        with c3:
            st.plotly_chart(code_figure(proj.mu[r], proj.logvar[r]), key=P + "code")
        if model.stochastic:
            with ui.lazy_expander(  # closed, it still cost ~100 ms of every click
                "Sample z ~ q(z|x): the reparameterisation trick", P + "rep_open", ":material/casino:"
            ) as rep_open:
                if rep_open:
                    reparam_panel(
                        model,
                        x[0],
                        int(proj.labels[r]),
                        P + "rep_",
                        proj.embedding if method == "raw" and not three_d else None,
                    )
        near = nearest(proj.mu, r, 8)
        st.caption("The 8 nearest neighbours in latent space")
        ui.show_gallery(
            split_data.images[proj.index[near]], [f"{names[proj.labels[n]]} · {proj.index[n]}" for n in near], width=72
        )
    elif points and targets is not None and points[0][0] == GRID:
        j = points[0][1]
        if len(proj.grid_codes):
            z, label = (
                torch.from_numpy(proj.grid_codes[j : j + 1]),
                "decoded from UMAP's inverse transform (approximate)",
            )
        else:
            z, label = torch.from_numpy(targets[j : j + 1]), f"decode(z) at ({targets[j, 0]:.2f}, {targets[j, 1]:.2f})"
        ui.show_image(decode_codes(model, z)[0], width=168, caption=label)
    elif points and points[0][0] == PRIOR:
        st.caption("A prior sample: its code was drawn from N(0, I), not encoded from an image.")
    else:
        st.caption(
            "Click a point to see its image, reconstruction and code. Drag a box or lasso (toolbar) to select a set."
            + (" Click an empty spot to decode it." if targets is not None else "")
        )


map_and_point()


if st.toggle(
    "PCA, t-SNE and UMAP side by side",
    key=P + "compare",
    help="The three default maps of the test split, each computed once in a worker",
):
    projections_panel(str(cur.entry.path), stamp, ds.name, P + "cmp_")
with ui.lazy_expander(  # k-means and its two figures cost ~100 ms of every rerun
    "k-means clusters of μ, against the classes", P + "km_open", ":material/bubble_chart:"
) as km_open:
    if km_open:
        kmeans_panel(key, proj.embedding, proj.mu, proj.labels, names, P + "km_")

ui.explainer(
    "What PCA, t-SNE and UMAP keep and what they distort",
    "- **Raw axes** show the latent space itself: distances and the prior's scale are real.\n"
    "- **PCA** is a linear projection onto the directions of largest variance. Global geometry and "
    "distances along those directions are kept; clusters that differ in other directions overlap.\n"
    "- **t-SNE** keeps *who is near whom*: each point's nearest neighbours stay near. Cluster sizes, "
    "the gaps between clusters and global positions carry little meaning, and the layout depends on "
    "perplexity and the seed.\n"
    "- **UMAP** also keeps local neighbourhoods and tends to keep more of the global layout than t-SNE, "
    "but densities and distances are still distorted. Its inverse transform lets us decode an empty "
    "spot, approximately.\n\n"
    "The quality figures say how much to trust a picture: 10-NN accuracy on the map close to that in "
    "latent space, and trustworthiness near 1, mean the map's neighbourhoods are real.",
)
