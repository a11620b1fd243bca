"""The worker side of a job: the Dask task that runs it, and the reporter it gets.

The task publishes the job's status and artifacts in the scheduler's metadata and returns its
results as bytes; it needs nothing from the app's disk (see explorer.jobs).
"""

from __future__ import annotations

import importlib
import json
import os
import time
import traceback
from dataclasses import asdict
from typing import Any

from explorer.errors import ExplorerError
from explorer.jobstate import JOB_KINDS, NS, JobStatus


class Reporter:
    """Handed to a job function: report progress, check for a stop request, publish artifacts."""

    def __init__(self, client: Any, status: JobStatus, min_interval: float = 0.25) -> None:
        self._client = client
        self._status = status
        self._last = 0.0
        self._min_interval = min_interval
        self._stop = (0.0, False)  # (checked at, value)

    @property
    def job_id(self) -> str:
        return self._status.id

    def progress(self, fraction: float, message: str = "", force: bool = False, **extra: Any) -> None:
        """Record progress in [0, 1]; publishing is throttled unless ``force``."""
        self._status.progress = max(0.0, min(1.0, float(fraction)))
        self._status.message = message or self._status.message
        if extra:
            self._status.extra = {**(self._status.extra or {}), **extra}
        if force or time.time() - self._last >= self._min_interval:
            self.publish()

    def put(self, name: str, data: bytes, once: bool = False) -> None:
        """Publish an artifact (mirrored as ``jobs/ID/name``); ``once``: never rewritten, dropped once mirrored."""
        self._client.set_metadata([NS, "files", self.job_id, name], data)
        version = self._status.files.get(name, [0])[0] + 1
        self._status.files[name] = [version, once]
        self.publish()

    def put_json(self, name: str, obj: Any) -> None:
        self.put(name, json.dumps(obj).encode())

    def should_stop(self, fresh: bool = False) -> bool:
        """True once a stop was requested (asked of the scheduler at most every 0.3 s)."""
        at, value = self._stop
        if not value and (fresh or time.monotonic() - at > 0.3):
            value = bool(self._client.get_metadata([NS, "stop", self.job_id], False))
            self._stop = (time.monotonic(), value)
        return value

    def publish(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self._status, k, v)
        self._status.updated = self._last = time.time()
        self._client.set_metadata([NS, "status", self.job_id], asdict(self._status))


def run_job(kind: str, job_id: str, params: dict[str, Any], blobs: dict[str, bytes]) -> dict[str, Any]:
    """The Dask task: run one job on this worker; returns its state and result files as bytes."""
    from distributed import get_client, get_worker

    client = get_client()
    seen = client.get_metadata([NS, "status", job_id], None)
    status = JobStatus.from_dict(seen) if seen else JobStatus(job_id, kind, "queued", created=time.time())
    rep = Reporter(client, status)
    if rep.should_stop(fresh=True):
        return {"state": "stopped", "message": "stopped before it started"}
    if status.started:  # an earlier attempt began on a worker that died; Dask retried it
        return {"state": "failed", "error": "the worker process died while running this job"}
    rep.publish(state="running", started=time.time(), pid=os.getpid(), worker=get_worker().address, message="starting")
    try:
        module, func = JOB_KINDS[kind].split(":")
        files = getattr(importlib.import_module(module), func)(params, blobs, rep) or {}
        state = "stopped" if rep.should_stop(fresh=True) else "done"
        return {"state": state, "files": files, "message": rep._status.message, "extra": rep._status.extra}
    except ExplorerError as exc:
        if rep.should_stop(fresh=True):  # e.g. a training stopped before its first epoch: nothing to keep
            return {"state": "stopped", "message": str(exc)}
        return {"state": "failed", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the page must learn about any failure
        return {"state": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
