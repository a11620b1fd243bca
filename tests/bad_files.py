"""A corpus of hostile and broken checkpoints and datasets, written into a folder.

Each maker writes one file and returns its path. A pickle's payload, if ever run,
creates ``MARKER`` beside it: tests assert the marker never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as st_save

from explorer.checkpoint import build_metadata, checkpoint_bytes
from explorer.checkpoint_header import META_KEY
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


def _meta_only(kind: str, config: dict, latent_dim: int = 2, **fields) -> bytes:
    """A safetensors file with our metadata and no tensors: a few hundred bytes."""
    meta = {
        "model": kind,
        "config": {**config, "latent_dim": latent_dim},
        "latent_dim": latent_dim,
        "dataset": "mnist",
        "split": "s",
        "seed": 0,
        "epochs": 0,
        "history": [],
        "test_metrics": {},
        "versions": {},
        "created": "now",
        **fields,
    }
    return _with_header({"__metadata__": {META_KEY: json.dumps(meta)}}, b"")


JOINT = {"modalities": ["mnist", "label"], "second": "label", "second_shape": [10]}


def memory_bombs(folder: Path) -> dict[str, Path]:
    """Tiny files whose headers describe models of gigabytes to terabytes (issue 17, item 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        # 480 bytes that once took the server to 7.2 GB
        "conv-128px-512ch.safetensors": _meta_only(
            "vae-conv", {"in_shape": [1, 128, 128], "channels": [512, 512], "fc": 1536}
        ),
        "joint-200-layers.safetensors": _meta_only("joint-vae", {**JOINT, "hidden": [4096] * 200}),
        "joint-16TB-second.safetensors": _meta_only(
            "joint-vae", {**JOINT, "second": "image", "second_shape": [1, 100_000, 100_000]}
        ),
        "mlp-6x4096-128px.safetensors": _meta_only("vae-mlp", {"in_shape": [1, 128, 128], "hidden": [4096] * 6}),
        "conv-within-caps-too-big.safetensors": _meta_only(
            "vae-conv", {"in_shape": [1, 64, 64], "channels": [512, 512], "fc": 4096}
        ),
    }
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


def parser_crashers(folder: Path) -> dict[str, Path]:
    """Headers that used to crash the parser with TypeError or RecursionError (item 3)."""
    folder.mkdir(parents=True, exist_ok=True)
    _, meta = _good()
    raw_meta = {META_KEY: json.dumps(meta)}
    deep = 200_000
    files = {
        "dtype-list.safetensors": _with_header(
            {"__metadata__": raw_meta, "w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4
        ),
        "dtype-object.safetensors": _with_header(
            {"__metadata__": raw_meta, "w": {"dtype": {"x": 1}, "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4
        ),
        "shape-bools.safetensors": _with_header(
            {"__metadata__": raw_meta, "w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4
        ),
        "deep-header.safetensors": _raw_header(b'{"a":' * deep + b"1" + b"}" * deep),
        "deep-metadata.safetensors": _with_header({"__metadata__": {META_KEY: "[" * deep + "]" * deep}}, b""),
        "deep-config.safetensors": _with_header(
            {"__metadata__": {META_KEY: json.dumps(meta)[:-1] + ', "junk": ' + "[" * deep + "]" * deep + "}"}}, b""
        ),
    }
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


def _raw_header(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def bad_metadata(folder: Path) -> dict[str, Path]:
    """Valid weights with metadata that is wrong or dangerous (item 4). Values: name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    model, meta = _good()
    good = checkpoint_bytes(model, meta)
    files = {
        "dataset-unknown.safetensors": _swap_meta(good, dataset="no-such-dataset"),
        "dataset-number.safetensors": _swap_meta(good, dataset=5),
        "history-numbers.safetensors": _swap_meta(good, history=[1, 2, 3]),
        "metrics-strings.safetensors": _swap_meta(good, test_metrics={"elbo": "abc"}),
        "seed-negative.safetensors": _swap_meta(good, seed=-1),
        "versions-list.safetensors": _swap_meta(good, versions=[1]),
    }
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


def mismatched_with_dataset(folder: Path) -> dict[str, Path]:
    """Checkpoints whose weights match their config but not the dataset they name, or name a server path."""
    folder.mkdir(parents=True, exist_ok=True)
    small = make_model("vae-mlp", {"latent_dim": 2, "in_shape": [1, 8, 8]}, 0)
    cvae3 = make_model("cvae-mlp", {"latent_dim": 2, "n_classes": 3}, 0)
    mlp = make_model("vae-mlp", {"latent_dim": 2}, 0)
    npz = folder / "server-data.npz"
    np.savez(npz, images=np.zeros((4, 28, 28), np.uint8))
    files = {
        "in-shape-vs-mnist.safetensors": checkpoint_bytes(
            small, build_metadata(small, dataset="mnist", split="s", seed=0, epochs=0)
        ),
        "cvae-3-classes.safetensors": checkpoint_bytes(
            cvae3, build_metadata(cvae3, dataset="mnist", split="s", seed=0, epochs=0)
        ),
        "server-path-dataset.safetensors": checkpoint_bytes(
            mlp, build_metadata(mlp, dataset=str(npz), split="s", seed=0, epochs=0)
        ),
    }
    out = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


def npz_bombs(folder: Path) -> dict[str, Path]:
    """.npz files that declare or inflate to far more than the loader's cap (item 5)."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    out = {}

    def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
        return buf.getvalue()

    # ~300 bytes declaring 10^12 float64 values (8 TB)
    path = folder / "declares-8TB.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images.npy", npy_header((10**6, 1000, 1000)))
    out["declares-8TB"] = path
    path = folder / "declares-63GB-28px.npz"  # sides that pass, a count that does not
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images.npy", npy_header((10**7, 28, 28)))
    out["declares-63GB-28px"] = path
    # a few MB of deflate that inflates to 70M float64 zeros (560 MB), over the 64M-value cap
    path = folder / "deflate-70M-float64.npz"
    n, side = 89_000, 28  # 69.8M values
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("images.npy", "w", force_zip64=True) as f:
        f.write(npy_header((n, side, side)))
        zeros = bytes(8 * 784 * 1000)
        for _ in range(n // 1000):
            f.write(zeros)
    out["deflate-70M-float64"] = path
    # labels that need pickle, beside fine images
    path = folder / "labels-object.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images.npy", npy_header((4, 28, 28), "|u1") + bytes(4 * 784))
        zf.writestr("labels.npy", npy_header((4,), "|O") + b"\x80\x04N.")
    out["labels-object"] = path
    return out
