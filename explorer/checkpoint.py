"""Checkpoints: one safetensors file whose header carries our JSON metadata.

Loading never unpickles. The header is parsed by hand and checked (size, JSON, dtypes,
shapes, offsets) and every metadata field validated before any tensor is read
(explorer.checkpoint_header). Every tensor
must then match the model that the metadata's kind and config build, and that model is first
built on torch's ``meta`` device (no memory), so a small header cannot make the server allocate
a huge model before being refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from explorer import versions
from explorer.checkpoint_header import META_KEY, REQUIRED_META, parse_header, read_file
from explorer.config import MAX_PARAMS, ModelConfig
from explorer.errors import CheckpointError, ExplorerError
from explorer.models import BaseVAE, get_model_class
from explorer.storage import atomic_write_bytes

FORMAT = "latent-explorer/1"


def build_metadata(model: BaseVAE, **fields: Any) -> dict[str, Any]:
    """Metadata for ``model``; ``fields`` fill dataset, split, seed, epochs, history, test_metrics..."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "model": model.kind,
        "config": model.config.to_dict(),
        "latent_dim": model.latent_dim,
        "versions": versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "history": [],
        "test_metrics": {},
    }
    meta.update(fields)
    return meta


def checkpoint_bytes(model: BaseVAE, meta: dict[str, Any]) -> bytes:
    """Serialise weights + metadata to safetensors bytes."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"metadata lacks {missing}")
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    return st_save(tensors, metadata={META_KEY: json.dumps(meta, allow_nan=False)})


def save_checkpoint(model: BaseVAE, path: str | Path, meta: dict[str, Any], exclusive: bool = False) -> Path:
    """Write the checkpoint atomically: the old file survives any failure. Returns the path written.

    With ``exclusive`` an existing file is never replaced: the name gets a ``-2``, ``-3``... suffix.
    """
    try:
        return atomic_write_bytes(path, checkpoint_bytes(model, meta), exclusive=exclusive)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise CheckpointError(f"could not save {Path(path).name}: {reason}") from None


def content_hash(data: bytes) -> str:
    """Short sha256 of a checkpoint's bytes: the cache key of everything derived from it."""
    return hashlib.sha256(data).hexdigest()[:16]


def expected_shapes(
    kind: str, config: dict[str, Any], name: str = "checkpoint"
) -> tuple[type[BaseVAE], ModelConfig, dict[str, list[int]]]:
    """The model class, its validated config and its tensors' shapes, built on the meta device (no memory)."""
    try:
        cls = get_model_class(kind)
        cfg = cls.config_cls.from_dict(config)
        with torch.device("meta"):
            shapes = {k: list(v.shape) for k, v in cls(cfg).state_dict().items()}
    except ExplorerError as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    n_params = sum(math.prod(s) for s in shapes.values())
    if n_params > MAX_PARAMS:
        raise CheckpointError(f"{name}: its config builds {n_params:,} parameters; the limit is {MAX_PARAMS:,}")
    return cls, cfg, shapes


def check_tensors(
    header: dict[str, Any], meta: dict[str, Any], name: str = "checkpoint"
) -> tuple[type[BaseVAE], ModelConfig]:
    """Compare every tensor in the header with the model the metadata builds; allocates nothing."""
    cls, cfg, expected = expected_shapes(meta["model"], meta["config"], name)
    if meta["latent_dim"] != cfg.latent_dim:
        raise CheckpointError(f"{name}: latent_dim {meta['latent_dim']} disagrees with its config")
    missing, unexpected = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{name}: tensors do not match {meta['model']}: missing {missing[:3]}, unexpected {[u[:40] for u in unexpected[:3]]}"
        )
    for key, shape in expected.items():
        if shape != header[key]["shape"]:
            raise CheckpointError(f"{name}: tensor {key!r} has shape {header[key]['shape']}, model needs {shape}")
    return cls, cfg


def model_from_bytes(data: bytes, name: str = "checkpoint", device: torch.device | str = "cpu") -> tuple[BaseVAE, dict]:
    """Build the model the metadata names and load its weights; every check runs before any allocation."""
    header, meta = parse_header(data, name)
    cls, cfg = check_tensors(header, meta, name)
    try:
        tensors = st_load(data)
    except Exception as exc:  # noqa: BLE001 - the Rust parser's errors become one message
        raise CheckpointError(f"{name}: corrupt safetensors data ({str(exc)[:100]})") from None
    for key, t in tensors.items():
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{name}: tensor {key!r} contains NaN or infinite weights")
    model = cls(cfg)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model.to(device), meta


def model_blobs(path: str | Path) -> dict[str, bytes]:
    """A model's files as bytes, checked as loading checks them: what a job ships to a worker.

    A checkpoint is ``{"checkpoint": bytes}``; an imported model (its ``.json`` sidecar) is its sidecar
    and files (explorer.foreign). ``blobs_hash`` of it keys the caches of everything derived from the model.
    """
    if Path(path).suffix == ".json":
        from explorer.foreign.store import foreign_blobs

        return foreign_blobs(path)
    return {"checkpoint": read_file(path)}


def blobs_hash(blobs: dict[str, bytes]) -> str:
    """``content_hash`` of the file that names the model (a sidecar holds its files' sha256)."""
    from explorer.foreign.store import SIDECAR

    return content_hash(blobs["checkpoint"] if "checkpoint" in blobs else blobs[SIDECAR])


def model_from_blobs(blobs: dict[str, bytes], name: str, device: torch.device | str = "cpu") -> tuple[BaseVAE, dict]:
    """``model_from_bytes`` for ``model_blobs``: a checkpoint or an imported model, from bytes alone."""
    if "checkpoint" in blobs:
        return model_from_bytes(blobs["checkpoint"], name, device)
    from explorer.foreign.store import load_foreign_blobs

    return load_foreign_blobs(blobs, name)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[BaseVAE, dict]:
    """Load a checkpoint file: (model in eval mode on ``device``, metadata).

    An imported model's sidecar (``.json``, see explorer.foreign) loads that model, checked whole
    (both files' hashes, a probe batch); it runs with onnxruntime or the user's code, on its own device.
    """
    if Path(path).suffix == ".json":
        from explorer.foreign.store import load_foreign

        return load_foreign(path)
    return model_from_bytes(read_file(path), Path(path).name, device)


def check_dataset_fits(model: BaseVAE, dataset: Any, name: str = "checkpoint") -> None:
    """Refuse a model whose image shape or class count disagrees with the dataset its metadata names."""
    if tuple(dataset.in_shape) != tuple(model.config.in_shape):
        raise CheckpointError(
            f"{name}: takes images {tuple(model.config.in_shape)}, but its dataset "
            f"{dataset.name} has {tuple(dataset.in_shape)}"
        )
    if model.conditional and model.config.n_classes != max(1, dataset.n_classes):
        raise CheckpointError(
            f"{name}: conditions on {model.config.n_classes} classes, but its dataset "
            f"{dataset.name} has {dataset.n_classes}"
        )


def load_for_use(path: str | Path, device: torch.device | str = "cpu") -> tuple[BaseVAE, dict]:
    """``load_checkpoint``, then check it against its dataset and attach that for models whose loss needs it."""
    from explorer.data import load_dataset

    if Path(path).suffix == ".json":  # an imported model: checked against its dataset at import
        return load_checkpoint(path, device)

    name = Path(path).name
    model, meta = load_checkpoint(path, device)
    try:
        ds = load_dataset(meta["dataset"])
    except ExplorerError as exc:
        if model.needs_dataset:
            raise CheckpointError(f"{name}: {exc}") from None
        return model, meta  # a missing dataset is the page's to report; the model itself is fine
    check_dataset_fits(model, ds, name)
    if model.needs_dataset:
        try:
            model.attach(ds)
        except ExplorerError as exc:
            raise CheckpointError(f"{name}: {exc}") from None
    return model, meta
