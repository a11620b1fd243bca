"""What a job is, as the app and the workers both see it: its status, its kinds, where it lives.

A job's live status is kept in the scheduler's metadata under ``NS``; the app mirrors it into
``EXPLORER_HOME/jobs/ID/status.json`` (see explorer.jobs).
"""

from __future__ import annotations

import json
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
    worker: str | None = None
    background: bool = False
    queue_position: int | None = None
    extra: dict[str, Any] | None = None
    files: dict[str, list] = field(default_factory=dict)  # artifact name -> [version, write_once]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

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
