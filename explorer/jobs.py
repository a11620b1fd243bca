"""Background jobs in worker processes, with progress and results on disk.

A job is a folder: ``spec.json`` (kind and params), ``status.json`` (state, progress, message),
its artifacts, and a ``stop`` file when a stop is requested. Workers run
``python -m explorer.jobs JOB_DIR`` at a lower CPU priority, so the Streamlit process that
serves sliders keeps its share of the cores. ``JobRunner`` starts at most ``max_running``
workers at once and queues the rest; it notices workers that die and marks them failed.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from explorer.errors import ExplorerError
from explorer.storage import atomic_write_json, home_dir

# Job kind -> "module:function". The function takes (params: dict, reporter: Reporter).
JOB_KINDS = {
    "projection": "explorer.analysis.projection:projection_job",
    "train": "explorer.training.trainjob:train_job",
}
ACTIVE = ("queued", "running")


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
    queue_position: int | None = None
    extra: dict[str, Any] | None = None

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


def jobs_dir() -> Path:
    return home_dir() / "jobs"


def read_status(job_dir: Path) -> JobStatus | None:
    try:
        data = json.loads((job_dir / "status.json").read_text())
        return JobStatus(**data)
    except (OSError, ValueError, TypeError):
        return None


class Reporter:
    """Handed to a job function: report progress, check for a stop request, write artifacts."""

    def __init__(self, job_dir: Path, status: JobStatus, min_interval: float = 0.25) -> None:
        self.dir = job_dir
        self._status = status
        self._last = 0.0
        self._min_interval = min_interval

    def progress(self, fraction: float, message: str = "", force: bool = False, **extra: Any) -> None:
        """Record progress in [0, 1]; writes are throttled unless ``force``."""
        now = time.time()
        self._status.progress = max(0.0, min(1.0, float(fraction)))
        self._status.message = message or self._status.message
        if extra:
            self._status.extra = {**(self._status.extra or {}), **extra}
        if force or now - self._last >= self._min_interval:
            self._write()

    def should_stop(self) -> bool:
        return (self.dir / "stop").exists()

    def _write(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self._status, k, v)
        self._status.updated = time.time()
        self._last = self._status.updated
        atomic_write_json(self.dir / "status.json", asdict(self._status))


def _set_worker_priority() -> None:
    try:
        os.nice(10)
    except OSError:
        pass
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    os.environ.setdefault("NUMBA_CACHE_DIR", str(home_dir() / "numba"))


def worker_main(job_dir: Path) -> int:
    """Run one job in this process (the worker side)."""
    spec = json.loads((job_dir / "spec.json").read_text())
    status = read_status(job_dir) or JobStatus(job_dir.name, spec["kind"], "queued", created=time.time())
    rep = Reporter(job_dir, status)
    rep._write(state="running", started=time.time(), pid=os.getpid(), message="starting")
    _set_worker_priority()
    try:
        module, func = JOB_KINDS[spec["kind"]].split(":")
        getattr(importlib.import_module(module), func)(spec["params"], rep)
        rep._write(
            state="stopped" if rep.should_stop() else "done", progress=1.0 if not rep.should_stop() else status.progress
        )
        return 0
    except ExplorerError as exc:
        rep._write(state="failed", error=str(exc))
    except BaseException as exc:  # noqa: BLE001 - the page must learn about any failure
        (job_dir / "traceback.txt").write_text(traceback.format_exc())
        rep._write(state="failed", error=f"{type(exc).__name__}: {exc}")
    return 1


class JobRunner:
    """Starts jobs in worker processes, at most ``limits[kind]`` of a kind at once; the rest wait in a queue.

    Training runs default to one per two cores ($EXPLORER_MAX_JOBS overrides); maps to two.
    Background jobs (warm-ups) wait behind every interactive job.
    """

    def __init__(self, root: Path | None = None, max_running: int | None = None) -> None:
        self.root = root or jobs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        train = max_running or int(os.environ.get("EXPLORER_MAX_JOBS", 0)) or max(1, (os.cpu_count() or 2) // 2)
        self.limits = {"train": train, "projection": max_running or 2}
        self._procs: dict[str, subprocess.Popen] = {}
        self._kinds: dict[str, str] = {}
        self._queue: list[str] = []
        self._background: set[str] = set()
        self._lock = threading.RLock()
        self._supervisor: threading.Thread | None = None
        self._recover()

    def _recover(self) -> None:
        """Jobs left active by an earlier server cannot be finished by this one."""
        for d in self.root.iterdir():
            st = read_status(d) if d.is_dir() else None
            if st and st.active and not _pid_alive(st.pid):
                Reporter(d, st)._write(state="failed", error="interrupted: the server stopped while this job ran")

    def submit(self, kind: str, params: dict[str, Any], job_id: str | None = None, background: bool = False) -> str:
        """Queue a job; an active job with the same id is reused, not started twice.

        A background job (a warm-up) waits behind every interactive one.
        """
        if kind not in JOB_KINDS:
            raise ExplorerError(f"unknown job kind {kind!r}")
        job_id = job_id or f"{kind}-{uuid.uuid4().hex[:10]}"
        with self._lock:
            d = self.root / job_id
            st = read_status(d)
            if st and st.active:
                if not background and job_id in self._background and job_id in self._queue:  # a user waits now
                    self._background.discard(job_id)
                    self._queue.remove(job_id)
                    self._enqueue(job_id)
                return job_id
            d.mkdir(parents=True, exist_ok=True)
            (d / "stop").unlink(missing_ok=True)
            atomic_write_json(d / "spec.json", {"kind": kind, "params": params})
            Reporter(d, JobStatus(job_id, kind, "queued", created=time.time(), message="waiting for a worker"))._write()
            self._kinds[job_id] = kind
            if background:
                self._background.add(job_id)
            self._enqueue(job_id)
            self._pump()
            self._supervise()
        return job_id

    def _supervise(self, interval: float = 0.5) -> None:
        """Keep pumping from a daemon thread while jobs wait or run.

        Without it a queued job (a warm-up behind another) would start only when a page next
        asks for a status, and a finished worker would hold its slot until then.
        """

        def loop() -> None:
            while True:
                time.sleep(interval)
                self._pump()
                with self._lock:
                    if not self._queue and not self._procs:
                        self._supervisor = None
                        return

        with self._lock:
            if self._supervisor is None:
                self._supervisor = threading.Thread(target=loop, name="job-supervisor", daemon=True)
                self._supervisor.start()

    def _enqueue(self, job_id: str) -> None:
        if job_id in self._background:
            self._queue.append(job_id)
        else:
            first_bg = next((i for i, j in enumerate(self._queue) if j in self._background), len(self._queue))
            self._queue.insert(first_bg, job_id)

    def _pump(self) -> None:
        """Reap finished workers, fail dead ones, start queued jobs while slots are free."""
        with self._lock:
            for job_id, proc in list(self._procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self._procs[job_id]
                st = read_status(self.root / job_id)
                if st and st.active:
                    Reporter(self.root / job_id, st)._write(
                        state="failed", error=f"the worker process died (exit code {code})"
                    )
            for job_id in list(self._queue):
                kind = self._kinds.get(job_id, "projection")
                limit = self.limits.get(kind, 1)
                if job_id in self._background:  # warm-ups leave one slot free for what a user waits on
                    limit = max(1, limit - 1)
                if sum(1 for j in self._procs if self._kinds.get(j) == kind) >= limit:
                    continue
                self._queue.remove(job_id)
                d = self.root / job_id
                if (d / "stop").exists():
                    st = read_status(d)
                    if st:
                        Reporter(d, st)._write(state="stopped", message="stopped before it started")
                    continue
                log = open(d / "worker.log", "ab")
                self._procs[job_id] = subprocess.Popen([sys.executable, "-m", "explorer.jobs", str(d)],
                                                       stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())  # fmt: skip
                log.close()

    def status(self, job_id: str) -> JobStatus | None:
        """The job's status, with its queue position while it waits."""
        self._pump()
        st = read_status(self.root / job_id)
        if st is None:
            return None
        with self._lock:
            if job_id in self._queue:
                st.queue_position = self._queue.index(job_id) + 1
            elif st.state == "running" and job_id not in self._procs and not _pid_alive(st.pid):
                Reporter(self.root / job_id, st)._write(state="failed", error="the worker process died")
        return st

    def stop(self, job_id: str) -> None:
        """Ask a job to stop; it keeps what it completed."""
        (self.root / job_id / "stop").touch()
        self._pump()

    def jobs(self, kind: str | None = None) -> list[JobStatus]:
        """Known jobs, newest first."""
        self._pump()
        out = [
            s for d in self.root.iterdir() if d.is_dir() and (s := read_status(d)) and (kind is None or s.kind == kind)
        ]
        return sorted(out, key=lambda s: -s.created)

    def wait(self, job_id: str, timeout: float = 600, poll: float = 0.2) -> JobStatus:
        """Block until the job ends (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(job_id)
            if st is None or not st.active or time.monotonic() > deadline:
                return st  # type: ignore[return-value]
            time.sleep(poll)

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie counts as dead
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


if __name__ == "__main__":
    raise SystemExit(worker_main(Path(sys.argv[1])))
