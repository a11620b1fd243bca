"""Worker-process jobs: results, failures, dead workers, stop requests and the queue."""

from __future__ import annotations

import os
import signal
import time

import pytest

from explorer import jobs
from explorer.analysis.projection import ProjectionParams, cache_key, load_cached
from explorer.catalog import shipped_dir
from explorer.jobs import JobRunner

Z2 = shipped_dir() / "mnist-vae-mlp-z2.safetensors"


@pytest.fixture
def runner(tmp_path):
    return JobRunner(tmp_path / "jobs", max_running=1)


def _params(**kw):
    return {"checkpoint": str(Z2), "dataset": "mnist", "projection": ProjectionParams(**kw).to_dict()}


def test_projection_job_runs_in_a_worker_and_caches(runner):
    job = runner.submit("projection", _params(method="pca", limit=300))
    st = runner.wait(job, timeout=120)
    assert st.state == "done" and st.progress == 1.0, st
    assert st.pid and st.pid != os.getpid()
    from explorer.checkpoint import content_hash

    key = cache_key(content_hash(Z2.read_bytes()), "mnist", ProjectionParams(method="pca", limit=300))
    assert load_cached(key) is not None


def test_failure_is_reported_with_its_reason(runner):
    job = runner.submit("projection", {**_params(method="pca"), "dataset": "no-such-dataset"})
    st = runner.wait(job, timeout=120)
    assert st.state == "failed" and "unknown dataset" in st.error


def test_a_killed_worker_shows_as_failed(runner, monkeypatch):
    job = runner.submit("projection", _params(method="tsne", limit=1000, n_iter=750))
    deadline = time.monotonic() + 60
    while (st := runner.status(job)).state != "running" or not st.pid:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(st.pid, signal.SIGKILL)
    st = runner.wait(job, timeout=30)
    assert st.state == "failed" and "died" in st.error


def test_queue_positions_and_stop(runner):
    a = runner.submit("projection", _params(method="tsne", limit=1000, n_iter=750, seed=1))
    b = runner.submit("projection", _params(method="pca", limit=100, seed=2))
    assert runner.status(b).state == "queued" and runner.status(b).queue_position == 1
    runner.stop(a)
    assert runner.wait(a, timeout=60).state == "stopped"
    assert runner.wait(b, timeout=60).state == "done"


def test_same_id_is_not_started_twice(runner):
    a = runner.submit("projection", _params(method="pca", limit=100, seed=3), job_id="same")
    b = runner.submit("projection", _params(method="pca", limit=100, seed=3), job_id="same")
    assert a == b == "same"
    assert runner.wait(a, timeout=60).state == "done"


def test_restart_marks_orphaned_jobs_failed(tmp_path):
    d = tmp_path / "jobs" / "orphan"
    d.mkdir(parents=True)
    jobs.Reporter(d, jobs.JobStatus("orphan", "projection", "running", pid=2**22 + 17))._write()
    st = JobRunner(tmp_path / "jobs").status("orphan")
    assert st.state == "failed" and "interrupted" in st.error


def test_interactive_jobs_go_ahead_of_background_ones(tmp_path):
    runner = JobRunner(tmp_path / "jobs", max_running=1)
    busy = runner.submit("projection", _params(method="tsne", limit=1000, n_iter=750, seed=4))
    warm = runner.submit("projection", _params(method="pca", limit=100, seed=5), background=True)
    user = runner.submit("projection", _params(method="pca", limit=100, seed=6))
    assert runner.status(user).queue_position == 1 and runner.status(warm).queue_position == 2
    runner.stop(busy)
    for job in (busy, user, warm):
        runner.wait(job, timeout=60)


def test_train_job_writes_snapshots_and_a_checkpoint(runner):
    import json

    import numpy as np

    from explorer.catalog import runs_dir
    from explorer.checkpoint import load_checkpoint
    from explorer.training.pipeline import RunSpec
    from explorer.training.train import TrainSettings
    from explorer.training.trainjob import spec_to_dict

    spec = RunSpec(
        model="vae-mlp", dataset="digits", config={"latent_dim": 3}, settings=TrainSettings(epochs=2, batch_size=64)
    )
    job = runner.submit("train", {"spec": spec_to_dict(spec), "name": "job-test"})
    st = runner.wait(job, timeout=120)
    assert st.state == "done", st.error
    d = runner.job_dir(job)
    snap = np.load(d / "epoch_002.npz")
    assert snap["embedding"].shape == (360, 2) and snap["recons"].shape == (8, 1, 8, 8)
    curves = json.loads((d / "curves.json").read_text())
    assert len(curves["step"]) == len(curves["total"]) == 2 * 23
    model, meta = load_checkpoint(runs_dir() / "job-test.safetensors")
    assert (
        meta["epochs"] == 2 and meta["name"] == "job-test" and st.extra["checkpoint"].endswith("job-test.safetensors")
    )


def test_background_jobs_leave_a_slot_for_interactive_ones(tmp_path):
    runner = JobRunner(tmp_path / "jobs", max_running=2)
    warm = [
        runner.submit("projection", _params(method="tsne", limit=1000, n_iter=750, seed=s), background=True)
        for s in (7, 8)
    ]
    assert (
        runner.status(warm[0]).queue_position is None and runner.status(warm[1]).queue_position == 1
    )  # one slot kept free
    user = runner.submit("projection", _params(method="pca", limit=100, seed=9))
    assert runner.status(user).queue_position is None  # started at once in the free slot
    for j in (*warm, user):
        runner.stop(j)
    for j in (*warm, user):
        runner.wait(j, timeout=60)


def test_queued_jobs_start_without_anyone_polling(runner):
    """A queued job starts when a slot frees even if no page asks for its status meanwhile."""
    a = runner.submit("projection", _params(method="pca", limit=100, seed=11))
    b = runner.submit("projection", _params(method="pca", limit=100, seed=12))
    deadline = time.monotonic() + 120
    while not all((s := jobs.read_status(runner.job_dir(j))) and s.state == "done" for j in (a, b)):
        assert time.monotonic() < deadline, [jobs.read_status(runner.job_dir(j)) for j in (a, b)]
        time.sleep(0.2)  # reads the status files only: nothing here pumps the runner
    time.sleep(1.5)
    assert runner._supervisor is None  # the supervising thread ends once nothing waits or runs
