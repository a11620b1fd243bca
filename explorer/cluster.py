"""The Dask cluster that runs jobs: an existing scheduler, or a LocalCluster started once per process.

With ``$EXPLORER_SCHEDULER=tcp://host:port`` (or ``--scheduler`` on the CLI) jobs go to that
cluster. Otherwise the first call to ``get_client`` starts a LocalCluster on 127.0.0.1: worker
processes with one thread each, at a lower CPU priority, kept alive so torch and numba stay
warm. Nothing starts at import time; the cluster is closed when the process exits.

Worker resources: ``train`` (one per two cores: at most that many trainings at once) and
``background`` (warm-ups run only where it is declared, leaving the other workers free for what
a user waits on). On an existing cluster, declare them with ``dask worker --resources train=1``.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from typing import Any

SCHEDULER_ENV = "EXPLORER_SCHEDULER"
WORKER_NICE = 10
_lock = threading.Lock()
_clients: dict[str, Any] = {}  # address ("" = the local cluster) -> Client
_cluster: Any = None
_workers: list[subprocess.Popen] = []  # the local cluster's worker programs
_exiting = threading.Event()  # set at interpreter exit: threads still using the cluster end quietly
_exit_hook: list[bool] = []  # [True] once the exit hook is registered


class ClusterClosed(RuntimeError):
    """Asked for a client while the process exits."""


def exiting() -> bool:
    """True once the process has begun to exit (its cluster is closing or closed)."""
    return _exiting.is_set()


def _at_exit() -> None:
    _exiting.set()
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its jobs dying with it are no news
    shutdown()


def scheduler_address(explicit: str | None = None) -> str:
    """The scheduler to use: ``explicit``, else $EXPLORER_SCHEDULER, else "" (a local cluster)."""
    return explicit or os.environ.get(SCHEDULER_ENV, "")


def _worker_setup() -> Any:
    """A worker plugin: lower priority, one torch thread, numba's cache in the worker's home."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class WorkerSetup(WorkerPlugin):
        name = "explorer-worker-setup"

        def setup(self, worker: Any) -> None:
            try:
                os.nice(max(0, WORKER_NICE - os.nice(0)))  # idempotent: each client registers it again
            except OSError:
                pass
            import torch

            torch.set_num_threads(1)
            from explorer.storage import home_dir

            os.environ.setdefault("NUMBA_CACHE_DIR", str(home_dir() / "numba"))
            if not getattr(worker, "_explorer_warm", False):  # once per worker process, off its event loop
                worker._explorer_warm = True
                from explorer.analysis.reducers import warm_up

                threading.Thread(target=warm_up, name="explorer-warm-up", daemon=True).start()

    return WorkerSetup()


def local_worker_resources(cores: int | None = None) -> list[dict[str, float]]:
    """Per-worker resources for a LocalCluster of one single-threaded worker per core (at least 2)."""
    cores = cores or os.cpu_count() or 2
    n = max(2, cores)
    trains = int(os.environ.get("EXPLORER_MAX_JOBS", 0)) or max(1, cores // 2)
    out = [{"train": 1.0} if i < trains else {} for i in range(n)]
    out[-1]["background"] = 1.0  # warm-ups wait on the last worker only
    return out


def _start_local() -> Any:
    """A scheduler in this process and ``dask worker`` subprocesses (each with a nanny) on 127.0.0.1.

    Workers are separate programs, not multiprocessing children: Streamlit swaps ``__main__``
    for the page it runs, which multiprocessing's spawn would re-import in every child.
    """
    import dask
    from distributed import Client, Scheduler, SpecCluster

    # A job whose worker died is failed, not silently run again elsewhere.
    dask.config.set({"distributed.scheduler.allowed-failures": 0})
    global _cluster
    _cluster = SpecCluster(
        scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1", "port": 0, "dashboard_address": "127.0.0.1:0"}},
        workers={},
        silence_logs=30,
        name="latent-explorer",
    )
    from explorer.storage import home_dir

    logs = home_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    resources = local_worker_resources()
    for i, res in enumerate(resources):
        spec = ",".join(f"{k}={v:g}" for k, v in res.items())
        cmd = [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            _cluster.scheduler_address,
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--dashboard-address",
            "127.0.0.1:0",
            "--no-dashboard",
            "--name",
            f"explorer-{i}",
            "--death-timeout",
            "60",
            *(["--resources", spec] if spec else []),
        ]
        with open(logs / f"worker-{i}.log", "ab") as log:
            _workers.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    client = Client(_cluster, set_as_default=False)
    client.wait_for_workers(len(resources), timeout=300)
    return client


def get_client(address: str | None = None) -> Any:
    """The process's Dask client for ``address`` (see ``scheduler_address``); started on first use."""
    addr = scheduler_address(address)
    with _lock:
        if _exiting.is_set():
            raise ClusterClosed("the process is exiting")
        client = _clients.get(addr)
        if client is not None and client.status == "running":
            return client
        import distributed  # noqa: F401 - imported before our exit hook is registered, so ours runs first

        if not _exit_hook:
            _exit_hook.append(True)
            # Before the interpreter joins threads: later, concurrent.futures refuses the work that
            # distributed offloads while it closes ("cannot schedule new futures after shutdown").
            getattr(threading, "_register_atexit", atexit.register)(_at_exit)
        if addr:
            from distributed import Client

            client = Client(addr, set_as_default=False, timeout=20)
        else:
            client = _start_local()
        client.register_plugin(_worker_setup())
        _clients[addr] = client
        return client


def shutdown() -> None:
    """Close every client, then the local cluster if this process started one.

    At exit, a thread may hold the lock while it starts the cluster: after a second this goes
    ahead without it (that thread then fails, and ``exiting()`` tells it to keep quiet).
    """
    global _cluster
    locked = _lock.acquire(timeout=1 if _exiting.is_set() else -1)
    try:
        for client in _clients.values():
            try:
                client.close(timeout=5)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        _clients.clear()
        for proc in _workers:
            proc.terminate()  # the nanny closes its worker
        for proc in _workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        _workers.clear()
        if _cluster is not None:
            try:
                _cluster.close(timeout=10)
            except Exception:  # noqa: BLE001
                pass
            _cluster = None
    finally:
        if locked:
            _lock.release()


def worker_resources(client: Any) -> set[str]:
    """Resource names that some worker of the cluster declares."""
    info = client.scheduler_info(n_workers=-1)
    return {r for w in info.get("workers", {}).values() for r in (w.get("resources") or {})}
