"""A corpus of hostile and broken checkpoints and datasets, written into a folder.

Each maker writes one file and returns its path. A pickle's payload, if ever run,
creates ``MARKER`` beside it: tests assert the marker never appears.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as st_save

from explorer.checkpoint import META_KEY, build_metadata, checkpoint_bytes
from explorer.training.train import make_model

MARKER = "PWNED"


class _Payload:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _good(kind: str = "vae-mlp") -> tuple[object, dict]:
    model = make_model(kind, {"latent_dim": 2}, 0)
    meta = build_metadata(model, dataset="mnist", split="test", seed=0, epochs=0)
    return model, meta


def _with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _swap_meta(data: bytes, **changes) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"][META_KEY])
    meta.update(changes)
    header["__metadata__"][META_KEY] = json.dumps(meta)
    return _with_header(header, data[8 + n :])


def bad_checkpoints(folder: Path) -> dict[str, Path]:
    """Write every bad checkpoint into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    model, meta = _good()
    good = checkpoint_bytes(model, meta)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    files: dict[str, bytes | None] = {}
    evil = pickle.dumps(_Payload(str(marker)))
    for ext in ("pt", "pth", "ckpt", "safetensors", "pkl", "bin"):
        files[f"pickle-code.{ext}"] = evil
    zipped = folder / "_torchsave.tmp"
    torch.save({"x": _Payload(str(marker))}, zipped)  # torch's zip-of-pickle format
    files["torch-save-zip.pt"] = zipped.read_bytes()
    zipped.unlink()
    files["pickle-protocol0.safetensors"] = pickle.dumps(_Payload(str(marker)), protocol=0)
    files["truncated.safetensors"] = good[: len(good) // 2]
    files["truncated-header.safetensors"] = good[:20]
    files["huge-header-length.safetensors"] = struct.pack("<Q", 2**62) + good[8:]
    files["invalid-header-json.safetensors"] = struct.pack("<Q", 10) + b"{not json!" + b"\0" * 32
    files["header-not-object.safetensors"] = _with_header([1, 2, 3], b"")  # type: ignore[arg-type]
    files["no-metadata.safetensors"] = st_save(sd)
    files["metadata-not-json.safetensors"] = st_save(sd, metadata={META_KEY: "{oops"})
    files["wrong-dtype.safetensors"] = st_save(
        {k: v.double() for k, v in sd.items()}, metadata={META_KEY: json.dumps(meta)}
    )
    shaped = dict(sd)
    first = next(iter(shaped))
    shaped[first] = torch.zeros(3, 3)
    files["wrong-shape.safetensors"] = st_save(shaped, metadata={META_KEY: json.dumps(meta)})
    missing = dict(sd)
    missing.pop(first)
    files["missing-tensor.safetensors"] = st_save(missing, metadata={META_KEY: json.dumps(meta)})
    extra = dict(sd, **{"evil.weight": torch.zeros(2)})
    files["extra-tensor.safetensors"] = st_save(extra, metadata={META_KEY: json.dumps(meta)})
    nan = dict(sd)
    nan[first] = torch.full_like(sd[first], float("nan"))
    files["nan-weights.safetensors"] = st_save(nan, metadata={META_KEY: json.dumps(meta)})
    files["unknown-kind.safetensors"] = _swap_meta(good, model="vae-transformer-xxl")
    files["nonsense-config.safetensors"] = _swap_meta(good, config={"latent_dim": -5, "beta": "lots"})
    files["config-unknown-key.safetensors"] = _swap_meta(good, config={**meta["config"], "exec": "rm -rf /"})
    files["latent-dim-mismatch.safetensors"] = _swap_meta(good, latent_dim=7)
    files["missing-metadata-keys.safetensors"] = st_save(sd, metadata={META_KEY: json.dumps({"model": "vae-mlp"})})
    files["huge-metadata.safetensors"] = st_save(
        sd, metadata={META_KEY: json.dumps({**meta, "junk": "x" * (5 * 2**20)})}
    )
    files["offsets-outside-file.safetensors"] = _corrupt_offsets(good)
    files["empty.safetensors"] = b""
    files["random-bytes.safetensors"] = os.urandom(4096)
    files["a-directory.safetensors"] = None
    out = {}
    for name, data in files.items():
        path = folder / name
        if data is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(data)
        out[name] = path
    return out


def _corrupt_offsets(good: bytes) -> bytes:
    (n,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8 : 8 + n])
    key = next(k for k in header if k != "__metadata__")
    header[key]["data_offsets"] = [0, 10**9]
    return _with_header(header, good[8 + n :])


def bad_datasets(folder: Path) -> dict[str, Path]:
    """Write every bad .npz into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ok = rng.random((20, 28, 28)).astype(np.float32)
    cases = {
        "object-array": {"images": np.array([ok[0], "x"], dtype=object)},
        "wrong-rank": {"images": ok[0]},
        "rank-5": {"images": ok[None, :, None]},
        "nan": {"images": np.where(ok > 0.5, np.nan, ok)},
        "zero-images": {"images": np.zeros((0, 28, 28), np.float32)},
        "one-image": {"images": ok[:1]},
        "labels-mismatch": {"images": ok, "labels": np.arange(7)},
        "float-0-255": {"images": ok * 255},
        "strings": {"images": np.array(["a", "b", "c"])},
        "string-labels": {"images": ok, "labels": np.array(["cat"] * 20)},
        "negative-labels": {"images": ok, "labels": -np.ones(20, dtype=np.int64)},
        "no-images-key": {"pixels": ok},
        "huge-side": {"images": np.zeros((2, 1, 4, 999), np.uint8)},
        "five-channels": {"images": np.zeros((4, 5, 28, 28), np.uint8)},
        "complex": {"images": ok.astype(np.complex64)},
    }
    out = {}
    for name, arrays in cases.items():
        path = folder / f"{name}.npz"
        np.savez(path, **arrays)  # numpy pickles object arrays on save; loading must refuse them
        out[name] = path
    (folder / "not-a-zip.npz").write_bytes(b"hello")
    out["not-a-zip"] = folder / "not-a-zip.npz"
    return out
