"""Jobs on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

The workers get their own EXPLORER_HOME, so whatever the app finds on its disk came back
through Dask. Only the first worker declares the ``train`` resource: one training at a time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.analysis.projection import ProjectionParams, cache_dir, cache_key, load_cached
from explorer.catalog import runs_dir, shipped_dir
from explorer.checkpoint import content_hash, load_checkpoint
from explorer.jobs import JobRunner, read_status
from explorer.training.pipeline import RunSpec
from explorer.training.train import TrainSettings
from explorer.training.trainjob import spec_to_dict

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).parent / "dask")
Z2 = shipped_dir() / "mnist-vae-mlp-z2.safetensors"
SLOW_TSNE = {"method": "tsne", "limit": 500, "n_iter": 2000}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(cond, timeout: float = 240, what: str = ""):
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return value


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    """(scheduler address, worker home) for a scheduler and two workers started as subprocesses.

    Their resources: ("train=1", "other=1"), or what an indirect parametrization passes.
    """
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    worker_home = tmp_path_factory.mktemp("worker-home")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EXPLORER_HOME": str(worker_home),
        "EXPLORER_DEVICE": "cpu",
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    }
    common = ["--host", "127.0.0.1", "--no-dashboard"]
    procs = [subprocess.Popen([DASK, "scheduler", "--port", str(port), *common], env=env, stderr=subprocess.DEVNULL)]
    for i, res in enumerate(getattr(request, "param", ("train=1", "other=1"))):
        procs.append(
            subprocess.Popen(
                [
                    DASK,
                    "worker",
                    addr,
                    "--nthreads",
                    "1",
                    "--name",
                    f"w{i}",
                    "--resources",
                    res,
                    "--local-directory",
                    str(worker_home / f"w{i}"),
                    *common,
                ],
                env=env,
                stderr=subprocess.DEVNULL,
            )
        )
    from distributed import Client

    client = Client(addr, timeout=60, set_as_default=False)
    client.wait_for_workers(2, timeout=180)
    client.close()
    yield addr, worker_home
    from explorer.cluster import shutdown

    shutdown()  # the runners' clients, before their scheduler goes
    for p in reversed(procs):
        p.send_signal(signal.SIGINT)
    for p in reversed(procs):
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture
def runner(cluster):
    return JobRunner(address=cluster[0])


def _map(**kw):
    return {"checkpoint": str(Z2), "dataset": "mnist", "projection": ProjectionParams(**kw).to_dict()}


def _train(epochs: int, seed: int = 0) -> dict:
    spec = RunSpec("vae-mlp", "digits", {"latent_dim": 2}, TrainSettings(epochs=epochs, batch_size=64, seed=seed))
    return {"spec": spec_to_dict(spec), "name": f"dask-{epochs}-{seed}"}


def test_tsne_job_streams_progress_and_its_map_comes_back(runner, cluster):
    job = runner.submit("projection", _map(method="tsne", limit=300, n_iter=100))
    seen = []
    while (st := runner.status(job)).active:
        seen.append(st.progress)
        time.sleep(0.3)
    assert st.state == "done", st.error
    assert any(0 < f < 1 for f in seen)  # progress arrived while it ran
    assert (runner.job_dir(job) / "partial.npy").is_file()  # a layout mid-way, mirrored from the scheduler
    key = cache_key(content_hash(Z2.read_bytes()), "mnist", ProjectionParams(method="tsne", limit=300, n_iter=100))
    assert load_cached(key).embedding.shape == (300, 2)
    assert st.worker and st.pid != os.getpid()
    assert not list(cluster[1].rglob(f"{key}*")), "the worker must not keep the map on its own disk"


def test_stop_a_running_tsne(runner):
    job = runner.submit("projection", _map(**SLOW_TSNE, seed=1))
    _until(lambda: (s := runner.status(job)).state == "running" and s.progress > 0.1, what="t-SNE iterations")
    runner.stop(job)
    st = runner.wait(job, timeout=120)
    assert st.state == "stopped"
    key = cache_key(content_hash(Z2.read_bytes()), "mnist", ProjectionParams(**SLOW_TSNE, seed=1))
    assert load_cached(key) is None and not (cache_dir() / f"{key}.npz").exists()


def test_training_job_returns_its_checkpoint_and_snapshots(runner, cluster):
    job = runner.submit("train", _train(2))
    st = runner.wait(job, timeout=300)
    assert st.state == "done", st.error
    d = runner.job_dir(job)
    assert sorted(p.name for p in d.glob("epoch_*.npz")) == ["epoch_001.npz", "epoch_002.npz"]
    curves = json.loads((d / "curves.json").read_text())
    assert len(curves["step"]) == len(curves["total"]) == 2 * 23
    assert Path(st.extra["checkpoint"]) == runs_dir() / "dask-2-0.safetensors"
    _, meta = load_checkpoint(st.extra["checkpoint"])
    assert meta["epochs"] == 2 and meta["name"] == "dask-2-0"
    assert not list(cluster[1].rglob("*.safetensors")), "the checkpoint lives on the app's disk only"


def test_one_training_at_a_time_and_stop_keeps_the_last_epoch(runner):
    """Only one worker declares ``train``: the second run waits, whichever worker is free."""
    a, b = runner.submit("train", _train(200, seed=1)), runner.submit("train", _train(1, seed=2))
    _until(lambda: (runner.status(a).extra or {}).get("epochs_done", 0) >= 1, what="an epoch")
    for _ in range(5):
        assert runner.status(b).state == "queued" and runner.status(b).queue_position == 1
        time.sleep(0.3)
    runner.stop(a)
    st = runner.wait(a, timeout=120)
    assert st.state == "stopped" and st.extra["stopped_early"] and Path(st.extra["checkpoint"]).is_file()
    assert runner.wait(b, timeout=300).state == "done"


def test_interactive_work_goes_ahead_of_warm_ups(runner):
    """Three trainings for the one ``train`` slot: the interactive one runs before the earlier warm-up."""
    busy = runner.submit("train", _train(200, seed=3))
    _until(lambda: runner.status(busy).state == "running", what="the first run")
    warm = runner.submit("train", _train(1, seed=4), background=True)
    user = runner.submit("train", _train(1, seed=5))
    assert runner.status(user).queue_position == 1 and runner.status(warm).queue_position == 2
    runner.stop(busy)
    st_user, st_warm = runner.wait(user, timeout=300), runner.wait(warm, timeout=300)
    assert st_user.state == st_warm.state == "done" and st_user.started < st_warm.started
    runner.wait(busy, timeout=120)


def test_two_app_replicas_share_jobs(cluster):
    """Two clients (as two app servers would hold), one EXPLORER_HOME: see, stop, compute once."""
    from distributed import Client

    a = JobRunner(address=cluster[0], client=Client(cluster[0], set_as_default=False))
    b = JobRunner(address=cluster[0], client=Client(cluster[0], set_as_default=False))
    job = a.submit("train", _train(200, seed=7))
    assert job in [s.id for s in b.jobs("train")]
    _until(lambda: b.status(job).state == "running", what="the run to start")
    b.stop(job)
    assert a.wait(job, timeout=120).state == "stopped"

    m = a.submit("projection", _map(method="tsne", limit=300, n_iter=100, seed=8), job_id="map-shared")
    first = _until(lambda: (s := b.status(m)).state == "running" and s)
    assert b.submit("projection", _map(method="tsne", limit=300, n_iter=100, seed=8), job_id="map-shared") == m
    st = b.wait(m, timeout=180)
    assert st.state == "done" and st.started == first.started and st.created == first.created  # not started again
    assert a.status(m).state == "done" and read_status(a.job_dir(m)).state == "done"
    a.client.close()
    b.client.close()


def test_cli_embed_runs_on_the_cluster(cluster, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "map.npz"
    cmd = [
        sys.executable,
        "-m",
        "explorer",
        "embed",
        "mnist-vae-mlp-z2",
        "--method",
        "pca",
        "--limit",
        "200",
        "--seed",
        "9",
        "--scheduler",
        cluster[0],
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["cached"] is False and line["n"] == 200 and out.is_file()
    specs = {
        d: json.loads((d / "spec.json").read_text()) for d in (Path(os.environ["EXPLORER_HOME"]) / "jobs").iterdir()
    }
    mine = [d for d, spec in specs.items() if spec["params"]["projection"]["seed"] == 9]
    assert len(mine) == 1  # it went through the job API, not computed in the CLI's process
    st = read_status(mine[0])
    assert st.state == "done" and st.worker.startswith("tcp://127.0.0.1:")


def test_cli_train_runs_on_the_cluster(cluster, tmp_path):
    out = tmp_path / "cli.safetensors"
    cmd = [
        sys.executable,
        "-m",
        "explorer",
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--scheduler",
        cluster[0],
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["checkpoint"] == str(out)
    _, meta = load_checkpoint(out)
    assert meta["epochs"] == 1 and meta["dataset"] == "digits"
    assert not list(runs_dir().glob("cli-*.safetensors"))  # moved to --out, not left behind


def test_a_killed_worker_shows_as_failed(runner):
    job = runner.submit("projection", _map(**SLOW_TSNE, seed=10))
    st = _until(lambda: (s := runner.status(job)).state == "running" and s.pid and s, what="the job to start")
    os.kill(st.pid, signal.SIGKILL)
    st = runner.wait(job, timeout=120)
    assert st.state == "failed" and "died" in st.error
