"""Two real app servers share one Dask scheduler and one EXPLORER_HOME (issue #18, item 2).

A ``dask scheduler`` and two workers run on 127.0.0.1 (tests/test_dask.py's ``cluster``), two
Streamlit servers of the app point at it, and headless Chromium drives both: a training started
on server A is followed and stopped from server B's list of running jobs, and a t-SNE map asked
for on both servers is computed once. Every wait is for a state, never for a time. Without a
browser: when two replicas see a job end at once, one writes its results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from explorer.analysis.projection import ProjectionParams, cache_key
from explorer.catalog import runs_dir, shipped_dir
from explorer.checkpoint import content_hash
from explorer.jobs import JobRunner
from tests.browser import CHROMIUM, browser, exceptions, serve, wait_idle
from tests.test_dask import _train, _until, cluster  # noqa: F401 - cluster: the scheduler and workers

pytestmark = [
    # One worker trains, the other takes the servers' warm-up maps (README: "Running on a cluster").
    pytest.mark.parametrize("cluster", [("train=1", "background=1")], indirect=True),
    pytest.mark.slow,
]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")
WAIT = 600_000  # ms: a loaded 2-core machine runs these beside the rest of the suite
MAP_MODEL = "mnist-vae-mlp-z16"  # not the default model, whose maps the servers warm up on their own
SHOTS = Path(os.environ.get("EXPLORER_SCREENSHOTS", Path(__file__).resolve().parents[1] / "screens"))
RUNNING = "[class*='st-key-train_running_train-']"  # a training's card in /train's running-jobs list


@pytest.fixture(scope="module")
def replicas(cluster, tmp_path_factory):  # noqa: F811
    """(URL of server A, URL of server B, the EXPLORER_HOME they share)."""
    home = tmp_path_factory.mktemp("shared-home")
    env = {"EXPLORER_SCHEDULER": cluster[0], "EXPLORER_HOME": str(home), "EXPLORER_DEVICE": "cpu"}
    with serve(env=env, timeout=180) as a, serve(env=env, timeout=180) as b:
        yield a, b, home


@pytest.fixture(scope="module")
def pages(replicas):
    """One browser tab on each server (two sessions, as two students would have)."""
    with browser() as br:
        tabs = tuple(br.new_page(viewport={"width": 1400, "height": 1100}) for _ in range(2))
        for tab in tabs:
            tab.set_default_timeout(WAIT)  # every click and fill waits for its element as long as needed
        yield tabs


def _text_has(page, text: str, timeout: float = WAIT) -> None:
    page.wait_for_function("(t) => document.body.innerText.includes(t)", arg=text, timeout=timeout)


@pytest.mark.browser
@needs_chromium
def test_a_training_started_on_one_server_is_followed_and_stopped_on_the_other(replicas, pages):
    url_a, url_b, home = replicas
    pa, pb = pages
    pa.goto(f"{url_a}/train")
    wait_idle(pa, WAIT)
    epochs = pa.get_by_label("Epochs")
    epochs.fill("200")
    epochs.press("Enter")
    wait_idle(pa, WAIT)
    pa.get_by_role("button", name="Start training").click()
    _text_has(pa, "/200")  # server A's own panel shows the run's progress

    pb.goto(f"{url_b}/train")
    wait_idle(pb, WAIT)
    pb.get_by_text("Jobs running now").click()
    card = pb.locator(RUNNING)
    card.wait_for(timeout=WAIT)
    # Progress streams to server B: wait until the run is past its first epoch, so it has one to keep.
    pb.wait_for_function(
        f"() => /epoch ([2-9]|\\d\\d+)\\/200/.test(document.querySelector(\"{RUNNING}\")?.innerText || '')",
        timeout=WAIT,
    )
    assert "vae-mlp-z2-mnist" in card.inner_text()  # the run's name, from the shared job folder
    job = card.get_attribute("class").split("st-key-train_running_")[1].split()[0]
    assert (home / "jobs" / job / "spec.json").is_file()
    SHOTS.mkdir(exist_ok=True)
    pb.screenshot(path=str(SHOTS / "replica-b-running-jobs.png"), full_page=True)
    card.get_by_role("button", name="Stop").click()

    _text_has(pa, "The job was stopped.")  # server A's session sees its run end as stopped
    _text_has(pa, "before the stop. It is now in the sidebar's picker")  # what the stopped run kept, not "Finished"
    assert "Finished:" not in pa.inner_text("body")
    pb.locator(RUNNING).wait_for(state="detached", timeout=WAIT)  # and B's list lets it go
    pa.screenshot(path=str(SHOTS / "replica-a-stopped.png"), full_page=True)
    status = json.loads((home / "jobs" / job / "status.json").read_text())
    assert status["state"] == "stopped" and status["extra"]["stopped_early"]
    assert [p.name for p in (home / "runs").glob("*.safetensors")] == [Path(status["extra"]["checkpoint"]).name]
    assert not exceptions(pa) and not exceptions(pb)


@pytest.mark.browser
@needs_chromium
def test_a_map_asked_for_on_both_servers_is_computed_once(replicas, pages, cluster):  # noqa: F811
    url_a, url_b, home = replicas
    pa, pb = pages
    path = f"/latent-map?model={MAP_MODEL}&method=tsne"
    pa.goto(url_a + path)
    _text_has(pa, "Computing the t-SNE map")  # server A submitted the job
    pb.goto(url_b + path)  # server B asks for the same map while A's job runs (or after it ended)
    for page in (pa, pb):
        page.wait_for_selector(".js-plotly-plot", timeout=WAIT)
        wait_idle(page, WAIT)
        assert "Computing" not in page.inner_text("body") and not exceptions(page)
    pb.screenshot(path=str(SHOTS / "replica-b-map.png"), full_page=True)

    ckpt = shipped_dir() / f"{MAP_MODEL}.safetensors"
    key = cache_key(content_hash(ckpt.read_bytes()), "mnist", ProjectionParams(method="tsne"))
    assert (home / "cache" / "projections" / f"{key}.npz").is_file()
    tsne_jobs = [d.name for d in (home / "jobs").iterdir() if d.name.startswith("map-") and _is_tsne_of(d, MAP_MODEL)]
    assert tsne_jobs == [f"map-{key}"]  # one job, which both servers followed
    from distributed import Client

    with Client(cluster[0], set_as_default=False, timeout=60) as client:
        story = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.story(f"map-{key}"))
    assert [t[2] for t in story].count("processing") == 1, story  # the task ran on a worker once


def _is_tsne_of(job_dir: Path, model: str) -> bool:
    params = json.loads((job_dir / "spec.json").read_text())["params"]
    return Path(params["checkpoint"]).stem == model and params["projection"]["method"] == "tsne"


def test_a_finished_job_is_written_by_one_replica_only(cluster):  # noqa: F811
    """Both replicas may see a job end at once: only the one that claims it writes its checkpoint."""
    from distributed import Client

    a, b = (JobRunner(address=cluster[0], client=Client(cluster[0], set_as_default=False)) for _ in range(2))
    job = a.submit("train", _train(1, seed=11))
    a._futures.clear()  # A's watcher thread lets it be: the test decides who looks when
    _until(lambda: b.status(job).state == "running", what="the run to start")  # B now holds its task
    _until(lambda: b._futures[job].status == "finished", what="the run to end")
    stale = b._live(job)  # what B read just before A wrote the results
    assert stale.active
    done = _until(lambda: (s := a.status(job)).state == "done" and s, what="A to write the results")
    assert Path(done.extra["checkpoint"]).is_file()
    assert b._finish(stale).active  # B's look does not write the results a second time
    assert list(runs_dir().glob("*.safetensors")) == [Path(done.extra["checkpoint"])]
    assert b.status(job).extra["checkpoint"] == done.extra["checkpoint"]
    a.client.close()
    b.client.close()
