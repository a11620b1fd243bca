"""Time per map method on the shipped z=16 MNIST codes (10k) and the Fashion conv codes (70k),
with scikit-learn's TSNE on the same codes as the reference, and 10-NN accuracy of each map.

Times the uncached path, `explorer embed`'s own code (get_or_compute with a fresh cache).
``--warm`` times UMAP jobs through the app's job API on its LocalCluster once it has warmed up:
1k and 10k codes of a model the warm-up never saw (goals: 3 s and 10 s, submit to map on disk),
with the CPU seconds of the worker stages and of the job path around them. ``--quality`` sets our
UMAP layout epochs against umap-learn's default on 1k codes of both models (10-NN, trustworthiness).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from _common import ROOT, print_table

CKPTS = {
    "10k": (ROOT / "checkpoints" / "mnist-vae-mlp-z16.safetensors", "mnist"),
    "70k": (ROOT / "checkpoints" / "fashion-mnist-vae-conv-z16.safetensors", "fashion-mnist"),
}


def time_method(size: str, method: str) -> tuple[float, float, object]:
    """Seconds, 10-NN map accuracy and the map, for one uncached map of the whole dataset (split 'all')."""
    os.environ["EXPLORER_HOME"] = tempfile.mkdtemp(prefix="bench-home-")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    from explorer.analysis.projection import ProjectionParams, get_or_compute

    path, ds = CKPTS[size]
    t0 = time.perf_counter()
    proj, cached = get_or_compute(
        path, ds, ProjectionParams(method=method, split="all", n_prior=0), n_jobs=os.cpu_count() or 1
    )
    assert not cached
    return time.perf_counter() - t0, proj.meta["quality"]["knn_map"], proj


def payload(size: str, proj) -> tuple[str, str, str, str]:
    """What a browser receives for the map: the figure's JSON (per rerun that redraws it) and the cached .npz."""
    from explorer.data import load_dataset
    from explorer.figures.mapview import map_figure

    t0 = time.perf_counter()
    fig = map_figure(proj, load_dataset(CKPTS[size][1]).class_names)
    n_json = len(fig.to_json())
    return (
        f"map payload {size} ({len(proj.labels):,} points)",
        f"figure JSON {n_json / 2**20:.1f} MB, built in {time.perf_counter() - t0:.1f} s",
        f"cached .npz {len(proj.to_npz()) / 2**20:.1f} MB",
        "-",
    )


def time_sklearn(size: str) -> tuple[float, float]:
    """scikit-learn's TSNE (defaults) on the same codes, timing the fit alone."""
    from sklearn.manifold import TSNE

    from explorer.analysis.evaluate import encode_split, knn_accuracy
    from explorer.checkpoint import load_checkpoint
    from explorer.data import load_dataset

    path, ds = CKPTS[size]
    model, _ = load_checkpoint(path)
    split = load_dataset(ds).split("all")
    mu, _ = encode_split(model, split)
    t0 = time.perf_counter()
    emb = TSNE(random_state=0, n_jobs=os.cpu_count()).fit_transform(mu)
    return time.perf_counter() - t0, knn_accuracy(emb, split.labels.numpy())


def _cpu() -> tuple[float, float]:
    """CPU seconds so far of this process (the app's client, the LocalCluster's scheduler, the result
    writes) and of its child processes that are alive (the Dask nannies and workers)."""
    import psutil

    me = psutil.Process()
    kids = 0.0
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
            kids += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    t = me.cpu_times()
    return t.user + t.system, kids


def _job(runner, checkpoint, dataset: str, **kw) -> tuple[float, float, str]:
    """Submit one UMAP map through the job API and wait for it: seconds from submit to the map on
    disk, the CPU seconds the job cost (workers and app together), and where both went (queue, the
    worker's stages from the map's sidecar, wall/CPU, and the CPU of the job path around them)."""
    from explorer.analysis.projection import ProjectionParams, cache_dir, cache_key
    from explorer.checkpoint import blobs_hash, model_blobs

    p = ProjectionParams(method="umap", **kw)
    cpu0 = _cpu()
    t0 = time.perf_counter()
    job = runner.submit("projection", {"checkpoint": str(checkpoint), "dataset": dataset, "projection": p.to_dict()})
    st = runner.wait(job, timeout=900, poll=0.05)
    total = time.perf_counter() - t0
    app, workers = (b - a for a, b in zip(cpu0, _cpu()))
    assert st.state == "done", st.error
    meta = json.loads((cache_dir() / f"{cache_key(blobs_hash(model_blobs(checkpoint)), dataset, p)}.json").read_text())
    wall, cpu = meta["timings"], meta["cpu_seconds"]
    worker = sum(wall.values())
    stages = ", ".join(f"{k} {wall[k]:.1f}/{cpu.get(k, 0):.1f}" for k in wall)
    where = (
        f"queue {st.started - st.created:.1f}, {stages}, rest {total - worker - (st.started - st.created):.1f} (s wall/CPU);"
        f" CPU outside the stages: workers {workers - sum(cpu.values()):.1f}, app and scheduler {app:.1f}"
    )
    return total, app + workers, where


def quality_rows(
    sizes: tuple[int, ...] = (1000,), seeds: tuple[int, ...] = (0, 1, 2)
) -> list[tuple[str, str, str, str]]:
    """The maps' 10-NN accuracy and trustworthiness with our layout epochs against umap-learn's own
    choice (500 up to 10k points), on the codes of two shipped models, mean over seeds."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    import numpy as np

    from explorer.analysis import reducers
    from explorer.analysis.evaluate import encode_split
    from explorer.analysis.projection import ProjectionParams, quality
    from explorer.checkpoint import load_checkpoint
    from explorer.data import load_dataset

    reducers.warm_up()  # numba's code loaded before the first timed fit
    ours_epochs, rows = reducers.LAYOUT_EPOCHS, []
    for path, ds in CKPTS.values():
        model, _ = load_checkpoint(path)
        split = load_dataset(ds).split("test" if ds == "fashion-mnist" else "all")
        for n in sizes:
            got: dict[int | None, list] = {ours_epochs: [], None: []}  # None: umap-learn's own choice
            for seed in seeds:
                sub = split.subset(n, seed)
                mu, _ = encode_split(model, sub)
                for epochs in got:
                    reducers.LAYOUT_EPOCHS = epochs  # the app's own UMAP call, with these epochs
                    t0 = time.thread_time()
                    try:
                        emb, _ = reducers.umap(mu, ProjectionParams(method="umap", seed=seed), n_jobs=1)
                    finally:
                        reducers.LAYOUT_EPOCHS = ours_epochs
                    fit = time.thread_time() - t0
                    q = quality(mu, emb, sub.labels.numpy(), seed)
                    got[epochs].append((q["knn_map"], q["trustworthiness"], fit))
            ours, theirs = (np.mean(got[e], 0) for e in got)
            rows.append(
                (
                    f"UMAP {n // 1000}k {path.stem}, {ours_epochs} epochs (seeds {','.join(map(str, seeds))})",
                    f"10-NN {ours[0]:.3f}, trust {ours[1]:.3f}, fit {ours[2]:.2f} s CPU",
                    f"umap-learn's epochs: 10-NN {theirs[0]:.3f}, trust {theirs[1]:.3f}, fit {theirs[2]:.2f} s CPU",
                    f"{ours[0] - theirs[0]:+.3f} 10-NN, {ours[1] - theirs[1]:+.3f} trust",
                )
            )
    return rows


def run_warm() -> list[tuple[str, str, str, str]]:
    """UMAP on warm workers: the app's cluster, its default warm-up map, then another model's maps."""
    os.environ["EXPLORER_HOME"] = tempfile.mkdtemp(prefix="bench-home-")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))  # the workers inherit it
    from explorer.jobs import JobRunner

    t0 = time.perf_counter()
    runner = JobRunner()
    assert runner.client is not None  # starts the LocalCluster and its workers
    start = time.perf_counter() - t0
    first = _job(runner, ROOT / "checkpoints" / "mnist-vae-mlp-z2.safetensors", "mnist")  # the app's warm-up map
    from explorer.analysis.reducers import wait_warm

    t0 = time.perf_counter()
    assert all(runner.client.run(wait_warm, 900).values())  # every worker's warm-up, not only the first job's
    warm = time.perf_counter() - t0
    z16 = ROOT / "checkpoints" / "mnist-vae-mlp-z16.safetensors"
    small = _job(runner, z16, "mnist", split="all", limit=1000)
    big = _job(runner, z16, "mnist", split="all")
    from explorer.cluster import shutdown

    shutdown()
    rows = [("cluster start (workers up)", f"{start:.1f} s", "-", "-")]
    for what, (sec, cpu, where), goal in (
        ("UMAP 1k, first job (warm-up map)", first, None),
        ("UMAP 1k of another model, warm", small, 3),
        ("UMAP 10k of another model, warm", big, 10),
    ):
        # The CPU seconds hold on a busy machine; on a quiet one the wall figure is about them.
        figure = f"{sec:.1f} s ({cpu:.1f} s CPU)"
        rows.append((what, figure, f"goal {goal} s" if goal else "-", f"{sec / goal:.2f}x goal" if goal else "-"))
        rows.append(("  where it went", where, "-", "-"))
        if goal is None:
            rows.append(("every worker warm, after the first job", f"{warm:.1f} s more", "-", "-"))
    return rows


def run(sizes: list[str], methods: list[str], sklearn_sizes: list[str]) -> list[tuple[str, str, str, str]]:
    rows = []
    for size in sizes:
        ref = time_sklearn(size) if size in sklearn_sizes else None
        for m in methods:
            sec, acc, proj = time_method(size, m)
            if m == "pca":
                rows.append(payload(size, proj))
            if m == "tsne" and ref:
                rows.append(
                    (
                        f"t-SNE {size} (explorer embed, uncached)",
                        f"{sec:.1f} s, 10-NN {acc:.3f}",
                        f"sklearn TSNE {ref[0]:.1f} s, 10-NN {ref[1]:.3f}",
                        f"{sec / ref[0]:.2f}x time, {acc / ref[1]:.3f}x acc",
                    )
                )
            else:
                rows.append((f"{m} {size} (uncached)", f"{sec:.1f} s, 10-NN {acc:.3f}", "-", "-"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10k,70k")
    ap.add_argument("--methods", default="pca,tsne,umap")
    ap.add_argument("--sklearn", default="10k", help="sizes to run sklearn's TSNE on (70k takes many minutes)")
    ap.add_argument("--warm", action="store_true", help="only the warm UMAP jobs on the app's cluster")
    ap.add_argument("--quality", action="store_true", help="only UMAP's map quality, our epochs against umap-learn's")
    a = ap.parse_args()
    if a.warm or a.quality:
        print_table((run_warm() if a.warm else []) + (quality_rows() if a.quality else []))
        return
    print_table(run(a.sizes.split(","), a.methods.split(","), a.sklearn.split(",")))


if __name__ == "__main__":
    main()
