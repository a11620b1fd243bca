"""Jobs on the app's own LocalCluster: started lazily, workers niced, one training per two cores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from explorer import cluster
from explorer.analysis.projection import ProjectionParams, cache_key, warm_start
from explorer.catalog import shipped_dir
from explorer.checkpoint import content_hash
from explorer.checkpoint_header import read_metadata
from explorer.jobs import FINISH_LEASE, JobRunner, JobStatus, read_status
from explorer.jobstate import NS, owner_name
from explorer.storage import atomic_write_json
from explorer.training.pipeline import RunSpec
from explorer.training.train import TrainSettings
from explorer.training.trainjob import spec_to_dict
from explorer.ui.jobs import run_line

ROOT = Path(__file__).resolve().parents[1]
Z2 = shipped_dir() / "mnist-vae-mlp-z2.safetensors"


def _map(**kw):
    return {"checkpoint": str(Z2), "dataset": "mnist", "projection": ProjectionParams(**kw).to_dict()}


def _train(epochs: int, seed: int) -> dict:
    spec = RunSpec("vae-mlp", "digits", {"latent_dim": 2}, TrainSettings(epochs=epochs, batch_size=64, seed=seed))
    return {"spec": spec_to_dict(spec), "name": f"local-{epochs}-{seed}"}


def test_importing_starts_no_cluster():
    code = (
        "import sys, explorer.jobs, explorer.ui.jobs, explorer.cluster as c; "
        "assert not c._clients and c._cluster is None; assert 'distributed' not in sys.modules, 'imported'"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("cores,trains", [(1, 1), (2, 1), (8, 4)])
def test_local_workers_get_one_training_slot_per_two_cores(cores, trains, monkeypatch):
    monkeypatch.delenv("EXPLORER_MAX_JOBS", raising=False)
    res = cluster.local_worker_resources(cores)
    assert len(res) == max(2, cores) and sum(r.get("train", 0) for r in res) == trains
    assert [bool(r.get("background")) for r in res] == [False] * (len(res) - 1) + [True]


@pytest.fixture(scope="module")
def local():
    """The process's LocalCluster, closed at the end."""
    yield cluster.get_client()
    cluster.shutdown()


@pytest.mark.slow
def test_local_cluster_workers_are_niced_single_threaded_and_end_with_shutdown(local):
    def probe() -> tuple[int, int, int]:
        import torch

        return os.getpid(), os.nice(0), torch.get_num_threads()

    pids = []
    for pid, nice, threads in local.run(probe).values():
        assert pid != os.getpid() and nice >= cluster.WORKER_NICE and threads == 1
        pids.append(pid)
    assert len(pids) == max(2, os.cpu_count() or 2)
    assert cluster.get_client() is local  # one cluster per process


@pytest.mark.slow
def test_a_job_runs_and_a_failure_says_why(local, tmp_path):
    runner = JobRunner(tmp_path / "jobs", client=local)
    ok = runner.submit("projection", _map(method="pca", limit=300), job_id="same")
    assert runner.submit("projection", _map(method="pca", limit=300), job_id="same") == ok  # not started twice
    bad = runner.submit("projection", {**_map(method="pca"), "dataset": "no-such-dataset"})
    st = runner.wait(ok, timeout=240)
    assert st.state == "done" and st.progress == 1.0 and st.pid != os.getpid(), st
    st = runner.wait(bad, timeout=240)
    assert st.state == "failed" and "unknown dataset" in st.error


@pytest.mark.slow
def test_a_second_training_waits_for_the_first(local, tmp_path):
    """On this machine's LocalCluster (<= 3 cores: one ``train`` slot) the second run stays queued."""
    if (os.cpu_count() or 2) > 3:
        pytest.skip("more than one training slot here")
    runner = JobRunner(tmp_path / "jobs", client=local)
    a, b = runner.submit("train", _train(200, 1)), runner.submit("train", _train(1, 2))
    deadline = time.monotonic() + 240
    while (runner.status(a).extra or {}).get("epochs_done", 0) < 1:  # a has surely been running a while
        assert time.monotonic() < deadline
        time.sleep(0.3)
    for _ in range(5):  # and b still waits: the old test passed even if both started
        assert runner.status(a).state == "running" and runner.status(b).state == "queued"
        time.sleep(0.3)
    runner.stop(a)
    assert runner.wait(a, timeout=120).state == "stopped"
    assert runner.wait(b, timeout=240).state == "done"


@pytest.mark.slow
def test_a_job_left_active_by_a_gone_scheduler_shows_as_lost(local, tmp_path):
    d = tmp_path / "jobs" / "orphan"
    atomic_write_json(d / "status.json", JobStatus("orphan", "projection", "running").__dict__)
    runner = JobRunner(tmp_path / "jobs", client=local)
    # the list says so too, not only a direct look (it also lists the shared cluster's live jobs of other tests)
    assert {s.id: s.state for s in runner.jobs()}["orphan"] == "failed"
    st = runner.status("orphan")
    assert st.state == "failed" and st.lost and "no heartbeat" in st.error


FOLLOWER = """
import sys, time
from explorer.jobs import JobRunner
runner = JobRunner()  # its own LocalCluster, as an app server without $EXPLORER_SCHEDULER has
job = runner.submit("projection", {params!r}, job_id="orphan-map")
while runner.status(job).state != "running":
    time.sleep(0.2)
print("running", flush=True)
while True:
    time.sleep(1)  # the runner's watcher thread follows the job
"""


@pytest.mark.slow
def test_a_job_whose_app_process_is_killed_is_lost_then_runs_again(local, monkeypatch):
    """A real app-like process follows a map job on its own cluster; killed, the next reader calls it lost."""
    monkeypatch.setenv("EXPLORER_JOB_LOST_AFTER", "6")
    params = _map(method="tsne", limit=500, n_iter=3000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOWER.format(params=params)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers too, so that killing the group ends them all
    )
    try:
        assert follower.stdout.readline().strip() == "running"
        reader = JobRunner(client=local)  # another process's view: its scheduler does not know the job
        for _ in range(12):  # over the 6 s: alive while its follower beats
            st = reader.status("orphan-map")
            assert st.state == "running" and not st.lost, st
            assert st.owner and st.owner.endswith(f":{follower.pid}")
            time.sleep(1)
    finally:
        os.killpg(follower.pid, signal.SIGKILL)
        follower.wait()
    deadline = time.monotonic() + 60
    while not (st := reader.status("orphan-map")).lost:
        assert time.monotonic() < deadline, st
        time.sleep(0.5)
    assert st.state == "failed" and "no heartbeat" in st.error
    assert not [s for s in reader.jobs() if s.active]  # nor listed as running
    assert reader.restart("orphan-map") == "orphan-map"
    deadline = time.monotonic() + 240
    while (st := reader.status("orphan-map")).state != "running" or st.progress <= 0:
        assert st.state in ("queued", "running") and time.monotonic() < deadline, st
        time.sleep(0.3)
    workers = set(local.scheduler_info(n_workers=-1)["workers"])
    assert st.worker in workers and st.owner.endswith(f":{os.getpid()}")  # runs here now
    reader.stop("orphan-map")
    assert reader.wait("orphan-map", timeout=120).state == "stopped"


@pytest.mark.slow
def test_a_finish_claim_whose_holder_died_is_taken_over(local, tmp_path):
    """One replica finishes a job; if it died holding the claim, another may after the lease."""
    runner = JobRunner(tmp_path / "jobs", client=local)
    assert runner._claim_finish("claimed") and not runner._claim_finish("claimed")
    local.set_metadata([NS, "finisher", "claimed"], time.time() - FINISH_LEASE - 1)  # its holder went silent
    assert runner._claim_finish("claimed") and not runner._claim_finish("claimed")


EXITER = """
import sys, threading, time
from explorer.catalog import DEFAULT_CHECKPOINT, shipped_dir
from explorer.checkpoint import content_hash
from explorer.checkpoint_header import read_metadata
from explorer.jobs import JobRunner
from explorer.ui.jobs import _warm_start

default = shipped_dir() / f"{DEFAULT_CHECKPOINT}.safetensors"
args = (JobRunner().submit, default, read_metadata(default)["dataset"], content_hash(default.read_bytes()))
threading.Thread(target=_warm_start, args=args, name="warm-start", daemon=True).start()  # as job_runner() does
time.sleep(float(sys.argv[1]))  # then exit, while that thread starts the cluster or queues the maps
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [4, 8])
def test_exiting_while_the_warm_start_thread_runs_is_quiet(delay, tmp_path):
    """An app process (or an AppTest of app.py) that ends while the warm-up thread works prints nothing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXPLORER_HOME": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-c", EXITER, str(delay)], env=env, capture_output=True, text=True, timeout=180
    )
    noise = [ln for ln in res.stderr.splitlines() if "No runtime found" not in ln]  # streamlit's, outside a server
    assert res.returncode == 0 and not noise, "\n".join(noise[-30:])


def test_eta_from_the_pace_so_far():
    st = JobStatus("j", "train", "running", progress=0.25, started=100.0, updated=110.0)
    assert st.eta == pytest.approx(30.0)
    assert JobStatus("j", "train", "queued", progress=0.25, started=100.0, updated=110.0).eta is None


@pytest.mark.slow
def test_two_runs_given_one_name_both_land(local, tmp_path, monkeypatch):
    """Two Start clicks in the same second name two runs alike: the app keeps both files, each job its own."""
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path / "home"))
    runner = JobRunner(tmp_path / "jobs", client=local)
    ids = [runner.submit("train", {**_train(1, seed), "name": "same-second"}) for seed in (3, 4)]
    paths = []
    for job_id in ids:
        st = runner.wait(job_id, timeout=300)
        assert st.state == "done", st
        paths.append(Path(st.extra["checkpoint"]))
        assert paths[-1].name in st.message
    assert paths[0] != paths[1] and all(p.is_file() for p in paths)
    assert paths[0].read_bytes() != paths[1].read_bytes()  # seeds 3 and 4: each job's own model


def _panel(job_id: str) -> None:
    """An AppTest page: a job's panel, as the map page and /train follow it."""
    from explorer.ui.jobs import follow_job

    follow_job(job_id, key="panel")


@pytest.mark.slow
def test_stop_reads_stopping_until_the_worker_stops(local, tmp_path, monkeypatch):
    """Between Stop and the worker's next check the panel says Stopping… and offers no second Stop."""
    from streamlit.testing.v1 import AppTest

    import explorer.ui.jobs as ui_jobs

    runner = JobRunner(tmp_path / "jobs", client=local)
    monkeypatch.setattr(ui_jobs, "job_runner", lambda: runner)  # the pages' runner, on the test's cluster
    job = runner.submit("projection", _map(method="tsne", limit=500, n_iter=3000, seed=3))
    deadline = time.monotonic() + 240
    while (st := runner.status(job)).state != "running" or st.progress <= 0.1:
        assert st.active and time.monotonic() < deadline, st
        time.sleep(0.3)
    at = AppTest.from_function(_panel, args=(job,), default_timeout=30).run()
    stop = at.button(key="panel")
    assert stop.label == "Stop" and not stop.disabled and not at.exception
    os.kill(st.pid, signal.SIGSTOP)  # the worker holds still inside its t-SNE loop: it cannot stop yet
    try:
        stop.click().run()  # the callback stops the job before the rerun draws the panel
        st = runner.status(job)
        assert st.state == "running" and st.stopping and st.stop_requested, st
        assert read_status(runner.job_dir(job)).stopping  # on disk too, for other processes
        stop = at.button(key="panel")
        assert stop.label == "Stopping…" and stop.disabled and not at.exception
        assert "Stopping…" in at.get("progress")[0].proto.text
    finally:
        os.kill(st.pid, signal.SIGCONT)
    st = runner.wait(job, timeout=120)
    assert st.state == "stopped" and not st.stopping, st
    at.run()
    assert [w.value for w in at.warning] == ["The job was stopped."]
    assert [b.key for b in at.button] == ["panel_again"]  # Start again, no Stop


ELSEWHERE = """
import json, time
from explorer.jobs import JobRunner, read_status
runner = JobRunner()  # its own LocalCluster, as an app server without $EXPLORER_SCHEDULER has
job = runner.submit("train", {params!r}, job_id="trained-elsewhere")
while (runner.status(job).extra or {{}}).get("epochs_done", 0) < 1:
    time.sleep(0.2)
print("an epoch done", flush=True)
while read_status(runner.job_dir(job)).active:  # only the runner's watcher thread looks at the job now
    time.sleep(0.5)
print(json.dumps(runner.status(job).__dict__), flush=True)
"""


@pytest.mark.slow
def test_a_stop_reaches_a_job_that_another_process_runs_on_its_own_cluster(local):
    """Two app processes share EXPLORER_HOME, not a scheduler: B's Stop ends the training A runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    a = subprocess.Popen(
        [sys.executable, "-c", ELSEWHERE.format(params=_train(200, 5))],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers too, so that killing the group ends them all
    )
    b = JobRunner(client=local)
    try:
        assert a.stdout.readline().strip() == "an epoch done"
        job = "trained-elsewhere"
        assert b._live(job) is None and b.status(job).state == "running"  # B's scheduler does not know it
        os.kill(a.pid, signal.SIGSTOP)  # A holds still: nothing can pass the stop on yet
        try:
            b.stop(job)
            st = b.status(job)
            assert st.state == "running" and st.stopping, st  # B says Stopping… at once
        finally:
            os.kill(a.pid, signal.SIGCONT)
        st = b.wait(job, timeout=120)
        seen_by_a = JobStatus.from_dict(json.loads(a.stdout.readline()))
        assert a.wait(timeout=60) == 0
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
            a.wait()
    assert st.state == seen_by_a.state == "stopped" and not st.stopping, st
    assert st.extra["stopped_early"] and seen_by_a.extra["checkpoint"] == st.extra["checkpoint"]
    epochs = read_metadata(st.extra["checkpoint"])["epochs"]  # what it completed is kept, on the shared disk
    assert 1 <= epochs < 200 and epochs == st.extra["epochs_done"]


@pytest.mark.slow
def test_warm_ups_that_another_server_computes_are_followed_not_computed_again(local, tmp_path):
    """Two servers share only EXPLORER_HOME: while one beats for its warm-up maps, the other follows them."""
    runner = JobRunner(tmp_path / "jobs", client=local)
    ckpt_hash = content_hash(Z2.read_bytes())
    ids = [f"map-{cache_key(ckpt_hash, 'mnist', ProjectionParams(method=m))}" for m in ("tsne", "umap")]
    now = time.time()
    elsewhere = JobStatus("", "projection", "running", 0.4, "computing", created=now, updated=now, background=True)
    for job_id in ids:  # as the server that computes them on its own cluster mirrors them, beating
        status = replace(elsewhere, id=job_id, heartbeat=now, owner="server-a:1")
        atomic_write_json(runner.job_dir(job_id) / "status.json", asdict(status))
    try:
        warm_start(runner.submit, Z2, "mnist", ckpt_hash)  # as this server's first session queues them
        for job_id in ids:
            assert runner._live(job_id) is None, "computed here as well"
            st = runner.status(job_id)
            assert st.state == "running" and st.owner == "server-a:1" and st.progress == 0.4, st
    finally:
        for job_id in ids:
            if runner._live(job_id):
                runner.stop(job_id)
    # No heartbeat for a minute (that server stopped), or this process's own (its cluster was restarted): run here.
    for job_id, owner, beat in (("stale", "server-a:1", now - 60), ("mine", owner_name(), now)):
        status = replace(elsewhere, id=job_id, heartbeat=beat, updated=beat, owner=owner)
        atomic_write_json(runner.job_dir(job_id) / "status.json", asdict(status))
        assert runner.submit("projection", _map(method="pca", limit=300), job_id=job_id) == job_id
        assert runner._live(job_id) is not None, job_id
        assert runner.wait(job_id, timeout=240).state == "done"


def test_recent_runs_say_how_far_a_stopped_training_got(tmp_path):
    d = tmp_path / "train-x"
    atomic_write_json(d / "spec.json", {"kind": "train", "params": _train(200, 1)})
    stopped = JobStatus("train-x", "train", "stopped", message="saved a.safetensors", extra={"epochs_done": 3})
    assert run_line(stopped, d) == "train-x · stopped after epoch 3 of 200 · saved a.safetensors"
    early = JobStatus("train-x", "train", "stopped", message="stopped before it started")
    assert run_line(early, d) == "train-x · stopped · stopped before it started"
    failed = JobStatus("train-x", "train", "failed", error="boom", extra={"epochs_done": 3})
    assert run_line(failed, tmp_path / "gone") == "train-x · failed · boom"
