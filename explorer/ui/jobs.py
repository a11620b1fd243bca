"""Background-job widgets: the process-wide job runner, a progress panel, and the poll-progress-stop-rerun loop."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import streamlit as st

from explorer.errors import ExplorerError
from explorer.jobs import JobRunner, JobStatus

KIND_NAMES = {"train": "training", "projection": "map"}  # job kind -> what the running-jobs list calls it
log = logging.getLogger(__name__)
LOST_LISTED = 3600.0  # s: how long the running-jobs list keeps a lost job, to start it again
ENDED_KEY = "jobs_rerun_after"  # + panel key -> the job id whose end already triggered a full rerun


def _warm_start(*args: object) -> None:
    """Queue the warm-up maps (best effort): one log line if that fails, none if the process exits meanwhile."""
    from explorer.analysis.projection import warm_start
    from explorer.cluster import exiting

    try:
        warm_start(*args)
    except Exception as exc:  # noqa: BLE001 - a thread's traceback would say nothing more to a user
        if not exiting():
            log.warning("the warm-up maps were not queued: %s: %s", type(exc).__name__, exc)


@st.cache_resource
def job_runner() -> JobRunner:
    """One runner per server process, shared by every session. Warms the default maps on creation.

    The warm-ups' first submit starts the LocalCluster (or connects to $EXPLORER_SCHEDULER),
    once per server process, in a background thread.
    """
    from explorer.catalog import DEFAULT_CHECKPOINT, shipped_dir
    from explorer.checkpoint import content_hash
    from explorer.checkpoint_header import read_metadata

    runner = JobRunner()
    default = shipped_dir() / f"{DEFAULT_CHECKPOINT}.safetensors"
    if default.is_file():  # from a thread: starting the cluster must not hold up the first page
        args = (runner.submit, default, read_metadata(default)["dataset"], content_hash(default.read_bytes()))
        threading.Thread(target=_warm_start, args=args, name="warm-start", daemon=True).start()
    return runner


def _job_action(action: str, job_id: str) -> None:
    """A Stop or Start-again button's callback (``JobRunner.stop``/``restart``): it runs before the
    rerun, so the panel that rerun draws already says Stopping… or shows the job queued."""
    try:
        getattr(job_runner(), action)(job_id)
    except ExplorerError as exc:
        st.toast(str(exc), icon=":material/error:")


def job_progress_ui(status: JobStatus, key: str, stoppable: bool = True, retry: bool = False) -> None:
    """Progress bar, message, ETA, queue place and a Stop button (disabled once a stop was asked for).

    With ``retry``, a job that ended with nothing to show (failed, lost or stopped) gets a
    Start-again button that runs it again under its id.
    """
    if status.stopping:  # the worker ends at its next check: a batch, a t-SNE iteration
        st.progress(status.progress, text=f"Stopping… · {status.message}")
    elif status.state == "queued":
        place = f" (place {status.queue_position} in the queue)" if status.queue_position else ""
        st.info(f"Waiting for a free worker{place}.", icon=":material/hourglass_top:")
    elif status.state == "running":
        eta = f" · about {status.eta:.0f} s left" if status.eta is not None else ""
        st.progress(status.progress, text=f"{status.message}{eta}")
    elif status.lost:
        st.error(f"The job was {status.error}", icon=":material/link_off:")
    elif status.state == "failed":
        st.error(f"The job failed: {status.error}", icon=":material/error:")
    elif status.state == "stopped":
        st.warning("The job was stopped.", icon=":material/stop_circle:")
    if retry and not status.active and not has_result(status):
        st.button(
            "Start again",
            key=key + "_again",
            icon=":material/replay:",
            on_click=_job_action,
            args=("restart", status.id),
        )
    if stoppable and status.active:
        st.button(
            "Stopping…" if status.stopping else "Stop",
            key=key,
            icon=":material/stop:",
            disabled=status.stopping,
            on_click=_job_action,
            args=("stop", status.id),
        )


def has_result(status: JobStatus) -> bool:
    """Done, or stopped with something kept (a training's last completed epoch)."""
    return status.state == "done" or (status.state == "stopped" and bool((status.extra or {}).get("checkpoint")))


def follow_job(
    job_id: str,
    key: str,
    stoppable: bool = True,
    rerun_on_result: bool = True,
    panel: bool = True,
    retry: bool | None = None,
) -> JobStatus | None:
    """Poll -> progress -> stop -> rerun, for a page's ``st.fragment(run_every=...)``.

    Shows the job's panel (unless ``panel`` is False, or only while it runs when ``stoppable``
    is False) with its Stop button, offers to start it again if it ended with nothing (``retry``,
    by default when ``stoppable``), and reruns the whole app once when it ends with a result, so
    the page (and the sidebar's model picker) pick it up. Returns the status, or None.
    """
    runner = job_runner()
    status = runner.status(job_id)
    if status is None:
        return None
    if panel and (stoppable or status.active or status.state == "failed"):
        job_progress_ui(status, key=key, stoppable=stoppable, retry=stoppable if retry is None else retry)
    run = f"{job_id}@{status.created}"  # this run of the job: a map recomputed later under its id reruns again
    if rerun_on_result and has_result(status) and st.session_state.get(ENDED_KEY + key) != run:
        st.session_state[ENDED_KEY + key] = run
        st.rerun(scope="app")
    return status


def _spec_params(job_dir: Path) -> dict:
    """The params a job was submitted with, from the spec its folder keeps ({} if unreadable)."""
    try:
        params = json.loads((job_dir / "spec.json").read_text())["params"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return params if isinstance(params, dict) else {}


def _job_title(job_dir: Path) -> str | None:
    """A training's run name, or which map of which model, from the spec its job folder keeps."""
    params = _spec_params(job_dir)
    try:
        if "name" in params:
            return params["name"]
        return f"{params['projection']['method']} map of {Path(params['checkpoint']).stem}"
    except (KeyError, TypeError, AttributeError):
        return None


def stopped_epoch(status: JobStatus, job_dir: Path) -> str | None:
    """How far a training stopped early got, as "epoch 3 of 200" (the epoch its checkpoint holds), else None."""
    done = (status.extra or {}).get("epochs_done")
    if status.kind != "train" or status.state != "stopped" or not done:
        return None
    try:
        total = f" of {int(_spec_params(job_dir)['spec']['settings']['epochs'])}"
    except (KeyError, TypeError, ValueError):
        total = ""
    return f"epoch {done}{total}"


def run_line(status: JobStatus, job_dir: Path) -> str:
    """One line for a list of runs: id, state, message, error; a training stopped early says how far it got."""
    state = f"stopped after {at}" if (at := stopped_epoch(status, job_dir)) else status.state
    return " · ".join(p for p in (status.id, state, status.message, status.error) if p)


def running_jobs_ui(key: str, kind: str | None = None) -> None:
    """Every active job on the cluster, whichever session or app replica started it: progress and Stop.

    Jobs lost in the last hour (their app server or scheduler stopped) are listed too, with Start
    again. Call it inside a page's ``st.fragment(run_every=...)``; the list comes from the scheduler.
    """
    runner = job_runner()
    recent = time.time() - LOST_LISTED
    active = [s for s in runner.jobs(kind) if s.active or (s.lost and (s.heartbeat or s.updated) > recent)]
    if not active:
        st.caption("No job is running or waiting.")
        return
    for listed in active:
        status = runner.status(listed.id) or listed
        with st.container(border=True, key=f"{key}{status.id}"):
            name = _job_title(runner.job_dir(status.id))
            what = "warm-up" if status.background else KIND_NAMES.get(status.kind, status.kind)
            state = "stopping" if status.stopping else status.state
            st.markdown(f"**{name or status.id}** · {what} · {state}")
            job_progress_ui(status, key=f"{key}stop_{status.id}", retry=status.lost)
