"""/latent-map and /train with a job that ended: what they say, and what they start (AppTest, a stand-in runner).

The stand-in keeps job statuses in memory and records what a page submits or starts again, so
no Dask cluster starts; ``JobRunner`` itself is tested in test_jobs.py.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import explorer.ui as ui
import explorer.ui.jobs as ui_jobs
from explorer.catalog import runs_dir, shipped_dir
from explorer.jobs import JobStatus

ROOT = Path(__file__).resolve().parents[1]


class Runner:
    """What the pages use of ``JobRunner``: statuses set by the test, submits and restarts recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.statuses: dict[str, JobStatus] = {}
        self.submitted: list[str] = []
        self.restarted: list[str] = []

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def status(self, job_id: str) -> JobStatus | None:
        st = self.statuses.get(job_id)
        return replace(st) if st else None

    def submit(self, kind: str, params: dict, job_id: str | None = None, background: bool = False) -> str:
        job_id = job_id or f"{kind}-{len(self.submitted)}"
        self.submitted.append(job_id)
        self.statuses[job_id] = JobStatus(job_id, kind, "queued", created=len(self.submitted), message="waiting")
        return job_id

    def restart(self, job_id: str) -> str:
        self.restarted.append(job_id)
        self.statuses[job_id] = replace(self.statuses[job_id], state="queued", message="waiting")
        return job_id

    def jobs(self, kind: str | None = None) -> list[JobStatus]:
        return [s for s in self.statuses.values() if kind is None or s.kind == kind]


@pytest.fixture
def runner(tmp_path, monkeypatch) -> Runner:
    fake = Runner(tmp_path / "jobs")
    monkeypatch.setattr(ui, "job_runner", lambda: fake)  # app.py and the pages
    monkeypatch.setattr(ui_jobs, "job_runner", lambda: fake)  # follow_job and the buttons' callbacks
    return fake


def _app(**state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["sidebar_model"] = "mnist-vae-mlp-z2"
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def test_a_stopped_map_stays_stopped_and_offers_start_again(runner):
    """A full rerun (a sidebar change, a reload) does not start a map the user stopped; its panel does."""
    at = _app(latentmap_method="tsne")
    at.switch_page("pages/latent-map.py").run()
    assert not at.exception and len(runner.submitted) == 1  # not cached: computing it
    job_id = runner.submitted[0]
    assert any("Computing the t-SNE map" in c.value for c in at.caption)
    runner.statuses[job_id] = replace(runner.statuses[job_id], state="stopped", message="stopped")  # the user's Stop
    at.run()  # a full rerun
    assert not at.exception and runner.submitted == [job_id]  # not submitted again
    assert [w.value for w in at.warning] == ["The job was stopped."]
    assert any("was stopped before it finished" in c.value for c in at.caption)
    assert not any("Computing the" in c.value for c in at.caption)
    again = at.button(key="latentmap_stop_again")
    assert again.label == "Start again"
    again.click().run()
    assert runner.restarted == [job_id] and runner.submitted == [job_id]
    assert not at.warning and any("Computing the t-SNE map" in c.value for c in at.caption)


def test_a_done_map_whose_cache_was_cleared_is_computed_again(runner):
    at = _app(latentmap_method="tsne")
    at.switch_page("pages/latent-map.py").run()
    job_id = runner.submitted[0]
    runner.statuses[job_id] = replace(runner.statuses[job_id], state="done", progress=1.0)  # its .npz is not there
    at.run()
    assert not at.exception and runner.submitted == [job_id, job_id]


def _stopped_run(runner: Runner, extra: dict) -> str:
    """A training stopped after epoch 3 of 200 that saved its checkpoint (a copy of a shipped one)."""
    ckpt = runs_dir() / "vae-mlp-z2-mnist-0101-120000.safetensors"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped_dir() / "mnist-vae-mlp-z2.safetensors", ckpt)
    job_id = "train-stopped"
    d = runner.job_dir(job_id)
    d.mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps({"kind": "train", "params": {"spec": {"settings": {"epochs": 200}}}}))
    runner.statuses[job_id] = JobStatus(
        job_id,
        "train",
        "stopped",
        progress=1.0,
        message=f"saved {ckpt.name}",
        created=1.0,
        extra={"checkpoint": str(ckpt), **extra},
    )
    return job_id


def test_a_stopped_training_reads_as_stopped_not_finished(runner):
    job_id = _stopped_run(runner, {"epochs_done": 3, "stopped_early": True})
    at = _app(train_job=job_id)
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert not at.success, [s.value for s in at.success]  # no green "Finished"
    assert [w.value for w in at.warning] == ["The job was stopped."]
    saved = [i.value for i in at.info]
    assert saved == [
        "Saved vae-mlp-z2-mnist-0101-120000.safetensors at epoch 3 of 200, the last one completed before the stop. "
        "It is now in the sidebar's picker for every page."
    ]
    assert at.button(key=f"train_use_{job_id}").label == "Explore vae-mlp-z2-mnist-0101-120000"
    assert not [b for b in at.button if b.key == "train_stop_again"]  # it kept a model: nothing to start again


def test_a_finished_training_says_finished(runner):
    job_id = _stopped_run(runner, {"epochs_done": 200})
    runner.statuses[job_id].state = "done"
    at = _app(train_job=job_id)
    at.switch_page("pages/train.py").run()
    assert not at.exception and not at.warning and not at.info
    assert [s.value for s in at.success] == [
        "Finished: saved vae-mlp-z2-mnist-0101-120000.safetensors. The model is now in the sidebar's picker for every page."
    ]
