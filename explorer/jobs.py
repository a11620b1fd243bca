"""Background jobs on Dask: progress, stop, artifacts and results travel through the scheduler.

A job runs as one Dask task (``run_job``) on a worker that needs nothing from the app's disk:
the checkpoint travels with the task, and the task returns its results as bytes (a map's
``.npz`` and JSON sidecar, a trained checkpoint) under paths relative to ``EXPLORER_HOME``.
The app (any replica that shares the scheduler and ``EXPLORER_HOME``) writes them.

While it runs, the worker keeps its status and its artifacts (training curves, epoch
snapshots, t-SNE layouts) in the scheduler's metadata, under ``explorer-jobs``; a stop request
is a flag there, and a file in the job's folder (``stop.json``) for a job that another process
runs on its own scheduler: that process passes it on (see ``JobRunner.stop``). The app mirrors both into ``EXPLORER_HOME/jobs/ID/`` (``status.json`` and the
artifact files), so the pages read files, and jobs of earlier servers stay listed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from explorer.cluster import worker_resources
from explorer.errors import ExplorerError
from explorer.jobstate import (
    ACTIVE,
    JOB_KINDS,
    NS,
    STOP_FILE,
    JobStatus,
    heartbeat_every,
    jobs_dir,
    lost_reason,
    owner_name,
    read_status,
    runs_elsewhere,
    stop_requested,
)
from explorer.jobworker import run_job
from explorer.storage import atomic_write_bytes, atomic_write_json, home_dir

__all__ = ["ACTIVE", "JobRunner", "JobStatus", "jobs_dir", "read_status", "run_job"]
PRIORITY = {False: 10, True: -10}  # interactive work ahead of background warm-ups
RESOURCES = {"train": "train"}  # job kind -> the worker resource it needs, where the cluster declares it
FINISH_LEASE = 120.0  # s: a replica that claimed a job's finish and died is relieved after this


def _safe_path(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ExplorerError(f"a job returned a path outside the data folder: {rel!r}")
    return path


class JobRunner:
    """Submits jobs to the Dask cluster and mirrors their status, artifacts and results to disk.

    Every method works from any process that shares the scheduler and ``EXPLORER_HOME``: a job
    started by one app replica is listed, followed, stopped and finished by another.
    """

    def __init__(self, root: Path | None = None, address: str | None = None, client: Any = None) -> None:
        self.root = root or jobs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._address = address
        self._client = client
        self._own_client = client is None  # ours to replace when closed (a cluster shut down and restarted)
        self._futures: dict[str, Any] = {}
        self._synced: dict[tuple[str, str], int] = {}
        self._stops_sent: set[tuple[str, float]] = set()  # (job id, run's created): stop passed to the scheduler
        self._lock = threading.RLock()
        self._watcher: threading.Thread | None = None

    @property
    def client(self) -> Any:
        """The Dask client (the local cluster starts on first use, and again if it was shut down)."""
        if self._client is None or (self._own_client and self._client.status != "running"):
            from explorer.cluster import get_client

            self._futures.clear()  # futures of a closed client say nothing; the scheduler's metadata does
            self._client = get_client(self._address)
        return self._client

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def _live(self, job_id: str) -> JobStatus | None:
        d = self.client.get_metadata([NS, "status", job_id], None)
        return JobStatus.from_dict(d) if d else None

    def _set(self, st: JobStatus) -> None:
        st.updated = time.time()
        self.client.set_metadata([NS, "status", st.id], asdict(st))

    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        job_id: str | None = None,
        background: bool = False,
        blobs: dict[str, bytes] | None = None,
    ) -> str:
        """Queue a job; an active job with the same id (from any replica) is reused, not started twice.

        So is one that another process runs on its own scheduler (an app server sharing only
        ``EXPLORER_HOME``, e.g. with the same warm-ups): it is followed through its folder, where
        that process beats for it, until it ends or is lost. ``params["checkpoint"]``, a path on
        the app's disk, travels to the worker as bytes. A background job (a warm-up) waits behind
        every interactive one.
        """
        if kind not in JOB_KINDS:
            raise ExplorerError(f"unknown job kind {kind!r}")
        job_id = job_id or f"{kind}-{uuid.uuid4().hex[:10]}"
        with self._lock:
            live = self._live(job_id)
            if live and live.active:
                if not background and live.background and live.state == "queued":  # a user waits now: go ahead
                    self._cancel(job_id)
                else:
                    return job_id
            elif live is None and runs_elsewhere(read_status(self.job_dir(job_id))):  # not if this scheduler knows it
                return job_id
            blobs = dict(blobs or {})
            if "checkpoint" in params and not blobs:
                from explorer.checkpoint import model_blobs

                blobs = model_blobs(params["checkpoint"])  # a checkpoint, or an imported model's files
            d = self.job_dir(job_id)
            atomic_write_json(d / "spec.json", {"kind": kind, "params": params})
            for f in d.glob("*"):  # artifacts of an earlier attempt
                if f.name not in ("spec.json",):
                    f.unlink(missing_ok=True)
            client = self.client
            client.set_metadata([NS, "stop", job_id], False)
            client.set_metadata([NS, "files", job_id], {})
            client.set_metadata([NS, "finisher", job_id], False)
            st = JobStatus(
                job_id, kind, "queued", created=time.time(), message="waiting for a worker", background=background
            )
            self._set(st)
            self._mirror(st)
            have = worker_resources(client)
            need = {
                r: 1
                for r in ([RESOURCES[kind]] if kind in RESOURCES else []) + (["background"] if background else [])
                if r in have
            }
            # The blobs travel inline: scattered data would pull the task to the worker that holds it.
            fut = client.submit(
                run_job,
                kind,
                job_id,
                params,
                blobs,
                key=job_id,
                pure=False,
                priority=PRIORITY[background],
                resources=need or None,
                retries=0,
            )
            client.publish_dataset(fut, name=f"{NS}-{job_id}", override=True)  # survives this replica
            self._futures[job_id] = fut
            self._watch()
        return job_id

    def _future(self, job_id: str) -> Any:
        fut = self._futures.get(job_id)
        if fut is None:
            try:
                fut = self._futures[job_id] = self.client.get_dataset(f"{NS}-{job_id}")
            except KeyError:
                return None
        return fut

    def _cancel(self, job_id: str) -> None:
        fut = self._future(job_id)
        if fut is not None:
            self.client.cancel([fut], force=True)
        self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        self._futures.pop(job_id, None)
        try:
            self.client.unpublish_dataset(f"{NS}-{job_id}")
        except KeyError:
            pass

    def status(self, job_id: str) -> JobStatus | None:
        """The job's live status (artifacts and results written to disk on the way), else the disk's."""
        with self._lock:
            st = self._live(job_id)
            if st is None:  # not on this scheduler: another one's (still beating), or lost with it
                return self._lose_orphan(self._stop_asked(read_status(self.job_dir(job_id))))
            self._stop_asked(st)
            if st.stopping and (st.id, st.created) not in self._stops_sent:
                self._stop_here(st)  # another process asked, through the job's folder: pass it on
            if st.active:
                self._sync_files(st)
                st = self._finish(st)
            else:  # ended (perhaps finished by another replica): hold no reference to its task
                self._futures.pop(job_id, None)
            if st.state == "queued":
                st.queue_position = self._queue_position(st)
            self._mirror(st)
            return st

    def _stop_asked(self, st: JobStatus | None) -> JobStatus | None:
        """``st`` with ``stop_requested`` from its folder's stop request, while it is active."""
        if st is not None and st.active:
            st.stop_requested = stop_requested(self.job_dir(st.id))
        return st

    def _lose_orphan(self, st: JobStatus | None) -> JobStatus | None:
        """A status from disk, of a job this scheduler does not know: failed as lost once nobody beats for it."""
        if st is not None and (why := lost_reason(st)):
            st.state, st.error = "failed", why
            self._mirror(st)
        return st

    def _sync_files(self, st: JobStatus) -> None:
        d = self.job_dir(st.id)
        for name, (version, once) in list(st.files.items()):
            if self._synced.get((st.id, name)) == version:
                continue
            data = self.client.get_metadata([NS, "files", st.id, name], None)
            if data is not None:
                atomic_write_bytes(_safe_path(d, name), data)
                if once:  # written once: the scheduler need not keep it
                    self.client.set_metadata([NS, "files", st.id, name], None)
            self._synced[(st.id, name)] = version

    def _claim_finish(self, job_id: str) -> bool:
        """True for one caller only, across every replica, per run of a job: the one that finishes it.

        A compare-and-set in the scheduler's event loop; ``submit`` clears the claim for a new run.
        The claim is a lease: if its holder died while finishing, another takes over after
        ``FINISH_LEASE`` seconds instead of leaving the job running forever.
        """
        keys, lease = [NS, "finisher", job_id], FINISH_LEASE

        def claim(dask_scheduler: Any = None) -> bool:  # a closure: pickled by value, the scheduler imports nothing
            held = dask_scheduler.get_metadata(keys=keys, default=None)
            now = time.time()
            if held and now - float(held) < lease:  # True (an older app's claim) reads as long expired
                return False
            dask_scheduler.set_metadata(keys=keys, value=now)
            return True

        return bool(self.client.run_on_scheduler(claim))

    def _finish(self, st: JobStatus) -> JobStatus:
        """Write a finished job's results, or fail a job whose worker is gone: one replica does it, once."""
        fut = self._future(st.id)
        if fut is not None and fut.status not in ("finished", "error", "lost", "cancelled"):
            return st  # still running
        if not self._claim_finish(st.id):  # another replica is finishing it (e.g. writing its checkpoint)
            return st
        try:
            return self._end(st, fut)
        except Exception:
            self.client.set_metadata([NS, "finisher", st.id], False)  # the next look tries again
            raise

    def _end(self, st: JobStatus, fut: Any) -> JobStatus:
        """``_finish``'s work, once this replica holds the claim."""
        if fut is None:
            now = self._live(st.id)
            if now is not None and not now.active:  # another replica finished it meanwhile
                return now
            st.state, st.error = "failed", "the job was lost by the scheduler"
        elif fut.status == "finished":
            res = fut.result()
            home = home_dir()
            for rel, data in (res.get("files") or {}).items():
                run = rel.endswith(".safetensors")  # a trained model: never replaces another run of the same name
                path = atomic_write_bytes(_safe_path(home, rel), data, exclusive=run)
                if run:  # where the app keeps it (maybe with a -2 suffix), not where the worker had it
                    res["extra"] = {**(res.get("extra") or {}), "checkpoint": str(path)}
                    res["message"] = f"saved {path.name}"
            if "traceback" in res:
                (self.job_dir(st.id) / "traceback.txt").write_text(res["traceback"])
            st.state, st.error = res["state"], res.get("error")
            st.message = res.get("message") or st.message
            st.extra = {**(st.extra or {}), **(res.get("extra") or {})}
            if st.state == "done":
                st.progress = 1.0
        elif fut.status in ("error", "lost"):
            st.state, st.error = "failed", f"the worker process died ({type(fut.exception()).__name__})"
        elif fut.status == "cancelled":
            st.state, st.message = "stopped", "stopped before it started"
        else:
            return st
        self._sync_files(st)  # the last artifacts, before anyone reads the final state
        self._set(st)
        self.client.set_metadata([NS, "files", st.id], {})
        self._forget(st.id)
        return st

    def _queue_position(self, st: JobStatus) -> int:
        waiting = [JobStatus.from_dict(d) for d in (self.client.get_metadata([NS, "status"], {}) or {}).values()]
        order = sorted(
            (w for w in waiting if w.state == "queued" and w.kind == st.kind),  # maps do not wait for trainings
            key=lambda w: (w.background, w.created),
        )
        return next((i + 1 for i, w in enumerate(order) if w.id == st.id), len(order) + 1)

    def _mirror(self, st: JobStatus) -> None:
        """Write the status to disk; an active one with a heartbeat (this process follows it through its scheduler)."""
        disk = read_status(self.job_dir(st.id))
        if st.active:
            now, last = time.time(), disk.heartbeat if disk else None
            fresh = last is not None and now - last < heartbeat_every()
            st.heartbeat, st.owner = (last, disk.owner) if fresh else (now, owner_name())  # type: ignore[union-attr]
        if disk is None or asdict(disk) != {**asdict(st), "queue_position": None}:
            atomic_write_json(self.job_dir(st.id) / "status.json", {**asdict(st), "queue_position": None})

    def stop(self, job_id: str) -> None:
        """Ask a job to stop; a running one keeps what it completed, a queued one never starts.

        The request is written to the job's folder as well: a job that another process runs on its
        own scheduler (an app server's LocalCluster, sharing only ``EXPLORER_HOME``) is stopped by
        that process at its next look (its watcher looks every 0.5 s). Until the worker reaches its
        next stop check, the status reads ``stopping``, in every process.
        """
        with self._lock:
            st = self._live(job_id)
            seen = st or read_status(self.job_dir(job_id))
            if seen is None or not seen.active:
                return
            atomic_write_json(self.job_dir(job_id) / STOP_FILE, {"by": owner_name(), "at": time.time()})
            if st is not None:
                self._stop_asked(st)
                self._stop_here(st)
                self._mirror(st)

    def _stop_here(self, st: JobStatus) -> None:
        """Pass a stop on to this scheduler: the worker sees the flag; a queued job is cancelled."""
        self._stops_sent.add((st.id, st.created))
        self.client.set_metadata([NS, "stop", st.id], True)
        if st.state == "queued":
            self._cancel(st.id)
            st.state, st.message = "stopped", "stopped before it started"
            self._set(st)

    def restart(self, job_id: str) -> str:
        """Run an ended job again under its id, from the spec its folder keeps (a lost or stopped one).

        A user asks for it, so it runs as interactive work, ahead of warm-ups, even if it was one.
        """
        st = self.status(job_id)
        if st is not None and st.active:
            return job_id
        try:
            spec = json.loads((self.job_dir(job_id) / "spec.json").read_text())
        except (OSError, ValueError) as exc:
            raise ExplorerError(f"job {job_id} cannot be started again: its spec is unreadable") from exc
        return self.submit(spec["kind"], spec["params"], job_id=job_id)

    def jobs(self, kind: str | None = None) -> list[JobStatus]:
        """Known jobs, live and earlier ones from disk (the lost ones failed as such), newest first."""
        live = self.client.get_metadata([NS, "status"], {}) or {}
        out = {d.name: s for d in self.root.iterdir() if d.is_dir() and (s := read_status(d))}
        for job_id, st in out.items():
            if job_id not in live:
                self._lose_orphan(st)
        for job_id, d in live.items():
            out[job_id] = JobStatus.from_dict(d)
        return sorted((s for s in out.values() if kind is None or s.kind == kind), key=lambda s: -s.created)

    def wait(self, job_id: str, timeout: float = 600, poll: float = 0.2) -> JobStatus:
        """Block until the job ends (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(job_id)
            if st is None or not st.active or time.monotonic() > deadline:
                return st  # type: ignore[return-value]
            time.sleep(poll)

    def _watch(self, interval: float = 0.5) -> None:
        """While jobs submitted here are active, finish them from a daemon thread, pages or not."""

        def loop() -> None:
            while True:
                time.sleep(interval)
                with self._lock:
                    pending = list(self._futures)
                    if not pending:
                        self._watcher = None
                        return
                for job_id in pending:
                    try:
                        self.status(job_id)
                    except Exception:  # noqa: BLE001 - a scheduler hiccup must not end the watch
                        pass

        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=loop, name="job-watcher", daemon=True)
                self._watcher.start()
