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
