"""Checkpoints: one safetensors file whose header carries our JSON metadata.

Loading never unpickles. The header is parsed by hand and checked (size, JSON, dtypes,
shapes, offsets) and every metadata field validated before any tensor is read. Every tensor
must then match the model that the metadata's kind and config build, and that model is first
built on torch's ``meta`` device (no memory), so a small header cannot make the server allocate
a huge model before being refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from explorer import versions
from explorer.config import MAX_LATENT, MAX_PARAMS, ModelConfig
from explorer.errors import CheckpointError, ExplorerError
from explorer.models import BaseVAE, get_model_class
from explorer.storage import atomic_write_bytes

FORMAT = "latent-explorer/1"
META_KEY = "latent_explorer"
MAX_FILE_BYTES = 64 * 2**20
MAX_HEADER_BYTES = 4 * 2**20
REQUIRED_META = (
    "model",
    "config",
    "latent_dim",
    "dataset",
    "split",
    "seed",
    "epochs",
    "history",
    "test_metrics",
    "versions",
    "created",
)
_DTYPES = {"F32": torch.float32}
_PICKLE_HINT = (
    "it is a Python pickle (torch.save output). Pickles can run arbitrary code when loaded, so "
    "Latent Explorer refuses them: export the weights with safetensors instead"
)


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


def _read_file(path: str | Path) -> bytes:
    path = Path(path)
    _read_file_checks(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_file_checks(path: Path) -> os.stat_result:
    """Refuse what is not a regular file of a sane size (FIFOs, devices, folders) before opening it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path} is not a regular file (a device, pipe or socket); refused")
    if st.st_size > MAX_FILE_BYTES:
        raise CheckpointError(
            f"{path.name} is {st.st_size / 2**20:.0f} MB; checkpoints are limited to {MAX_FILE_BYTES // 2**20} MB"
        )
    return st


def parse_header(
    data: bytes, name: str = "checkpoint", body_size: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the safetensors header and our metadata; return (tensor entries, metadata). Reads no tensor.

    ``data`` is the whole file, or just its header when ``body_size`` gives the rest's length.
    Any parser failure (deep nesting, odd types) becomes a one-line CheckpointError.
    """
    try:
        return _parse_header(data, name, body_size)
    except RecursionError:
        raise CheckpointError(f"{name}: its header nests too deeply; not a valid checkpoint") from None
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{name}: malformed header ({type(exc).__name__})") from None


def _parse_header(data: bytes, name: str, body_size: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(data) == 0:
        raise CheckpointError(f"{name} is empty")
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else -1
    if not (0 < n <= MAX_HEADER_BYTES and data[8:9] == b"{"):  # not shaped like safetensors: say why
        if data[:4] == b"PK\x03\x04" and b".npy" in data[:4096] and b"data.pkl" not in data[:4096]:
            raise CheckpointError(f"{name} is a NumPy array file (.npz), not a checkpoint")
        if _looks_like_pickle(data):
            raise CheckpointError(f"{name} is refused: {_PICKLE_HINT}")
        if n < 0:
            raise CheckpointError(f"{name} is truncated ({len(data)} bytes)")
        if n > MAX_HEADER_BYTES:
            raise CheckpointError(
                f"{name}: header claims {n:,} bytes (limit {MAX_HEADER_BYTES:,}); not a valid checkpoint"
            )
        raise CheckpointError(f"{name} is not a safetensors file")
    total = len(data) if body_size is None else len(data) + body_size
    if 8 + n > total or 8 + n > len(data):
        raise CheckpointError(f"{name} is truncated: header claims {n:,} bytes, file has {total - 8:,}")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{name} is not a safetensors file (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: header is not a JSON object")
    raw_meta = header.pop("__metadata__", None)
    if not isinstance(raw_meta, dict) or not isinstance(raw_meta.get(META_KEY), str):
        raise CheckpointError(f"{name} is a safetensors file without Latent Explorer metadata")
    try:
        meta = json.loads(raw_meta[META_KEY])
    except json.JSONDecodeError:
        raise CheckpointError(f"{name}: metadata is not valid JSON") from None
    validate_meta(meta, name)
    body = total - 8 - n
    for key, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if not (isinstance(dtype, str) and dtype in _DTYPES):
            shown = dtype if isinstance(dtype, str) else type(dtype).__name__
            raise CheckpointError(f"{name}: tensor {key[:80]!r} has dtype {shown[:20]}, expected F32")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and len(shape) <= 8 and all(_is_count(s) for s in shape)):
            raise CheckpointError(f"{name}: tensor {key[:80]!r} has a bad shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
            raise CheckpointError(f"{name}: tensor {key[:80]!r} has bad offsets")
        if not offsets[0] <= offsets[1] <= body or offsets[1] - offsets[0] != 4 * math.prod(shape):
            raise CheckpointError(f"{name}: tensor {key[:80]!r} lies outside the file (truncated or corrupt)")
    return header, meta


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _known_dataset(name: str) -> bool:
    from explorer.data import DATASET_NAMES
    from explorer.data.paired import PAIRED_NAMES

    return name in DATASET_NAMES or name in PAIRED_NAMES


def validate_meta(meta: Any, name: str = "checkpoint") -> None:
    """Check every metadata field's type and range; unknown extra fields are kept but never used."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name}: metadata is not a JSON object")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"{name}: metadata lacks {', '.join(missing)}")

    def short_str(v: Any) -> bool:
        return isinstance(v, str) and len(v) <= 1000 and "\0" not in v

    def numbers(d: Any) -> bool:
        return isinstance(d, dict) and len(d) <= 100 and all(short_str(k) and _is_number(v) for k, v in d.items())

    ds = meta["dataset"]
    checks = {
        "model": short_str(meta["model"]),
        "config": isinstance(meta["config"], dict),
        "latent_dim": _is_count(meta["latent_dim"]) and 1 <= meta["latent_dim"] <= MAX_LATENT,
        "dataset": short_str(ds) and (_known_dataset(ds) or ds.endswith(".npz")),
        "split": short_str(meta["split"]),
        "seed": _is_count(meta["seed"]),
        "epochs": _is_count(meta["epochs"]) and meta["epochs"] <= 100_000,
        "history": isinstance(meta["history"], list)
        and len(meta["history"]) <= 100_000
        and all(numbers(row) for row in meta["history"]),
        "test_metrics": numbers(meta["test_metrics"]),
        "versions": isinstance(meta["versions"], dict) and all(short_str(v) for v in meta["versions"].values()),
        "created": short_str(meta["created"]),
        "format": short_str(meta.get("format", "")),
        "training": isinstance(meta.get("training", {}), dict),
        "stopped_early": isinstance(meta.get("stopped_early", False), bool),
        "anchors": isinstance(meta.get("anchors", []), list) and all(short_str(a) for a in meta.get("anchors", [])),
        "name": short_str(meta.get("name", "")),
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        field = bad[0]
        shown = json.dumps(meta.get(field))
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        hint = " (a built-in dataset name or a .npz file)" if field == "dataset" else ""
        raise CheckpointError(f"{name}: metadata field {field!r} has a bad value {shown}{hint}")


def _looks_like_pickle(data: bytes) -> bool:
    """Pickle protocol 2+ (0x80 n), torch's zip container, or protocol 0/1 text (ends with STOP '.')."""
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return True
    if data[:4] == b"PK\x03\x04":
        return True
    return data[:1] in (b"(", b"c", b"]", b"}", b")", b"N", b"I", b"S", b"V") and data.rstrip(b"\n")[-1:] == b"."


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint file, validated as far as the header goes (reads only the header)."""
    path = Path(path)
    if path.suffix == ".json":  # an imported model's sidecar (explorer.foreign)
        from explorer.foreign.store import read_foreign_metadata

        return read_foreign_metadata(path)
    size = _read_file_checks(path).st_size
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            head += f.read(min(n, MAX_HEADER_BYTES) if 0 < n <= MAX_HEADER_BYTES else 4096)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    # Validate offsets against the real file size: pad the body virtually.
    return parse_header(head, path.name, body_size=max(0, size - len(head)))[1]


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
    return {"checkpoint": _read_file(path)}


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
    return model_from_bytes(_read_file(path), Path(path).name, device)


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
