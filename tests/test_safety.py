"""Hostile and corrupt checkpoints and datasets are refused with a clear message; no code runs."""

from __future__ import annotations

import pytest

from explorer.catalog import save_upload
from explorer.checkpoint import load_checkpoint
from explorer.checkpoint_header import read_metadata
from explorer.data import load_npz
from explorer.errors import CheckpointError, DatasetError
from tests.bad_files import (
    MARKER,
    bad_checkpoints,
    bad_datasets,
    bad_metadata,
    memory_bombs,
    mismatched_with_dataset,
    npz_bombs,
    parser_crashers,
)


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


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and len(msg) < 400, msg
    return msg


_MEMORY_PROBE = r"""
import json, resource, sys
from pathlib import Path
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
from explorer.catalog import save_upload
from explorer.checkpoint import load_checkpoint, model_from_bytes
from explorer.data import load_npz
from explorer.errors import ExplorerError
import torch
vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + 3 * 2**30, hard))  # a regression fails here, not the machine
load_checkpoint(sys.argv[1])  # warm up: one good load, so lazy imports and caches are counted before
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = []
for p in sys.argv[2:]:
    path = Path(p)
    for call in ((lambda: load_npz(path)) if path.suffix == ".npz" else (lambda: load_checkpoint(path)),
                 (lambda: None) if path.suffix == ".npz" else (lambda: save_upload(path.name, path.read_bytes()))):
        try:
            call()
        except ExplorerError as exc:
            refused.append(str(exc))
        except MemoryError:
            refused.append("MEMORY")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_mb": (after - before) / 1024, "refused": refused}))
"""


@pytest.mark.slow
def test_memory_bombs_refused_without_growing_memory(tmp_path):
    """Every bomb is refused by its header, and the process grows by far less than 300 MB doing it."""
    import json
    import os
    import subprocess
    import sys

    from explorer.catalog import shipped_dir

    bombs = [*memory_bombs(tmp_path / "ck").values(), *npz_bombs(tmp_path / "npz").values()]
    env = {**os.environ, "EXPLORER_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(shipped_dir() / "mnist-vae-mlp-z2.safetensors"), *map(str, bombs)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    ckpt_bombs = sum(p.suffix != ".npz" for p in bombs)
    assert len(report["refused"]) == 2 * ckpt_bombs + (len(bombs) - ckpt_bombs)
    assert "MEMORY" not in report["refused"], report["refused"]
    assert report["grew_mb"] < 300, report


def test_memory_bombs_name_the_limit(tmp_path):
    for name, path in memory_bombs(tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        msg = _one_line(info.value)
        assert any(word in msg for word in ("limit", "supported", "limited", "too large")), (name, msg)


def test_config_caps_are_checked_for_every_model_kind(kind):
    from explorer.config import MAX_TUPLE_LEN, MAX_WIDTH
    from explorer.errors import ConfigError
    from explorer.models import get_model_class
    from tests.helpers import JOINT_LABEL, needs_partner

    cls = get_model_class(kind).config_cls
    base = dict(JOINT_LABEL) if needs_partner(kind) else {}
    with pytest.raises(ConfigError, match="shape"):
        cls.from_dict({**base, "in_shape": [1, 4096, 4096]})
    list_fields = [f for f, v in cls().to_dict().items() if isinstance(v, list) and v and isinstance(v[0], int)]
    for field in list_fields:
        with pytest.raises(ConfigError, match=str(MAX_TUPLE_LEN)):
            cls.from_dict({**base, field: [4] * (MAX_TUPLE_LEN + 1)})
        with pytest.raises(ConfigError, match=str(MAX_WIDTH)):
            cls.from_dict({**base, field: [MAX_WIDTH + 1] * len(cls().to_dict()[field])})


def test_parser_crashes_become_one_line_errors(tmp_path):
    from explorer.checkpoint_header import read_metadata

    for name, path in parser_crashers(tmp_path).items():
        for reader in (read_metadata, load_checkpoint):
            with pytest.raises(CheckpointError) as info:
                reader(path)
            _one_line(info.value)
        with pytest.raises(CheckpointError):
            save_upload(name, path.read_bytes())


def test_every_metadata_field_is_validated(tmp_path):
    for name, path in bad_metadata(tmp_path).items():
        with pytest.raises(CheckpointError, match="metadata field") as info:
            load_checkpoint(path)
        _one_line(info.value)
        with pytest.raises(CheckpointError):
            save_upload(name, path.read_bytes())


def test_metadata_that_disagrees_with_its_dataset_is_refused_on_use(tmp_path):
    from explorer.checkpoint import load_for_use

    files = mismatched_with_dataset(tmp_path)
    with pytest.raises(CheckpointError, match="takes images"):
        load_for_use(files["in-shape-vs-mnist.safetensors"])
    with pytest.raises(CheckpointError, match="3 classes"):
        load_for_use(files["cvae-3-classes.safetensors"])
    for name in ("in-shape-vs-mnist.safetensors", "cvae-3-classes.safetensors"):
        with pytest.raises(CheckpointError, match="its dataset mnist"):
            save_upload(name, files[name].read_bytes())


def test_an_upload_never_names_a_server_path(tmp_path):
    from explorer.catalog import scan_checkpoints, uploads_dir

    path = mismatched_with_dataset(tmp_path)["server-path-dataset.safetensors"]
    load_checkpoint(path)  # fine as a local file the user trained on their own .npz
    with pytest.raises(CheckpointError, match="built-in dataset"):
        save_upload(path.name, path.read_bytes())
    # and one placed in the uploads folder by hand is listed as broken, not offered
    uploads_dir().mkdir(parents=True, exist_ok=True)
    (uploads_dir() / path.name).write_bytes(path.read_bytes())
    good, broken = scan_checkpoints()
    assert path.stem not in [e.name for e in good]
    assert [b.name for b in broken] == [path.stem] and "built-in dataset" in broken[0].error


def test_a_bad_stored_file_is_listed_as_broken_not_fatal(tmp_path):
    from explorer.catalog import runs_dir, scan_checkpoints

    runs_dir().mkdir(parents=True, exist_ok=True)
    for name, path in {**bad_metadata(tmp_path), **parser_crashers(tmp_path)}.items():
        (runs_dir() / name).write_bytes(path.read_bytes())
    good, broken = scan_checkpoints()
    assert len(broken) == len(list(runs_dir().glob("*.safetensors"))) and all(b.source == "trained" for b in broken)
    assert all(e.source == "shipped" for e in good) and good


def test_npz_bombs_refused_before_decompressing(tmp_path):
    from explorer.data.npz import MAX_VALUES

    bombs = npz_bombs(tmp_path)
    for name in ("declares-63GB-28px", "deflate-70M-float64"):
        with pytest.raises(DatasetError, match=f"{MAX_VALUES:,}") as info:
            load_npz(bombs[name])
        _one_line(info.value)
    with pytest.raises(DatasetError, match="sides of 4-128 px"):
        load_npz(bombs["declares-8TB"])
    with pytest.raises(DatasetError, match="pickle"):
        load_npz(bombs["labels-object"])


def test_npz_float64_streams_to_float32(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.random((50, 28, 28))  # float64
    np.savez_compressed(tmp_path / "f64.npz", images=images, labels=np.arange(50) % 10)
    ds = load_npz(tmp_path / "f64.npz")
    assert ds.train.images.dtype == __import__("torch").float32
    got = np.concatenate([ds.train.images.numpy(), ds.test.images.numpy()]).reshape(50, -1)
    assert np.allclose(np.sort(got.sum(1)), np.sort(images.astype(np.float32).reshape(50, -1).sum(1)), atol=1e-3)
