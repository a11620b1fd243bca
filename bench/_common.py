"""Helpers shared by the benchmarks: import path, timing statistics, table printing."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def stats_ms(samples: list[float]) -> dict[str, float]:
    """Median and p95 of samples given in seconds, in milliseconds."""
    s = sorted(samples)
    return {
        "median_ms": 1000 * statistics.median(s),
        "p95_ms": 1000 * s[min(len(s) - 1, int(0.95 * len(s)))],
        "n": len(s),
    }


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    """Rows of (what, figure, reference, ratio) as an aligned table."""
    head = ("benchmark", "figure", "reference", "ratio")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests so far, all cores (``steal`` in /proc/stat)."""
    import os

    with open("/proc/stat") as f:
        fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal ...
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def probe_ms(n: int = 1_000_000) -> float:
    """The host's speed now: ms for a fixed pure-Python loop, best of 3. On a shared VM it drifts by up to 2x
    between minutes; a ratio between two phases means something only where their probes agree."""
    import time

    best = float("inf")
    for _ in range(3):
        t, acc = time.perf_counter(), 0
        for i in range(n):
            acc += i * i
        best = min(best, time.perf_counter() - t)
    return 1000 * best


class CpuMeter:
    """CPU seconds used by groups of processes (matched by command line) while it runs (Linux /proc).

    A group is a pattern of the command line, or (pattern, pid): the descendants of ``pid`` (itself
    included) with the pattern in their command line or an ancestor's (a Dask nanny's worker child),
    so that on a shared machine this run's server counts and not another's. A process counts in the
    first group it matches. A thread samples every ``interval`` seconds, so a process
    that lives shorter than that is missed. Use as a context manager; ``seconds`` maps each group to
    its CPU seconds, ``wall`` is the span, ``steal`` the CPU seconds the hypervisor took, ``probe`` the
    host's speed (``probe_ms``) before and after.
    """

    def __init__(self, groups: dict[str, str | tuple[str, int]], interval: float = 0.5) -> None:
        self.groups, self.interval = groups, interval
        self.seconds: dict[str, float] = dict.fromkeys(groups, 0.0)
        self.wall = 0.0

    def _sample(self) -> dict[int, tuple[str, float]]:
        import os

        tick = os.sysconf("SC_CLK_TCK")
        procs = {}  # pid -> (command line, parent pid, CPU seconds)
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                procs[int(d.name)] = (cmd, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)  # utime + stime
            except (OSError, IndexError, ValueError):
                continue

        def chain(pid: int) -> list[int]:  # the process, its parent, ... up to init
            out = [pid]
            while len(out) < 64 and out[-1] in procs and procs[out[-1]][1] not in out:
                out.append(procs[out[-1]][1])
            return out

        out = {}
        for pid, (cmd, _, cpu) in procs.items():
            up = chain(pid)
            for g, spec in self.groups.items():
                if isinstance(spec, str):
                    hit = spec in cmd
                else:  # under root, and the pattern in its command line or an ancestor's below root
                    pat, root = spec
                    below = up[: up.index(root) + 1] if root in up else []
                    hit = any(pat in procs[p][0] for p in below if p in procs)
                if hit:
                    out[pid] = (g, cpu)
                    break
        return out

    def __enter__(self) -> CpuMeter:
        import threading
        import time

        self._first, self._last = self._sample(), {}
        self._t0, self._stop = time.monotonic(), threading.Event()
        self._steal0, self.probe = steal_seconds(), [probe_ms()]

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._last.update(self._sample())

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import time

        self._stop.set()
        self._thread.join()
        self._last.update(self._sample())
        self.wall = time.monotonic() - self._t0
        self.steal = steal_seconds() - self._steal0
        self.probe.append(probe_ms())
        for pid, (group, t) in self._last.items():
            self.seconds[group] += t - self._first.get(pid, (group, 0.0))[1]

    def summary(self) -> str:
        """'server 12.0 s, browsers 80.1 s ... of 2 cores x 60 s'."""
        import os

        parts = ", ".join(f"{g} {s:.1f} s" for g, s in self.seconds.items())
        host = (
            f"; host: {self.steal:.1f} s stolen by the hypervisor, probe {self.probe[0]:.0f} -> {self.probe[-1]:.0f} ms"
        )
        return f"CPU used: {parts}, of {os.cpu_count()} cores x {self.wall:.0f} s wall{host}"
