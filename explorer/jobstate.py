"""What a job is, as the app and the workers both see it: its status, its kinds, where it lives.

A job's live status is kept in the scheduler's metadata under ``NS``; the app mirrors it into
``EXPLORER_HOME/jobs/ID/status.json`` (see explorer.jobs).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from explorer.storage import home_dir

# Job kind -> "module:function". The function takes (params, blobs, reporter) and returns
# {relative path under EXPLORER_HOME: bytes} for the app to write, in that order.
JOB_KINDS = {
    "projection": "explorer.analysis.projection:projection_job",
    "train": "explorer.training.trainjob:train_job",
}
ACTIVE = ("queued", "running")
NS = "explorer-jobs"  # the scheduler-metadata namespace: [NS, "status"|"files"|"stop", job_id, ...]
STOP_FILE = "stop.json"  # in a job's folder: a stop request, for whichever process's scheduler runs the job
LOST_ENV = "EXPLORER_JOB_LOST_AFTER"  # seconds without a heartbeat before a job is lost (default 30)
LOST = "lost: "  # how a lost job's error begins


@dataclass
class JobStatus:
    """What a page shows about a job."""

    id: str
    kind: str
    state: str  # queued | running | done | failed | stopped
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    created: float = 0.0
    started: float | None = None
    updated: float = 0.0
    pid: int | None = None
    heartbeat: float | None = None  # when an app process connected to the job's scheduler last looked at it
    owner: str | None = None  # that process, as host:pid
    worker: str | None = None
    background: bool = False
    queue_position: int | None = None
    extra: dict[str, Any] | None = None
    stop_requested: float | None = None  # when a Stop was asked for (the job ends at its next stop check)
    files: dict[str, list] = field(default_factory=dict)  # artifact name -> [version, write_once]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def stopping(self) -> bool:
        """Asked to stop and not yet stopped: a worker ends at its next check (a batch, an iteration)."""
        return self.active and self.stop_requested is not None

    @property
    def lost(self) -> bool:
        """Failed because no process that could follow it was left (see ``lost_reason``)."""
        return self.state == "failed" and (self.error or "").startswith(LOST)

    @property
    def eta(self) -> float | None:
        """Seconds left, from the pace so far."""
        if self.state != "running" or not self.started or self.progress <= 0.01:
            return None
        spent = self.updated - self.started
        return spent / self.progress * (1 - self.progress)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobStatus:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def jobs_dir() -> Path:
    return home_dir() / "jobs"


def read_status(job_dir: Path) -> JobStatus | None:
    """The status mirrored on disk (as of the app's last look)."""
    try:
        return JobStatus.from_dict(json.loads((job_dir / "status.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def stop_requested(job_dir: Path) -> float | None:
    """When a stop was asked for this run of the job (its folder's stop request), else None."""
    try:
        return (job_dir / STOP_FILE).stat().st_mtime
    except OSError:
        return None


def lost_after() -> float:
    """Seconds without a heartbeat after which an active job its scheduler does not know is lost."""
    return float(os.environ.get(LOST_ENV) or 30.0)


def heartbeat_every() -> float:
    """How often a process following a job refreshes its heartbeat on disk."""
    return lost_after() / 6


def owner_name() -> str:
    """This process, as a job's heartbeat names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lost_reason(st: JobStatus, now: float | None = None) -> str | None:
    """Why an active job that the reader's scheduler does not know is lost, or None while it may live.

    Whoever follows a job through the scheduler that runs it refreshes ``heartbeat`` on disk
    (explorer.jobs). When that stops (the app server, or the scheduler with its workers, is
    gone) for ``lost_after()`` seconds, nothing can finish the job any more.
    """
    if not st.active:
        return None
    beat = st.heartbeat or st.updated or st.created
    age = (now or time.time()) - beat
    if age <= lost_after():
        return None
    who = f" ({st.owner})" if st.owner else ""
    since = f"{age:.0f} s" if age < 3600 else "over an hour"
    return f"{LOST}the app server or scheduler that ran it stopped{who}; no heartbeat for {since}. Start it again."


def runs_elsewhere(st: JobStatus | None) -> bool:
    """True while another process follows this active job (a status read from disk), beating for it.

    That process runs it on a scheduler of its own (an app server sharing only ``EXPLORER_HOME``).
    A status this process mirrored (its cluster has since restarted), or one that no longer beats
    (see ``lost_reason``), says that nobody runs it now.
    """
    return st is not None and st.active and st.owner != owner_name() and lost_reason(st) is None
