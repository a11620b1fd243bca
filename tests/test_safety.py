"""Hostile and corrupt checkpoints and datasets are refused with a clear message; no code runs."""

from __future__ import annotations

import pytest

from explorer.checkpoint import load_checkpoint, read_metadata
from explorer.data import load_npz
from explorer.errors import CheckpointError, DatasetError
from explorer.catalog import save_upload
from tests.bad_files import MARKER, bad_checkpoints, bad_datasets


@pytest.fixture(scope="module")
def bad_ckpts(tmp_path_factory):
    return bad_checkpoints(tmp_path_factory.mktemp("bad_ckpt"))


@pytest.fixture(scope="module")
def bad_npz(tmp_path_factory):
    return bad_datasets(tmp_path_factory.mktemp("bad_npz"))


def test_corpus_is_large_enough(bad_ckpts, bad_npz):
    assert len(bad_ckpts) >= 20 and len(bad_npz) >= 10


def test_every_bad_checkpoint_is_refused(bad_ckpts):
    for name, path in bad_ckpts.items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert msg and "\n" not in msg and len(msg) < 400, (name, msg)
    assert not (next(iter(bad_ckpts.values())).parent / MARKER).exists(), "a pickle payload ran"


def test_pickles_named_like_checkpoints_say_pickle(bad_ckpts):
    for ext in ("pt", "pth", "ckpt", "safetensors"):
        with pytest.raises(CheckpointError, match="pickle"):
            read_metadata(bad_ckpts[f"pickle-code.{ext}"])


def test_upload_path_refuses_the_same_files(bad_ckpts, tmp_path):
    for name, path in bad_ckpts.items():
        if path.is_dir():
            continue
        with pytest.raises(CheckpointError):
            save_upload(name, path.read_bytes())
    assert not (next(iter(bad_ckpts.values())).parent / MARKER).exists()


def test_every_bad_dataset_is_refused(bad_npz):
    for name, path in bad_npz.items():
        with pytest.raises(DatasetError) as info:
            load_npz(path)
        assert str(info.value), name


def test_float_255_message_says_what_to_do(bad_npz):
    with pytest.raises(DatasetError, match="divide by 255"):
        load_npz(bad_npz["float-0-255"])


@pytest.mark.parametrize("length", [0x6428, 0x7D71 + 0x10000, 0x4B50 + 0x30000])  # b"(d", b"q}", b"PK" low bytes
def test_header_length_bytes_never_mistaken_for_pickle(length, tmp_path):
    """A valid file whose 8-byte header length happens to start like a pickle still loads."""
    import json
    import struct

    from explorer.checkpoint import build_metadata, checkpoint_bytes
    from explorer.training.train import make_model

    model = make_model("vae-mlp", {"latent_dim": 2}, 0)
    data = checkpoint_bytes(model, build_metadata(model, dataset="mnist", split="s", seed=0, epochs=0))
    n = struct.unpack("<Q", data[:8])[0]
    header = json.dumps(json.loads(data[8 : 8 + n])).encode()
    assert len(header) < length
    padded = struct.pack("<Q", length) + header + b" " * (length - len(header)) + data[8 + n :]
    (tmp_path / "m.safetensors").write_bytes(padded)
    loaded, _ = load_checkpoint(tmp_path / "m.safetensors")
    assert read_metadata(tmp_path / "m.safetensors")["model"] == "vae-mlp"
