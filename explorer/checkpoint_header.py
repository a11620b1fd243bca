"""A checkpoint's header: file checks, the safetensors header parsed by hand, our metadata validated.

Nothing here reads a tensor or imports torch: ``explorer.checkpoint`` builds the model and loads
the weights once this has accepted the header (sizes, JSON, dtypes, shapes, offsets, every
metadata field).
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

from explorer.config import MAX_LATENT
from explorer.errors import CheckpointError

META_KEY = "latent_explorer"  # the safetensors metadata key that holds our JSON
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
TENSOR_DTYPES = ("F32",)  # float32 only
_PICKLE_HINT = (
    "it is a Python pickle (torch.save output). Pickles can run arbitrary code when loaded, so "
    "Latent Explorer refuses them: export the weights with safetensors instead"
)


def read_file(path: str | Path) -> bytes:
    """A checkpoint file's bytes, once it is known to be a regular file of a sane size."""
    path = Path(path)
    file_checks(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None


def file_checks(path: Path) -> os.stat_result:
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
        if looks_like_pickle(data):
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
        if not (isinstance(dtype, str) and dtype in TENSOR_DTYPES):
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


def looks_like_pickle(data: bytes) -> bool:
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
    size = file_checks(path).st_size
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            head += f.read(min(n, MAX_HEADER_BYTES) if 0 < n <= MAX_HEADER_BYTES else 4096)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    # Validate offsets against the real file size: pad the body virtually.
    return parse_header(head, path.name, body_size=max(0, size - len(head)))[1]
