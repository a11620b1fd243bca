"""2-D/3-D maps of latent codes: PCA, t-SNE (openTSNE), UMAP or raw axes, cached on disk.

Each map is saved as ``KEY.npz`` (arrays only, loaded without pickle) beside ``KEY.json``,
the parameters that made it (latent-scope style). The key hashes the checkpoint's content,
the dataset, and every parameter.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.analysis import reducers
from explorer.analysis.evaluate import encode_split, knn_accuracy, per_sample_terms
from explorer.data import Dataset
from explorer.errors import ConfigError
from explorer.models import BaseVAE
from explorer.storage import atomic_write_bytes, atomic_write_json, home_dir

METHODS = ("raw", "pca", "tsne", "umap")
# Quality figures are measured on a seeded sample of this many points: 10-NN accuracy is
# cross-validated on it (1 s of CPU in a 10k map's job, more at 70k), trustworthiness on 2,000 of it.
QUALITY_POINTS = 5000
TRUST_POINTS = 2000
TRANSFORM_PRIOR_POINTS = 300  # prior samples placed into a t-SNE or UMAP map (each transform costs per point)
Progress = reducers.Progress


@dataclass(frozen=True)
class ProjectionParams:
    """Everything that determines a map."""

    method: str = "pca"
    dims: int = 2
    split: str = "test"
    limit: int | None = None  # a seeded subset of the split; None = all of it
    seed: int = 0
    axes: tuple[int, ...] = (0, 1)  # raw method: which latent dimensions
    perplexity: float = 30.0  # t-SNE
    early_iter: int = 125  # t-SNE early-exaggeration iterations
    n_iter: int = 250  # t-SNE iterations after early exaggeration
    n_neighbors: int = 15  # UMAP
    min_dist: float = 0.1  # UMAP
    n_prior: int = 1000  # prior samples projected for the overlay
    inverse_grid: int = 24  # UMAP: inverse transform precomputed on a grid of this side

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.dims not in (2, 3):
            raise ConfigError("dims must be 2 or 3")
        if self.method == "raw" and len(self.axes) != self.dims:
            raise ConfigError(f"raw axes need {self.dims} latent dimensions, got {self.axes}")
        if not 2 <= self.perplexity <= 200 or not 2 <= self.n_neighbors <= 200 or not 0 <= self.min_dist <= 1:
            raise ConfigError("perplexity and n_neighbors must be 2-200, min_dist 0-1")
        if self.limit is not None and self.limit < 10:
            raise ConfigError("a map needs at least 10 points")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectionParams:
        d = dict(d)
        if "axes" in d:
            d["axes"] = tuple(d["axes"])
        return cls(**d)


@dataclass
class Projection:
    """A map and what the page draws with it. Arrays are numpy; ``index`` points into the split."""

    embedding: np.ndarray  # (N, d)
    labels: np.ndarray  # (N,)
    index: np.ndarray  # (N,) rows of the split
    mu: np.ndarray  # (N, z)
    logvar: np.ndarray  # (N, z)
    recon: np.ndarray  # (N,) reconstruction error, nats
    kl: np.ndarray  # (N,) KL, nats
    prior: np.ndarray  # (P, d) prior samples mapped the same way (empty if the method cannot)
    grid_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # (G*G, 2)
    grid_codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (G*G, z) inverse
    pca_mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (z,)
    pca_components: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (d, z)
    meta: dict[str, Any] = field(default_factory=dict)  # params, quality figures, timing

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        arrays = {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_files(cls, npz: Path, sidecar: Path) -> Projection:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(**arrays, meta=json.loads(sidecar.read_text()))

    def to_csv(self, class_names: tuple[str, ...]) -> bytes:
        """One row per point: dataset index, label, class name and map coordinates."""
        out = io.StringIO()
        out.write(",".join(["index", "label", "class"] + [f"x{i}" for i in range(self.embedding.shape[1])]) + "\n")
        for r in range(len(self.labels)):
            name = class_names[self.labels[r]] if self.labels[r] < len(class_names) else str(self.labels[r])
            out.write(
                ",".join(
                    [str(self.index[r]), str(self.labels[r]), name.replace(",", " ")]
                    + [f"{v:.5f}" for v in self.embedding[r]]
                )
                + "\n"
            )
        return out.getvalue().encode()

    def project(self, codes: np.ndarray) -> np.ndarray | None:
        """Map new codes (M, z) onto this map, where the method allows it (raw and PCA)."""
        method = self.meta["params"]["method"]
        if method == "raw":
            return codes[:, list(self.meta["params"]["axes"])]
        if method == "pca":
            return (codes - self.pca_mean) @ self.pca_components.T
        return None


def cache_dir() -> Path:
    return home_dir() / "cache" / "projections"


def cache_key(checkpoint_hash: str, dataset: str, params: ProjectionParams) -> str:
    blob = json.dumps({"ckpt": checkpoint_hash, "dataset": dataset, **params.to_dict()}, sort_keys=True)
    return f"{params.method}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def load_cached(key: str, root: Path | None = None) -> Projection | None:
    """The cached map for ``key``, or None."""
    root = root or cache_dir()
    npz, side = root / f"{key}.npz", root / f"{key}.json"
    if not (npz.is_file() and side.is_file()):
        return None
    try:
        return Projection.from_files(npz, side)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache entry is recomputed


def save_cached(key: str, proj: Projection, root: Path | None = None) -> None:
    root = root or cache_dir()
    atomic_write_bytes(root / f"{key}.npz", proj.to_npz())
    atomic_write_json(root / f"{key}.json", proj.meta)  # the sidecar last: its presence means complete


def pca(codes: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of codes (N, z): (embedding (N, dims), mean (z,), components (dims, z)); map new codes with (c - mean) @ comps.T."""
    mean = codes.mean(0)
    _, _, vt = np.linalg.svd(codes - mean, full_matrices=False)
    comps = vt[:dims]
    if comps.shape[0] < dims:  # latent smaller than dims: pad with zero axes
        comps = np.vstack([comps, np.zeros((dims - comps.shape[0], codes.shape[1]))])
    return ((codes - mean) @ comps.T).astype(np.float32), mean.astype(np.float32), comps.astype(np.float32)


def plane(codes: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], str]:
    """A 2-D view of codes (N, z): the raw axes for a 2-D latent, else their PCA.

    Returns the view (N, 2), a function mapping other codes (M, z) into it, and what the axes are.
    """
    if codes.shape[1] == 2:
        return codes, lambda z: z, "raw 2-D latent"
    emb, mean, comps = pca(codes)
    return emb, lambda z: (z - mean) @ comps.T, "PCA"


def quality(codes: np.ndarray, emb: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """10-NN label accuracy in latent space and in the map (on <= QUALITY_POINTS points), and
    trustworthiness (on <= TRUST_POINTS of them); one seeded sample for both."""
    from sklearn.manifold import trustworthiness

    idx = np.random.default_rng(seed).permutation(len(codes))[:QUALITY_POINTS]
    few = idx[:TRUST_POINTS]
    return {
        "knn_latent": knn_accuracy(codes[idx], labels[idx]),
        "knn_map": knn_accuracy(emb[idx], labels[idx]),
        "trustworthiness": float(trustworthiness(codes[few], emb[few], n_neighbors=10)),
    }


def compute_projection(
    model: BaseVAE,
    ds: Dataset,
    p: ProjectionParams,
    progress: Progress = lambda f, m: None,
    partial: Callable[[np.ndarray], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    n_jobs: int = 1,
) -> Projection:
    """Encode the split (subset), fit the map, and derive the overlay, inverse grid and quality."""
    t0 = time.perf_counter()
    clock = reducers.Stages()
    split = ds.split(p.split)
    index = split.subset_indices(p.limit, p.seed)
    sub = type(split)(split.images[index], split.labels[index])
    progress(0.02, f"encoding {len(sub):,} images")
    mu, logvar = encode_split(model, sub)
    terms = per_sample_terms(model, sub, seed=p.seed)
    labels = sub.labels.numpy()
    rng = torch.Generator().manual_seed(p.seed)
    prior_codes = torch.randn(p.n_prior, model.latent_dim, generator=rng).numpy()
    clock("encode")
    progress(0.08, f"fitting {p.method}")
    extra: dict[str, np.ndarray] = {}
    method_meta: dict[str, Any] = {}  # what the method ran that the params do not say
    if p.method == "raw":
        if max(p.axes) >= model.latent_dim:
            raise ConfigError(f"axis {max(p.axes)} does not exist in a {model.latent_dim}-d latent")
        emb, prior = mu[:, list(p.axes)], prior_codes[:, list(p.axes)]
    elif p.method == "pca":
        emb, mean, comps = pca(mu, p.dims)
        prior, extra = (prior_codes - mean) @ comps.T, {"pca_mean": mean, "pca_components": comps}
    elif p.method == "tsne":
        emb, fitted = reducers.tsne(mu, p, progress, partial, should_stop, n_jobs)
        clock("fit")
        progress(0.96, "placing prior samples")
        prior = (
            np.asarray(fitted.transform(prior_codes[:TRANSFORM_PRIOR_POINTS]), dtype=np.float32)
            if p.n_prior
            else np.zeros((0, p.dims), np.float32)
        )
        clock("prior")
    else:
        emb, reducer = reducers.umap(mu, p, n_jobs)
        clock("fit")
        # umap-learn places new points (the prior samples) and inverts (the grid) with a third of the fit's epochs
        method_meta = {
            "umap_epochs": {"fit": reducer.n_epochs, "prior": reducer.n_epochs // 3, "grid": reducer.n_epochs // 3}
        }
        progress(0.85, "placing prior samples")
        prior = (
            reducer.transform(prior_codes[:TRANSFORM_PRIOR_POINTS]).astype(np.float32)
            if p.n_prior
            else np.zeros((0, p.dims), np.float32)
        )
        clock("prior")
        if p.dims == 2 and model.latent_dim > 2 and p.inverse_grid:
            progress(0.9, "inverse transform on a grid")
            g = p.inverse_grid
            lo, hi = emb.min(0), emb.max(0)
            xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], g), np.linspace(lo[1], hi[1], g))
            grid_xy = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
            extra = {"grid_xy": grid_xy, "grid_codes": reducer.inverse_transform(grid_xy).astype(np.float32)}
            clock("grid")
    clock("fit")  # raw and PCA (the others add nothing here)
    progress(0.97, "measuring quality")
    scores = quality(mu, emb, labels, p.seed)
    clock("quality")
    meta = {
        "params": p.to_dict(),
        "n": len(sub),
        "latent_dim": model.latent_dim,
        "quality": scores,
        "quality_points": {"knn": min(len(sub), QUALITY_POINTS), "trustworthiness": min(len(sub), TRUST_POINTS)},
        "seconds": time.perf_counter() - t0,
        "timings": clock.seconds,
        "cpu_seconds": clock.cpu,
        **method_meta,
    }
    return Projection(
        emb.astype(np.float32),
        labels,
        index.numpy(),
        mu,
        logvar,
        terms["recon"].numpy(),
        terms["kl"].numpy(),
        np.asarray(prior, np.float32),
        meta=meta,
        **extra,
    )


def compute_from_blobs(
    blobs: dict[str, bytes], name: str, dataset: str, p: ProjectionParams, **kw: Any
) -> tuple[str, Projection]:
    """Load a model from its files' bytes (``checkpoint.model_blobs``) and compute its map: (cache key,
    projection). Needs no app disk."""
    from explorer.checkpoint import blobs_hash, model_from_blobs
    from explorer.data import load_dataset

    clock = reducers.Stages()
    key = cache_key(blobs_hash(blobs), dataset, p)
    model, _ = model_from_blobs(blobs, Path(name).name)
    ds = load_dataset(dataset)
    if model.needs_dataset:
        model.attach(ds)
    clock("load")
    proj = compute_projection(model, ds, p, **kw)
    proj.meta.update({"checkpoint": name, "dataset": dataset, "key": key})
    proj.meta["timings"] = {**clock.seconds, **proj.meta["timings"]}
    proj.meta["cpu_seconds"] = {**clock.cpu, **proj.meta["cpu_seconds"]}
    return key, proj


def get_or_compute(
    checkpoint: Path, dataset: str, p: ProjectionParams, n_jobs: int = 1, **kw: Any
) -> tuple[Projection, bool]:
    """The map from the cache, or computed here and cached: (projection, was_cached)."""
    from explorer.checkpoint import blobs_hash, model_blobs

    blobs = model_blobs(checkpoint)  # the same size and existence checks as loading
    cached = load_cached(cache_key(blobs_hash(blobs), dataset, p))
    if cached is not None:
        return cached, True
    key, proj = compute_from_blobs(blobs, str(checkpoint), dataset, p, n_jobs=n_jobs, **kw)
    save_cached(key, proj)
    return proj, False


def warm_start(submit: Callable[..., Any], checkpoint: Path, dataset: str, ckpt_hash: str) -> None:
    """Queue the slow default maps (t-SNE, UMAP of the test split) so a first visit finds them ready."""
    for method in ("tsne", "umap"):
        p = ProjectionParams(method=method)
        key = cache_key(ckpt_hash, dataset, p)
        if load_cached(key) is None:
            params = {"checkpoint": str(checkpoint), "dataset": dataset, "projection": p.to_dict()}
            submit("projection", params, f"map-{key}", background=True)


def projection_job(params: dict[str, Any], blobs: dict[str, bytes], rep: Any) -> dict[str, bytes]:
    """Worker entry: compute one map, publishing t-SNE layouts as ``partial.npy``; returns the cache files."""
    p = ProjectionParams.from_dict(params["projection"])

    def partial(emb: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, emb)
        rep.put("partial.npy", buf.getvalue())

    key, proj = compute_from_blobs(
        blobs,
        params["checkpoint"],
        params["dataset"],
        p,
        n_jobs=1,
        progress=lambda f, m: rep.progress(f, m),
        partial=partial,
        should_stop=rep.should_stop,
    )
    if rep.should_stop(fresh=True):  # a stopped t-SNE returns its unfinished layout: not a map to cache
        return {}
    rel = cache_dir().relative_to(home_dir())
    return {f"{rel}/{key}.npz": proj.to_npz(), f"{rel}/{key}.json": json.dumps(proj.meta).encode()}
