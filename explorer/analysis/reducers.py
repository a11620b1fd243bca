"""The slow map methods, t-SNE (openTSNE) and UMAP, and the warm-up that compiles UMAP's numba code.

UMAP and pynndescent compile a few hundred numba functions on first use, and most of them are
not marked for numba's on-disk cache, so each new process (every Dask worker, every CLI run)
compiled them again: minutes of CPU on a busy 2-core machine. ``import_umap`` imports them with
the cache switched on, into ``numba_cache_dir()``: the first process to compile writes it, and
the other workers, later servers and the CLI load the machine code instead. ``warm_up`` holds a
file lock there while the cache is cold, so the workers of one machine compile once between them,
not each at once; with the cache filled they load it side by side.
"""

from __future__ import annotations

import collections
import fcntl
import os
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.storage import home_dir

if TYPE_CHECKING:
    from explorer.analysis.projection import ProjectionParams

TSNE_CALLBACK_EVERY = 25  # iterations between openTSNE progress callbacks
# UMAP switches from exact neighbours to NNDescent above 4,096 points; warming up past that compiles
# NNDescent's build and query too (a 10k map's first prior transform spent 40 s compiling them).
WARM_POINTS = 4500
# umap-learn runs 500 layout epochs up to 10,000 points and 200 above; we run 200 at every size
# (a third of them again to place the prior samples and to invert the grid). On the shipped z=16
# model's 10k codes: 10-NN accuracy 0.954 against 0.957 and trustworthiness 0.945 against 0.946, in
# 3.6 s of fit against 8.9 s. On 1k codes of it and of the Fashion conv model (3 seeds each), 10-NN
# accuracy 0.890 and 0.716 against 0.898 and 0.718, trustworthiness 0.949 and 0.953 against 0.949 and
# 0.954, in 0.41 s of fit against 0.90 s (bench/projection_bench.py --quality measures it again).
LAYOUT_EPOCHS = 200
Progress = Callable[[float, str], None]
_import_lock = threading.Lock()
_warming = threading.Lock()  # held while this process warms up (explorer.cluster starts it in workers)
_warm = threading.Event()  # set once it has


def numba_cache_dir() -> Path:
    """Where compiled numba code is kept: $NUMBA_CACHE_DIR, else ``EXPLORER_HOME/numba``."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or home_dir() / "numba")


@contextmanager
def _njit_cached() -> Iterator[None]:
    """While importing: ``numba.njit`` caches to disk unless a function says otherwise."""
    import numba

    njit = numba.njit

    def cached(*args: Any, **kw: Any) -> Any:
        kw.setdefault("cache", True)
        return njit(*args, **kw)

    numba.njit = cached
    try:
        yield
    finally:
        numba.njit = njit


def _one_dispatcher_numba(numba: Any) -> types.ModuleType:
    """A copy of the ``numba`` module whose ``njit(f, **options)`` makes one dispatcher per function
    and options, for ``umap.layouts``: its ``optimize_layout_inverse`` calls ``numba.njit`` on every
    call, so each inverse transform (the map's grid of decodable spots) compiled again (2 s of CPU).
    A module, not a wrapper object, so that jitted code can still read ``numba.prange`` from it."""
    made: dict[tuple, Any] = {}

    def njit(*args: Any, **kw: Any) -> Any:
        if len(args) != 1 or not callable(args[0]):
            return numba.njit(*args, **kw)
        key = (args[0], tuple(sorted(kw.items())))
        if key not in made:
            made[key] = numba.njit(args[0], **{"cache": True, **kw})
        return made[key]

    mod = types.ModuleType("numba")
    mod.__dict__.update(numba.__dict__)
    mod.njit = njit
    return mod


class _AdjacencyRecorder:
    """Stands in for the ``lil_matrix`` that UMAP's ``inverse_transform`` fills one Delaunay simplex
    at a time (two sparse assignments per vertex: 3 s of CPU for a 10k map's grid); it keeps the
    index pairs, and ``csr_matrix`` of it builds the same matrix (ones where assigned) at once."""

    def __init__(self, shape: tuple[int, int], dtype: Any = int) -> None:
        self.shape, self.dtype = shape, dtype
        self.keys: list[tuple[Any, Any]] = []

    def __setitem__(self, key: tuple[Any, Any], value: Any) -> None:
        if value != 1:
            raise ValueError("only ones are recorded")
        self.keys.append(key)

    def tocsr(self) -> Any:
        import scipy.sparse

        rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for r, c in self.keys:
            r, c = np.broadcast_arrays(np.asarray(r), np.asarray(c))
            rows.append(r.ravel())
            cols.append(c.ravel())
        rows_, cols_ = np.concatenate(rows), np.concatenate(cols)
        m = scipy.sparse.csr_matrix((np.ones(len(rows_), self.dtype), (rows_, cols_)), shape=self.shape)
        m.data[:] = 1  # assignments, not sums
        return m


def _fast_adjacency_scipy() -> types.ModuleType:
    """A copy of ``scipy`` for ``umap.umap_`` whose ``sparse.lil_matrix`` records (see above); UMAP
    uses ``lil_matrix`` and ``csr_matrix`` only in ``inverse_transform``."""
    import scipy
    import scipy.sparse

    def csr_matrix(arg: Any, *args: Any, **kw: Any) -> Any:
        return arg.tocsr() if isinstance(arg, _AdjacencyRecorder) else scipy.sparse.csr_matrix(arg, *args, **kw)

    sparse = types.ModuleType("scipy.sparse")
    sparse.__dict__.update(scipy.sparse.__dict__)
    sparse.lil_matrix, sparse.csr_matrix = _AdjacencyRecorder, csr_matrix
    mod = types.ModuleType("scipy")
    mod.__dict__.update(scipy.__dict__)
    mod.sparse = sparse
    return mod


def _exact_euclidean(numba_euclidean: Any) -> Callable[..., np.ndarray]:
    """``pairwise_distances`` for ``umap.umap_``: below 4,096 points UMAP's fit and transform take
    every distance with its numba ``euclidean`` as a callable metric, which scikit-learn calls from
    Python once per pair (1.3M calls, about 1 s of CPU, for a 1k map and its 300 prior samples).
    For that metric on dense data this takes scipy's ``cdist`` instead: the same float64 sums of
    squared differences, in C; anything else goes to scikit-learn as before."""
    import scipy.sparse
    from scipy.spatial.distance import cdist
    from sklearn.metrics import pairwise_distances

    def distances(X: Any, Y: Any = None, metric: Any = "euclidean", **kw: Any) -> np.ndarray:
        if metric is numba_euclidean and not kw and not any(scipy.sparse.issparse(a) for a in (X, Y)):
            X = np.asarray(X, np.float64)
            return cdist(X, X if Y is None else np.asarray(Y, np.float64))  # (N, M)
        return pairwise_distances(X, Y, metric=metric, **kw)

    return distances


def _breadth_first_search(adjmat: Any, start: Any, min_vertices: int) -> np.ndarray:
    """``umap.umap_.breadth_first_search`` (the vertices around one inverse-transformed point), the
    same vertices in the same order, reading the CSR arrays and a dict of the visited rather than
    slicing a sparse row and scanning a list per step (a third of a 1k map's inverse grid)."""
    indptr, indices = adjmat.indptr, adjmat.indices
    explored = []
    queue = collections.deque([start])
    levels = {start: 0}  # also the visited set
    max_level = np.inf
    while queue:
        node = queue.popleft()
        explored.append(node)
        if max_level == np.inf and len(explored) > min_vertices:
            max_level = max(levels.values())
        if levels[node] + 1 < max_level:
            for neighbour in indices[indptr[node] : indptr[node + 1]]:
                if neighbour not in levels:
                    queue.append(neighbour)
                    levels[neighbour] = levels[node] + 1
    return np.array(explored)


def import_umap() -> Any:
    """The ``umap`` module, its (and pynndescent's) compiled functions cached in ``numba_cache_dir()``."""
    with _import_lock:
        if "umap" in sys.modules:
            return sys.modules["umap"]
        cache = str(numba_cache_dir())
        os.environ.setdefault("NUMBA_CACHE_DIR", cache)
        import numba
        from numba.core.errors import NumbaWarning

        numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]  # numba may have read the environment earlier
        # A few functions (NNDescent's core) hold dynamic globals: numba compiles them each time, as before.
        warnings.filterwarnings("ignore", "Cannot cache compiled function", NumbaWarning)
        with _njit_cached():
            import pynndescent  # noqa: F401 - decorated under the patch too
            import umap
            import umap.layouts
        umap.layouts.numba = _one_dispatcher_numba(numba)
        umap.umap_.scipy = _fast_adjacency_scipy()
        umap.umap_.pairwise_distances = _exact_euclidean(umap.distances.euclidean)
        umap.umap_.breadth_first_search = _breadth_first_search
        return umap


def tsne(
    codes: np.ndarray,
    p: ProjectionParams,
    progress: Progress,
    partial: Callable[[np.ndarray], None] | None,
    should_stop: Callable[[], bool],
    n_jobs: int,
) -> tuple[np.ndarray, Any]:
    """openTSNE's map of codes (N, z): (embedding (N, dims), the fitted embedding for transforms)."""
    from openTSNE import TSNE

    total = p.early_iter + p.n_iter
    seen = {"it": 0, "fitted": False}

    def cb(iteration: int, error: float, embedding: Any) -> bool:
        if seen["fitted"]:  # openTSNE's transform (for the prior overlay) reuses these callbacks
            return False
        seen["it"] += TSNE_CALLBACK_EVERY
        progress(0.1 + 0.85 * min(1.0, seen["it"] / total), f"t-SNE iteration {seen['it']}/{total}, KL {error:.3f}")
        if partial is not None:
            partial(np.asarray(embedding, dtype=np.float32))
        return should_stop()

    model = TSNE(
        n_components=p.dims,
        perplexity=p.perplexity,
        early_exaggeration_iter=p.early_iter,
        n_iter=p.n_iter,
        initialization="pca",
        neighbors="annoy",
        negative_gradient_method="fft" if p.dims == 2 else "bh",
        n_jobs=n_jobs,
        random_state=p.seed,
        callbacks=cb,
        callbacks_every_iters=TSNE_CALLBACK_EVERY,
        verbose=False,
    )
    emb = model.fit(codes)
    seen["fitted"] = True
    return np.asarray(emb, dtype=np.float32), emb


def umap(codes: np.ndarray, p: ProjectionParams, n_jobs: int) -> tuple[np.ndarray, Any]:
    """UMAP's map of codes (N, z): (embedding (N, dims), the fitted reducer)."""
    if not _warm.is_set() and _warming.locked():  # the worker's warm-up compiles what this needs: let it finish
        with _warming:
            pass
    reducer = import_umap().UMAP(
        n_components=p.dims,
        n_neighbors=p.n_neighbors,
        min_dist=p.min_dist,
        random_state=p.seed,
        n_jobs=1 if p.seed is not None else n_jobs,
        n_epochs=LAYOUT_EPOCHS,
    )
    return reducer.fit_transform(codes).astype(np.float32), reducer


def warm_up(seed: int = 0) -> float:
    """Import UMAP and openTSNE and compile UMAP's numba code on small fits; returns seconds.

    Workers run this once at start (explorer.cluster), so a user's first UMAP pays neither the
    imports nor numba's compilation. Two fits: one small enough for exact neighbours, one large
    enough for NNDescent (``WARM_POINTS``), each with a transform (the prior overlay) and an
    inverse transform (decoding an empty spot). With numba's disk cache filled by an earlier
    process this loads machine code rather than compiling it.
    """
    from importlib.metadata import version

    t0 = time.perf_counter()
    with _warming:
        cache = numba_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        filled = cache / f"warm-up-umap-{version('umap-learn')}-numba-{version('numba')}.done"
        with open(cache / "warm-up.lock", "w") as lock:
            if not filled.is_file():  # a cold cache: one process compiles, the others wait and then load
                fcntl.flock(lock, fcntl.LOCK_EX)
            import openTSNE  # noqa: F401

            umap_mod = import_umap()
            codes = np.random.default_rng(seed).normal(size=(WARM_POINTS, 4)).astype(np.float32)  # (N, z)
            for n in (300, WARM_POINTS):
                reducer = umap_mod.UMAP(n_neighbors=10, n_epochs=20, random_state=seed, n_jobs=1)
                emb = reducer.fit_transform(codes[:n])
                reducer.transform(codes[:20])
                reducer.inverse_transform(emb[:4])
            filled.touch()
        _warm.set()
    return time.perf_counter() - t0


def wait_warm(timeout: float | None = None) -> bool:
    """Block until this process's ``warm_up`` has finished (True), or ``timeout`` seconds passed."""
    return _warm.wait(timeout)


class Stages:
    """Seconds per stage, wall clock and this thread's CPU (the CPU figure holds on a busy machine):
    each call charges the time since the previous call to ``name``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._last = (time.perf_counter(), time.thread_time())

    def __call__(self, name: str) -> None:
        now = (time.perf_counter(), time.thread_time())
        for out, t, last in ((self.seconds, now[0], self._last[0]), (self.cpu, now[1], self._last[1])):
            out[name] = round(out.get(name, 0.0) + t - last, 3)
        self._last = now
