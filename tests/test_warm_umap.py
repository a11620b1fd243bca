"""Warm UMAP: numba's disk cache for UMAP's compiled code, one compile of the inverse transform per
process, per-stage timings in a map's sidecar, quality figures on a bounded sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.analysis import projection
from explorer.analysis.projection import ProjectionParams, compute_projection
from explorer.catalog import shipped_dir
from explorer.checkpoint import load_checkpoint
from explorer.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def z16():
    return load_checkpoint(shipped_dir() / "mnist-vae-mlp-z16.safetensors")[0]


def test_a_map_says_where_its_time_went_and_what_its_quality_was_measured_on(z16, monkeypatch):
    monkeypatch.setattr(projection, "QUALITY_POINTS", 300)
    monkeypatch.setattr(projection, "TRUST_POINTS", 200)
    proj = compute_projection(z16, load_dataset("mnist"), ProjectionParams(method="pca", limit=500))
    assert set(proj.meta["timings"]) == {"encode", "fit", "quality"} == set(proj.meta["cpu_seconds"])
    assert all(v >= 0 for v in proj.meta["timings"].values())
    assert sum(proj.meta["timings"].values()) <= proj.meta["seconds"] + 1e-3
    assert proj.meta["quality_points"] == {"knn": 300, "trustworthiness": 200}
    json.dumps(proj.meta)  # the sidecar is JSON


def test_small_maps_measure_quality_on_every_point(z16):
    proj = compute_projection(z16, load_dataset("mnist"), ProjectionParams(method="raw", limit=120))
    assert proj.meta["quality_points"] == {"knn": 120, "trustworthiness": 120}


def test_umap_layouts_get_one_dispatcher_per_function():
    from explorer.analysis.reducers import import_umap

    layouts = import_umap().layouts

    def f(x):
        return x + 1

    a, b = layouts.numba.njit(f, fastmath=True), layouts.numba.njit(f, fastmath=True)
    assert a is b and a(1) == 2
    assert layouts.numba.njit(f) is not a  # other options, another dispatcher
    assert layouts.numba.prange is layouts.numba.__dict__["prange"]  # jitted code still finds numba's names


@pytest.mark.slow
def test_umap_map_times_its_stages_and_its_grid_inverse_does_not_recompile(z16):
    from explorer.analysis.reducers import import_umap

    p = ProjectionParams(method="umap", limit=400, n_prior=30, inverse_grid=5)
    compute_projection(z16, load_dataset("mnist"), p)
    proj = compute_projection(z16, load_dataset("mnist"), ProjectionParams(**{**p.to_dict(), "seed": 1}))
    assert set(proj.meta["timings"]) == {"encode", "fit", "prior", "grid", "quality"}
    assert proj.meta["umap_epochs"] == {"fit": 200, "prior": 66, "grid": 66}  # the sidecar says what ran
    made = import_umap().layouts.numba.njit.__closure__  # the memo of dispatchers
    dispatchers = [c.cell_contents for c in made if isinstance(c.cell_contents, dict)][0]
    assert len([k for k in dispatchers if k[0].__name__ == "_optimize_layout_inverse_single_epoch"]) == 1


@pytest.mark.slow
def test_umap_compiled_code_lands_in_the_disk_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": str(ROOT)}
    code = "from explorer.analysis.reducers import warm_up; warm_up()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=1800)
    index = list((tmp_path / "numba").rglob("*.nbi"))
    umap_files = {f.name.split(".")[0] for f in index if f.parent.name.startswith("umap_")}
    assert {"umap_", "layouts", "utils"} <= umap_files, umap_files  # not just the one umap marks itself
    assert any(f.parent.name.startswith("pynndescent_") for f in index)
    assert list((tmp_path / "numba").glob("warm-up-umap-*.done")), "later warm-ups know the cache is filled"


@pytest.mark.parametrize("n", [1000, 4097, 10_000])
def test_umap_runs_200_layout_epochs_at_every_size_not_umap_learns_500_below_10k(monkeypatch, n):
    import numpy as np

    from explorer.analysis import reducers

    seen = {}

    class FakeUMAP:
        def __init__(self, **kw):
            seen.update(kw)

        def fit_transform(self, codes):
            return codes[:, :2]

    monkeypatch.setattr(reducers, "import_umap", lambda: type("M", (), {"UMAP": FakeUMAP}))
    monkeypatch.setattr(reducers._warm, "is_set", lambda: True)
    emb, _ = reducers.umap(np.zeros((n, 4), np.float32), ProjectionParams(method="umap"), n_jobs=1)
    assert emb.shape == (n, 2) and seen["n_epochs"] == 200


def _umaps_own(name):
    """A function of ``umap.umap_`` as umap-learn wrote it (the module's copy is replaced by ``import_umap``)."""
    import ast

    import numpy as np

    from explorer.analysis.reducers import import_umap

    tree = ast.parse(Path(import_umap().umap_.__file__).read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    ns = {"np": np}
    exec(compile(ast.Module([node], []), "umap_", "exec"), ns)
    return ns[name]


def test_umap_takes_euclidean_distances_in_c_not_once_per_pair_in_python():
    import numpy as np
    from sklearn.metrics import pairwise_distances

    from explorer.analysis.reducers import _exact_euclidean, import_umap

    def per_pair(a, b):
        raise AssertionError("called once per pair")

    x, y = np.random.default_rng(0).normal(size=(2, 40, 16)).astype(np.float32)
    umap = import_umap()
    want = pairwise_distances(x, y[:7], metric=umap.distances.euclidean)  # scikit-learn calling numba per pair
    assert np.allclose(_exact_euclidean(per_pair)(x, y[:7], metric=per_pair), want, rtol=1e-6, atol=1e-6)
    square = umap.umap_.pairwise_distances(x, metric=umap.distances.euclidean)  # as UMAP's fit calls it
    assert np.allclose(square, pairwise_distances(x, metric=umap.distances.euclidean), rtol=1e-6, atol=1e-6)
    assert square.shape == (40, 40) and not square.diagonal().any()
    other = _exact_euclidean(per_pair)(x, y, metric="manhattan")  # any other metric: scikit-learn's
    assert np.allclose(other, pairwise_distances(x, y, metric="manhattan"))


def test_umap_breadth_first_search_visits_what_umaps_own_does_in_its_order():
    import numpy as np
    import scipy.sparse
    from scipy.spatial import Delaunay

    from explorer.analysis.reducers import _breadth_first_search

    theirs = _umaps_own("breadth_first_search")
    tri = Delaunay(np.random.default_rng(1).normal(size=(300, 2)))
    pairs = np.array([(a, b) for s in tri.simplices for a in s for b in s])
    adj = scipy.sparse.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(300, 300))
    for start in tri.simplices[::7, 0]:
        for min_vertices in (2, 16, 40):
            ours = _breadth_first_search(adj, start, min_vertices)
            assert np.array_equal(ours, theirs(adj, start, min_vertices)) and len(ours) > min_vertices
