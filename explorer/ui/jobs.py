"""Background-job widgets: the process-wide job runner and a progress panel."""

from __future__ import annotations

import streamlit as st

from explorer.jobs import JobRunner, JobStatus


@st.cache_resource
def job_runner() -> JobRunner:
    """One runner per server process, shared by every session. Warms the default maps on creation."""
    from explorer.analysis.projection import warm_start
    from explorer.catalog import DEFAULT_CHECKPOINT, shipped_dir
    from explorer.checkpoint import content_hash, read_metadata

    runner = JobRunner()
    default = shipped_dir() / f"{DEFAULT_CHECKPOINT}.safetensors"
    if default.is_file():
        warm_start(runner.submit, default, read_metadata(default)["dataset"], content_hash(default.read_bytes()))
    return runner


def job_progress_ui(status: JobStatus, key: str, stoppable: bool = True) -> bool:
    """Progress bar, message, ETA, queue place and a stop button. Returns True if stop was pressed."""
    if status.state == "queued":
        place = f" (place {status.queue_position} in the queue)" if status.queue_position else ""
        st.info(f"Waiting for a free worker{place}.", icon=":material/hourglass_top:")
    elif status.state == "running":
        eta = f" · about {status.eta:.0f} s left" if status.eta is not None else ""
        st.progress(status.progress, text=f"{status.message}{eta}")
    elif status.state == "failed":
        st.error(f"The job failed: {status.error}", icon=":material/error:")
    elif status.state == "stopped":
        st.warning("The job was stopped.", icon=":material/stop_circle:")
    if stoppable and status.active:
        return st.button("Stop", key=key, icon=":material/stop:")
    return False
