"""Checkpoints: one safetensors file whose header carries our JSON metadata.

Loading never unpickles. The header is parsed by hand and checked (size, JSON, dtypes,
shapes, offsets) before any tensor is read, and every tensor must match the model that
the metadata's kind and config build.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from explorer import __version__
from explorer.errors import CheckpointError, ExplorerError
from explorer.models import BaseVAE, get_model_class
from explorer.storage import atomic_write_bytes

FORMAT = "latent-explorer/1"
META_KEY = "latent_explorer"
MAX_FILE_BYTES = 64 * 2**20
MAX_HEADER_BYTES = 4 * 2**20
REQUIRED_META = ("model", "config", "latent_dim", "dataset", "split", "seed", "epochs", "history",
                 "test_metrics", "versions", "created")  # fmt: skip
_DTYPES = {"F32": torch.float32}
_PICKLE_HINT = (
    "it is a Python pickle (torch.save output). Pickles can run arbitrary code when loaded, so "
    "Latent Explorer refuses them: export the weights with safetensors instead"
)


def versions() -> dict[str, str]:
    """Library versions recorded in every checkpoint."""
    return {"explorer": __version__, "torch": torch.__version__, "python": platform.python_version()}


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


def save_checkpoint(model: BaseVAE, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the checkpoint atomically: the old file survives any failure."""
    try:
        return atomic_write_bytes(path, checkpoint_bytes(model, meta))
    except OSError as exc:
        raise CheckpointError(f"could not save {path}: {exc.strerror or exc}") from None


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


def _read_file_checks(path: Path) -> None:
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CheckpointError(
            f"{path.name} is {size / 2**20:.0f} MB; checkpoints are limited to {MAX_FILE_BYTES // 2**20} MB"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_header(
    data: bytes, name: str = "checkpoint", body_size: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the safetensors header; return (tensor entries, our metadata). Reads no tensor.

    ``data`` is the whole file, or just its header when ``body_size`` gives the rest's length.
    """
    if len(data) == 0:
        raise CheckpointError(f"{name} is empty")
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else -1
    if not (0 < n <= MAX_HEADER_BYTES and data[8:9] == b"{"):  # not shaped like safetensors: say why
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
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name}: metadata is not a JSON object")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"{name}: metadata lacks {', '.join(missing)}")
    body = total - 8 - n
    for key, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES:
            raise CheckpointError(
                f"{name}: tensor {key!r} has dtype {entry.get('dtype') if isinstance(entry, dict) else '?'}, expected F32"
            )
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise CheckpointError(f"{name}: tensor {key!r} has a bad shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise CheckpointError(f"{name}: tensor {key!r} has bad offsets")
        numel = 1
        for s in shape:
            numel *= s
        if not 0 <= offsets[0] <= offsets[1] <= body or offsets[1] - offsets[0] != 4 * numel:
            raise CheckpointError(f"{name}: tensor {key!r} lies outside the file (truncated or corrupt)")
    return header, meta


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
    _read_file_checks(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            head += f.read(min(n, MAX_HEADER_BYTES))
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    # Validate offsets against the real file size: pad the body virtually.
    return parse_header(head, path.name, body_size=path.stat().st_size - len(head))[1]


def model_from_bytes(data: bytes, name: str = "checkpoint", device: torch.device | str = "cpu") -> tuple[BaseVAE, dict]:
    """Build the model the metadata names and load its weights, checking every tensor."""
    header, meta = parse_header(data, name)
    try:
        cls = get_model_class(meta["model"])
        config = cls.config_cls.from_dict(meta["config"])
        model = cls(config)
    except ExplorerError as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    if meta["latent_dim"] != config.latent_dim:
        raise CheckpointError(f"{name}: latent_dim {meta['latent_dim']} disagrees with its config")
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{name}: tensors do not match {meta['model']}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, ref in expected.items():
        if list(ref.shape) != header[key]["shape"]:
            raise CheckpointError(
                f"{name}: tensor {key!r} has shape {header[key]['shape']}, model needs {list(ref.shape)}"
            )
    try:
        tensors = st_load(data)
    except Exception as exc:  # noqa: BLE001 - the Rust parser's errors become one message
        raise CheckpointError(f"{name}: corrupt safetensors data ({exc})") from None
    for key, t in tensors.items():
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{name}: tensor {key!r} contains NaN or infinite weights")
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model.to(device), meta


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[BaseVAE, dict]:
    """Load a checkpoint file: (model in eval mode on ``device``, metadata)."""
    return model_from_bytes(_read_file(path), Path(path).name, device)


def load_for_use(path: str | Path, device: torch.device | str = "cpu") -> tuple[BaseVAE, dict]:
    """``load_checkpoint``, then attach the training dataset for models whose loss needs it.

    An imported model's sidecar (``.json``, see explorer.foreign) loads that model instead; it runs
    with onnxruntime or the user's own code, on its own device.
    """
    if Path(path).suffix == ".json":
        from explorer.foreign.store import load_foreign

        return load_foreign(path)
    model, meta = load_checkpoint(path, device)
    if model.needs_dataset:
        from explorer.data import load_dataset

        try:
            model.attach(load_dataset(meta["dataset"]))
        except ExplorerError as exc:
            raise CheckpointError(f"{Path(path).name}: {exc}") from None
    return model, meta
