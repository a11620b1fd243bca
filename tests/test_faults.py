"""Faults: a full disk or an interrupted save never corrupts a checkpoint; restarts list what was saved."""

from __future__ import annotations

import errno
import os

import pytest

from explorer.catalog import list_checkpoints, runs_dir
from explorer.checkpoint import CheckpointError, build_metadata, load_checkpoint, save_checkpoint
from explorer.training.train import make_model


def _model_and_meta(seed: int):
    m = make_model("vae-mlp", {"latent_dim": 2}, seed)
    return m, build_metadata(m, dataset="mnist", split="s", seed=seed, epochs=1)


class _FailingFile:
    def __init__(self, real, exc):
        self.real, self.exc = real, exc

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.real.close()

    def write(self, data):
        self.real.write(data[: len(data) // 3])  # part of it lands, then the failure
        raise self.exc

    def flush(self):
        pass

    def fileno(self):
        return self.real.fileno()


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch, exc):
    path = tmp_path / "m.safetensors"
    old_model, old_meta = _model_and_meta(0)
    save_checkpoint(old_model, path, old_meta)
    before = path.read_bytes()
    new_model, new_meta = _model_and_meta(1)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _FailingFile(real_fdopen(fd, mode), exc))
    with pytest.raises(CheckpointError if isinstance(exc, OSError) else KeyboardInterrupt) as info:
        save_checkpoint(new_model, path, new_meta)
    monkeypatch.undo()
    if isinstance(exc, OSError):
        assert "No space left on device" in str(info.value)
    assert path.read_bytes() == before and load_checkpoint(path)[1]["seed"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"], "no temporary file is left behind"


def test_a_restart_lists_what_was_saved():
    m, meta = _model_and_meta(2)
    save_checkpoint(m, runs_dir() / "saved-before-restart.safetensors", meta)
    (runs_dir() / ".saved-before-restart.safetensors.abc.tmp").write_bytes(b"partial")  # a crash mid-write
    names = [e.name for e in list_checkpoints() if e.source == "trained"]
    assert names == ["saved-before-restart"]


def test_two_runs_given_one_name_keep_both_files(tmp_path):
    """Two saves racing for one name (two Start clicks in the same second) both survive."""
    import threading

    path = runs_dir() / "vae-mlp-z2-mnist-1123-002222.safetensors"
    models = [_model_and_meta(seed) for seed in (0, 7)]
    written: list = []
    barrier = threading.Barrier(2)

    def save(m, meta):
        barrier.wait()
        written.append(save_checkpoint(m, path, meta, exclusive=True))

    threads = [threading.Thread(target=save, args=mm) for mm in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(written)) == 2
    assert sorted(load_checkpoint(p)[1]["seed"] for p in written) == [0, 7]
    assert not list(runs_dir().glob(".*.tmp"))


@pytest.mark.slow
def test_train_job_outputs_never_overwrite(monkeypatch):
    """The pipeline's exclusive save: the same name twice gives two files, and says which."""
    from explorer.training.pipeline import RunSpec, train_run
    from explorer.training.train import TrainSettings

    out = runs_dir() / "same-second.safetensors"
    saved = []
    for seed in (0, 7):
        spec = RunSpec("vae-mlp", "digits", {"latent_dim": 2}, TrainSettings(epochs=1, seed=seed))
        *_, last = train_run(spec, out, exclusive=True)
        saved.append(last.checkpoint)
    assert saved[0] != saved[1] and all(os.path.isfile(p) for p in saved)
    assert [load_checkpoint(p)[1]["seed"] for p in saved] == [0, 7]


@pytest.mark.slow
def test_divergence_saves_the_last_good_epoch(monkeypatch, tmp_path):
    """A NaN loss in epoch 2: epoch 1's weights are saved, and the message says where."""
    from explorer.errors import TrainingDiverged
    from explorer.training import pipeline
    from explorer.training.pipeline import RunSpec, train_run
    from explorer.training.train import TrainSettings

    real_make = pipeline.make_model

    def flaky_model(kind, config, seed):
        model = real_make(kind, config, seed)
        original, calls = model.loss, {"n": 0}

        def loss(x, y=None, generator=None):
            calls["n"] += 1
            out = original(x, y, generator)
            if calls["n"] > 14:  # digits: 12 steps per epoch at batch 128
                out["total"] = out["total"] * float("nan")
            return out

        model.loss = loss
        return model

    monkeypatch.setattr(pipeline, "make_model", flaky_model)
    out = tmp_path / "diverged.safetensors"
    spec = RunSpec("vae-mlp", "digits", {"latent_dim": 2}, TrainSettings(epochs=3))
    events = []
    with pytest.raises(TrainingDiverged, match="diverged.safetensors") as info:
        for p in train_run(spec, out):
            events.append(p.event)
    assert "last good epoch (1)" in str(info.value) and events[-1] == "saved"
    model, meta = load_checkpoint(out)
    assert meta["epochs"] == 1 and meta["stopped_early"] is True


def test_divergence_before_any_epoch_promises_nothing(monkeypatch, tmp_path):
    from explorer.errors import TrainingDiverged
    from explorer.training import pipeline
    from explorer.training.pipeline import RunSpec, train_run
    from explorer.training.train import TrainSettings

    real_make = pipeline.make_model

    def nan_model(kind, config, seed):
        model = real_make(kind, config, seed)
        original = model.loss
        model.loss = lambda x, y=None, generator=None: {
            **original(x, y, generator),
            "total": torch.tensor(float("nan")),
        }
        return model

    import torch

    monkeypatch.setattr(pipeline, "make_model", nan_model)
    out = tmp_path / "never.safetensors"
    with pytest.raises(TrainingDiverged, match="nothing was saved"):
        list(train_run(RunSpec("vae-mlp", "digits", {"latent_dim": 2}, TrainSettings(epochs=2)), out))
    assert not out.exists()


def test_upload_to_a_full_disk_is_one_line_and_leaves_nothing(monkeypatch):
    from explorer.catalog import save_upload, uploads_dir
    from explorer.checkpoint import checkpoint_bytes

    m, meta = _model_and_meta(3)
    data = checkpoint_bytes(m, meta)
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        os,
        "fdopen",
        lambda fd, mode: _FailingFile(real_fdopen(fd, mode), OSError(errno.ENOSPC, "No space left on device")),
    )
    with pytest.raises(CheckpointError, match="No space left on device") as info:
        save_upload("mine.safetensors", data)
    monkeypatch.undo()
    assert "\n" not in str(info.value)
    assert list(uploads_dir().iterdir()) == [] if uploads_dir().is_dir() else True


def test_unwritable_folder_is_a_storage_error(tmp_path):
    from explorer.errors import ExplorerError
    from explorer.storage import atomic_write_bytes

    with pytest.raises(ExplorerError, match="cannot write /proc/x.npz") as info:
        atomic_write_bytes("/proc/x.npz", b"data")
    assert isinstance(info.value, OSError) and "\n" not in str(info.value)


def test_stale_tmp_files_are_swept_fresh_ones_kept():
    import time

    from explorer.storage import STALE_TMP_SECONDS, home_dir, sweep_stale_tmp

    runs_dir().mkdir(parents=True, exist_ok=True)
    stale, fresh = runs_dir() / ".killed.safetensors.ab12.tmp", runs_dir() / ".writing.safetensors.cd34.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    old = time.time() - STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    assert sweep_stale_tmp(home_dir()) == [stale]
    assert not stale.exists() and fresh.exists()


def test_uploads_dedupe_cap_delete_and_owners(monkeypatch):
    from explorer.catalog import delete_upload, save_upload, upload_owners, uploads_dir
    from explorer.checkpoint import checkpoint_bytes
    from explorer.errors import ExplorerError

    data = [checkpoint_bytes(*_model_and_meta(seed)) for seed in (4, 5)]
    a = save_upload("first.safetensors", data[0], owner="alice")
    b = save_upload("same-bytes-other-name.safetensors", data[0], owner="bob")
    assert a == b and len(list(uploads_dir().glob("*.safetensors"))) == 1
    path = uploads_dir() / f"{a}.safetensors"
    assert upload_owners(path) == ["alice", "bob"]
    monkeypatch.setenv("EXPLORER_UPLOADS_MB", str(1.5 * len(data[0]) / 2**20))
    with pytest.raises(CheckpointError, match="uploads folder is full"):
        save_upload("second.safetensors", data[1], owner="alice")
    with pytest.raises(ExplorerError, match="not one of your uploads"):
        delete_upload(a, "mallory")
    delete_upload(a, "alice")
    assert path.exists() and upload_owners(path) == ["bob"]  # bob uploaded it too
    delete_upload(a, "bob")
    assert not path.exists() and list(uploads_dir().iterdir()) == []
    assert save_upload("second.safetensors", data[1], owner="alice")  # room again


def test_bad_device_falls_back_in_the_app_and_is_refused_when_asked(monkeypatch):
    import torch

    from explorer.device import DeviceError, available_devices, check_device, device_problem, pick_device

    monkeypatch.setenv("EXPLORER_DEVICE", "tpu")
    assert pick_device() == pick_device.__globals__["best_device"]()
    assert "tpu" in device_problem() and "cpu" in device_problem()
    with pytest.raises(DeviceError, match="this machine has: cpu"):
        check_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not available"):
            check_device("cuda")
    assert "cpu" in available_devices()


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a GPU")
def test_gpu_device_loads_and_decodes():
    import torch

    from explorer.catalog import resolve
    from explorer.checkpoint import load_checkpoint as load
    from explorer.device import check_device

    dev = check_device("cuda")
    model, _ = load(resolve("mnist-vae-mlp-z2"), dev)
    assert next(model.parameters()).device.type == "cuda"
    assert model.decode(torch.zeros(1, 2, device=dev)).shape == (1, 1, 28, 28)


@pytest.mark.slow
def test_app_survives_broken_files_and_a_bad_device(monkeypatch, tmp_path):
    """A bad stored file is listed, not fatal; a model that disagrees with its dataset is a message; a bad
    $EXPLORER_DEVICE falls back with a warning."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from tests.bad_files import bad_metadata, mismatched_with_dataset

    runs_dir().mkdir(parents=True, exist_ok=True)
    (runs_dir() / "bad-history.safetensors").write_bytes(
        bad_metadata(tmp_path)["history-numbers.safetensors"].read_bytes()
    )
    (runs_dir() / "wrong-shape.safetensors").write_bytes(
        mismatched_with_dataset(tmp_path)["in-shape-vs-mnist.safetensors"].read_bytes()
    )
    monkeypatch.setenv("EXPLORER_DEVICE", "tpu")
    app = str(Path(__file__).resolve().parents[1] / "app.py")
    at = AppTest.from_file(app, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("tpu" in w.value and "cpu" in w.value for w in at.sidebar.warning)
    assert any("bad-history" in c.value and "'history'" in c.value for c in at.sidebar.caption)
    assert "bad-history" not in at.sidebar.selectbox[0].options
    at.sidebar.selectbox[0].select("wrong-shape").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("takes images (1, 8, 8)" in e.value for e in at.error)


def test_users_get_no_tracebacks_or_developer_menu():
    """The server keeps tracebacks in its log; the browser shows a short message and no Deploy/Clear cache menu."""
    from pathlib import Path

    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["client"]["toolbarMode"] == "minimal"
