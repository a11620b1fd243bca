"""Imported models on disk: ``imported/NAME/`` holds encoder.onnx, decoder.onnx and model.json (the sidecar).

The sidecar carries the same metadata fields as a checkpoint (so the catalog, the pages and
``explorer info`` treat both alike) plus a ``foreign`` block. File names inside the folder are
fixed: nothing in a sidecar is ever used as a path or a module name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from explorer.errors import CheckpointError, ConfigError
from explorer.foreign.base import ForeignVAE, probe
from explorer.storage import atomic_write_bytes, atomic_write_json, home_dir

FORMAT = "latent-explorer-foreign/1"
SIDECAR = "model.json"
ENCODER, DECODER = "encoder.onnx", "decoder.onnx"
MAX_SIDECAR_BYTES = 2**20
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PROBE_N = 16
SHAPE_DATASETS = {(1, 28, 28): "mnist", (1, 8, 8): "digits"}  # a trusted model's default dataset


def imported_dir() -> Path:
    """ONNX pairs imported with ``explorer import-onnx`` or the sidebar."""
    return home_dir() / "imported"


def adapters_dir() -> Path:
    """Sidecars the CLI writes for ``--model pkg.module:factory`` (metadata only; no module name is read back)."""
    return home_dir() / "adapters"


def is_foreign(path: str | Path) -> bool:
    """Is this path an imported model's sidecar (rather than a safetensors checkpoint)?"""
    return Path(path).suffix == ".json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_foreign_metadata(path: str | Path) -> dict[str, Any]:
    """The sidecar's metadata, validated (size, JSON, fields, types)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise CheckpointError(f"{path.name} is larger than {MAX_SIDECAR_BYTES // 1024} kB; not a model sidecar")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"{path.name} is not a readable model sidecar ({type(exc).__name__})") from None
    return parse_foreign_metadata(data, path.name)


def parse_foreign_metadata(data: bytes, name: str = SIDECAR) -> dict[str, Any]:
    """A sidecar's bytes as metadata, validated (size, JSON, fields, types)."""
    if len(data) > MAX_SIDECAR_BYTES:
        raise CheckpointError(f"{name} is larger than {MAX_SIDECAR_BYTES // 1024} kB; not a model sidecar")
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{name} is not a readable model sidecar ({type(exc).__name__})") from None
    f = meta.get("foreign") if isinstance(meta, dict) else None
    if not isinstance(f, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not a Latent Explorer model sidecar")
    cfg = meta.get("config")
    ok = (
        isinstance(cfg, dict)
        and isinstance(cfg.get("in_shape"), list)
        and len(cfg["in_shape"]) == 3
        and all(isinstance(s, int) and s > 0 for s in cfg["in_shape"])
        and isinstance(meta.get("latent_dim"), int)
        and isinstance(meta.get("dataset"), str)
        and f.get("kind") in ("onnx", "torch-adapter")
    )
    if f.get("kind") == "onnx":
        ok = (
            ok
            and f.get("encoder_outputs") in ("mu,logvar", "mu")
            and f.get("decoder_output") in ("probabilities", "logits")
        )
        ok = ok and all(isinstance(f.get(k), str) and len(f[k]) == 64 for k in ("encoder_sha256", "decoder_sha256"))
    if not ok:
        raise CheckpointError(f"{name}: sidecar fields are missing or malformed")
    return meta


def _read_onnx(folder: Path, fname: str, sha: str) -> bytes:
    from explorer.foreign.onnx_model import MAX_ONNX_BYTES

    path = folder / fname
    try:
        if path.stat().st_size > MAX_ONNX_BYTES:
            raise CheckpointError(f"{folder.name}/{fname} is larger than {MAX_ONNX_BYTES // 2**20} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {folder.name}/{fname}: {exc.strerror or exc}") from None
    if _sha(data) != sha:
        raise CheckpointError(f"{folder.name}/{fname} changed since it was imported (its sha256 differs)")
    return data


def foreign_blobs(path: str | Path) -> dict[str, bytes]:
    """The files an imported model is made of (its sidecar, and an ONNX pair's two files, hash-checked).

    This is what a job ships to a worker, which may not see this disk.
    """
    path = Path(path)
    meta = read_foreign_metadata(path)
    blobs = {SIDECAR: path.read_bytes()}
    f = meta["foreign"]
    if f["kind"] == "onnx":
        blobs[ENCODER] = _read_onnx(path.parent, ENCODER, f["encoder_sha256"])
        blobs[DECODER] = _read_onnx(path.parent, DECODER, f["decoder_sha256"])
    return blobs


def load_foreign(path: str | Path) -> tuple[ForeignVAE, dict[str, Any]]:
    """Load an imported ONNX pair or the trusted adapter from its sidecar: (model in eval mode, metadata)."""
    return load_foreign_blobs(foreign_blobs(path), Path(path).parent.name)


def load_foreign_blobs(blobs: dict[str, bytes], name: str) -> tuple[ForeignVAE, dict[str, Any]]:
    """``load_foreign`` from the files' bytes (``foreign_blobs``): nothing is read from disk."""
    meta = parse_foreign_metadata(blobs[SIDECAR], f"{name}/{SIDECAR}")
    f = meta["foreign"]
    if f["kind"] == "onnx":
        from explorer.foreign.onnx_model import OnnxVAE

        for fname, key in ((ENCODER, "encoder_sha256"), (DECODER, "decoder_sha256")):
            if fname not in blobs or _sha(blobs[fname]) != f[key]:
                raise CheckpointError(
                    f"{name}/{fname} is missing or changed since it was imported (its sha256 differs)"
                )
        model: ForeignVAE = OnnxVAE(
            blobs[ENCODER],
            blobs[DECODER],
            meta["latent_dim"],
            tuple(meta["config"]["in_shape"]),
            f["encoder_outputs"],
            f["decoder_output"],
        )
    else:
        from explorer.foreign.adapter import TRUSTED_ENV, build_adapter

        spec = os.environ.get(TRUSTED_ENV)  # the only place a module name comes from
        if not spec or spec != f.get("spec"):
            raise CheckpointError(
                f"{meta['name']} is a trusted torch model: it loads only under `explorer serve --model {f.get('spec')}`"
            )
        model = build_adapter(spec)
    if model.latent_dim != meta["latent_dim"] or list(model.config.in_shape) != meta["config"]["in_shape"]:
        raise CheckpointError(f"{name}: the model no longer matches its metadata (latent size or image shape)")
    model.eval()
    return model, meta


def _metadata(model: ForeignVAE, name: str, dataset: str, foreign: dict[str, Any], metrics: dict) -> dict[str, Any]:
    from explorer import versions

    return {
        "format": FORMAT,
        "name": name,
        "model": model.kind,
        "latent_dim": model.latent_dim,
        "config": {"in_shape": list(model.config.in_shape), "latent_dim": model.latent_dim},
        "dataset": dataset,
        "split": "imported",
        "seed": 0,
        "epochs": 0,
        "history": [],
        "test_metrics": metrics,
        "stochastic": model.stochastic,
        "versions": versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "foreign": foreign,
    }


def _check_and_score(model: ForeignVAE, dataset: str, name: str, limit: int | None = None) -> dict[str, float]:
    """Probe on real images of ``dataset``, then the test-split metrics shown on the home page.

    ``limit`` scores a seeded subset of the test split (the sidebar bounds its work this way); ``n`` says how many.
    """
    from explorer.analysis.evaluate import evaluate_split
    from explorer.data import load_dataset

    ds = load_dataset(dataset)
    if tuple(ds.in_shape) != tuple(model.config.in_shape):
        raise CheckpointError(
            f"{ds.name} has images {tuple(ds.in_shape)}; --image-shape says {tuple(model.config.in_shape)}"
        )
    probe(model, ds.test.images[:PROBE_N], name)
    split = ds.test.subset(limit, seed=0) if limit and limit < len(ds.test) else ds.test
    terms = evaluate_split(model, split)
    if not all(v == v and abs(v) != float("inf") for v in terms.values()):
        raise CheckpointError(f"{name}: the loss on {ds.name} is NaN or infinite")
    return {**{k: round(terms[k], 4) for k in ("elbo", "recon", "kl")}, "n": len(split)}


def clean_name(name: str) -> str:
    """A catalog name, or a one-line error."""
    if not NAME_RE.match(name or ""):
        raise ConfigError(
            f"model name {name!r}: use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit"
        )
    return name


def import_onnx_bytes(
    enc: bytes,
    dec: bytes,
    latent_dim: int,
    image_shape: tuple[int, int, int],
    dataset: str,
    name: str,
    encoder_outputs: str = "mu,logvar",
    decoder_output: str = "probabilities",
    taken: set[str] | frozenset[str] = frozenset(),
    sources: tuple[str, str] = (ENCODER, DECODER),
    score_limit: int | None = None,
) -> Path:
    """Validate an ONNX pair fully (static checks, shapes, a probe batch, test metrics), then store it atomically.

    Returns the sidecar path. ``taken`` holds names already in the catalog; ``score_limit`` bounds the
    number of test images scored.
    """
    from explorer.foreign.onnx_model import OnnxVAE

    clean_name(name)
    if name in taken or (imported_dir() / name).exists():
        raise CheckpointError(f"a model named {name!r} already exists; pick another --name")
    model = OnnxVAE(enc, dec, latent_dim, image_shape, encoder_outputs, decoder_output, names=sources)
    metrics = _check_and_score(model, dataset, name, score_limit)
    foreign = {
        "kind": "onnx",
        "encoder_outputs": encoder_outputs,
        "decoder_output": decoder_output,
        "encoder_sha256": _sha(enc),
        "decoder_sha256": _sha(dec),
        "sources": [Path(s).name for s in sources],
    }
    meta = _metadata(model, name, dataset, foreign, metrics)
    root = imported_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        atomic_write_bytes(tmp / ENCODER, enc)
        atomic_write_bytes(tmp / DECODER, dec)
        atomic_write_json(tmp / SIDECAR, meta)
        os.chmod(tmp, 0o755)
        os.rename(tmp, root / name)  # atomic: the folder appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root / name / SIDECAR


def import_onnx(encoder: str | Path, decoder: str | Path, **kw: Any) -> Path:
    """``import_onnx_bytes`` from two files (size-checked before reading). Returns the sidecar path."""
    from explorer.foreign.onnx_model import MAX_ONNX_BYTES

    blobs = []
    for p in map(Path, (encoder, decoder)):
        if not p.is_file():
            raise CheckpointError(f"{p} is not a file")
        if p.stat().st_size > MAX_ONNX_BYTES:
            raise CheckpointError(
                f"{p.name} is {p.stat().st_size / 2**20:.0f} MB; ONNX files are limited to {MAX_ONNX_BYTES // 2**20} MB"
            )
        blobs.append(p.read_bytes())
    return import_onnx_bytes(*blobs, sources=(str(encoder), str(decoder)), **kw)


def register_adapter(spec: str, dataset: str | None = None) -> Path:
    """Build the trusted model, probe it, write its sidecar, and trust ``spec`` in this process and its children.

    Called by the CLI only. The sidecar holds a fingerprint of the model's outputs, so caches keyed
    by its content follow changes to the user's model.
    """
    from explorer.data import load_dataset
    from explorer.foreign.adapter import TRUSTED_ENV, build_adapter

    model = build_adapter(spec)
    shape = tuple(model.config.in_shape)
    dataset = dataset or getattr(model.wrapped, "dataset", None) or SHAPE_DATASETS.get(shape)
    if not dataset:
        raise CheckpointError(f"no built-in dataset has images {shape}; pass --dataset")
    ds = load_dataset(dataset)
    metrics = _check_and_score(model, dataset, spec)  # probes first: shapes, NaN, range
    with torch.no_grad():
        mu, _ = model.encode(ds.test.images[:PROBE_N])
        fp = _sha(mu.numpy().tobytes() + model.decode(mu).numpy().tobytes())
    name = "trusted-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", spec)[:56]
    meta = _metadata(model, name, dataset, {"kind": "torch-adapter", "spec": spec, "fingerprint": fp}, metrics)
    path = adapters_dir() / f"{name}.json"
    if not (path.is_file() and _same(path, meta)):
        atomic_write_json(path, meta)
    os.environ[TRUSTED_ENV] = spec
    return path


def _same(path: Path, meta: dict) -> bool:
    """Same model as the sidecar on disk (so its mtime, and every cache keyed on it, stays)."""
    try:
        old = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return {k: v for k, v in old.items() if k != "created"} == {k: v for k, v in meta.items() if k != "created"}


def foreign_entries() -> list[tuple[str, Path, str, dict]]:
    """(name, sidecar, source, metadata) of every imported pair, and of the trusted model when one is set."""
    from explorer.foreign.adapter import TRUSTED_ENV

    out = []
    root = imported_dir()
    if root.is_dir():
        for path in sorted(root.glob(f"*/{SIDECAR}")):
            if path.parent.name.startswith("."):
                continue
            try:
                out.append((path.parent.name, path, "imported", read_foreign_metadata(path)))
            except CheckpointError:
                continue
    spec = os.environ.get(TRUSTED_ENV)
    if spec and adapters_dir().is_dir():
        for path in sorted(adapters_dir().glob("*.json")):
            try:
                meta = read_foreign_metadata(path)
            except CheckpointError:
                continue
            if meta["foreign"].get("spec") == spec:
                out.append((path.stem, path, "trusted code", meta))
    return out
