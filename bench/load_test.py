"""Load test: N concurrent sessions drag sliders, click map points and switch models while one more
session trains a model. Reports p50/p95 per action and the errors, against the same actions in a
single session on an idle server. Bounded: loopback only, fixed rounds.

Sessions act like people: they start ``--ramp`` seconds apart and pause ``--think`` seconds on
average (uniform 0.5-1.5x) before each timed action; the single-session reference is paced the same
way. ``--think 0`` hammers the server back to back.

``--clients protocol`` (the default) measures the server without browsers eating its CPU: one real
Chromium session is recorded once on a throwaway server (``wire_record.py``: the websocket frames it
sends per action), then every session is a ``wire_client.WireSession`` in this one asyncio process,
which opens the app as a browser does and replays those frames, with the frontend's message cache,
fragment auto-reruns and ``/media/`` GETs (``--script`` reuses a recording). Each action is timed at
the client (first frame sent to its run finished and its media fetched) and is an error if its run
does not finish, shows an exception, misses what it must show (the map, a clicked point's
reconstruction, the new model in the sidebar) or a media GET fails. ``--clients browser`` drives
headless Chromiums instead, at ``nice 19`` (on this 2-core machine they use ten times the server's
CPU); it times each action in the browser until its result is drawn.

Each action is also timed at the server, by its own clock (``bench/timed_streamlit.py``, a launcher
that logs each run): from reading the rerun message to queueing the ``script_finished`` that ends the
session's last run of the action (runs only auto-reruns asked for are left out), so a slow client
cannot inflate it. With ``--url`` the server is not ours to launch: the browser figure then falls back
to the websocket frames it sees, and the CPU figures cover this machine only. Sessions: 1, then ``-n``
and each of ``--more``, those with a training run beside them. The CPU used by the server, its Dask
workers and the clients is printed for each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import wire_record
from _common import CpuMeter, print_table
from browser_actions import EXC, ServerClock, server_span, settle, start_training, user_actions
from slider_latency import wait_jobs_idle
from timed_streamlit import read_runs
from wire_client import WireSession

from explorer.jobstate import read_status
from explorer.replicas import COOKIE
from tests.browser import CHROMIUM, CHROMIUM_FLAGS, ROOT, serve

SERVER = "server: "  # results under SERVER + action are the server-side times
RUN_LOG = "runs.jsonl"
SCRIPT = "wire-script.json"  # the recorded frames, in the recording server's home
WINDOWS = "windows"  # results[WINDOWS]: (action, who: .session, t0, t1) of each action that succeeded


async def _nice_browsers(pin: bool, interval: float = 0.5) -> None:
    """Keep every Chromium process this benchmark started at nice 19, new renderers included.

    (A launcher running ``nice 19 chromium`` is not enough: Chromium, run as root, raises its
    browser process's priority itself.) Nice alone does not keep dozens of renderer threads off the
    server's core, since the scheduler weighs threads, not processes; with ``pin`` the browsers, the
    Playwright driver and this process run on the last core, and the server with its Dask workers on
    the others, as if the browsers were on other machines.
    """
    cores = sorted(os.sched_getaffinity(0))
    pin = pin and len(cores) > 1
    if pin:
        os.sched_setaffinity(0, cores[-1:])
    while True:
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(proc.cmdline())
                client = "chromium" in proc.name() or "playwright" in cmd
                if client and proc.nice() != 19:
                    proc.nice(19)
                if pin:
                    want = cores[-1:] if client else cores[:-1]
                    if proc.cpu_affinity() != want:
                        proc.cpu_affinity(want)
        await asyncio.sleep(interval)


def _fail(errors: list, name: str, exc: BaseException) -> None:
    errors.append(f"{name}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}")


async def _timed(results: dict, errors: list, name: str, coro, page, clock: ServerClock) -> None:
    """Time one action in the browser (until its result is drawn), then let its script run settle.

    The window kept for the server's figure runs from the action to the settled page, since the
    browser may draw the result (a slider decoded in the browser) before the server's run ends.
    """
    t0 = time.monotonic()
    try:
        await coro
        results.setdefault(name, []).append(time.monotonic() - t0)
        await settle(page, clock, t0)
        results.setdefault(WINDOWS, []).append((name, clock, t0, time.monotonic()))
    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
        _fail(errors, name, exc)


async def session(browser, url: str, rounds: int, results: dict, errors: list, think: float, delay: float) -> None:
    """One user in a browser: the untimed steps (load, open the map) at once, the timed ones after a pause."""
    rng = random.Random(delay)
    await asyncio.sleep(delay)
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    clock = ServerClock(page)
    try:
        for name, timed, act, _ in user_actions(page, clock, url, rounds):
            if not timed:
                await act()
                continue
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            await _timed(results, errors, name, act(), page, clock)
        if await page.evaluate(EXC):
            errors.append("an exception box is on the page")
    except Exception as exc:  # noqa: BLE001
        _fail(errors, "session", exc)
    finally:
        await ctx.close()


async def wire_session(url: str, script: dict, results: dict, errors: list, think: float, delay: float) -> None:
    """One user over the websocket protocol: the recorded actions replayed, each timed (first frame sent to
    its run finished and its media fetched), the timed ones after a pause as in the browser."""
    rng = random.Random(delay)
    await asyncio.sleep(delay)
    s = WireSession(url)
    try:
        await s.open("traverse", script["static"])
        for action in script["user"]:
            if action["timed"]:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            try:
                out = await s.replay(action)
            except Exception as exc:  # noqa: BLE001
                _fail(errors, action["name"], exc)
                continue
            errors += [f"{action['name']}: {e}" for e in out.errors]
            if not out.errors:
                results.setdefault(action["name"], []).append(out.seconds)
                results.setdefault(WINDOWS, []).append((action["name"], s.dec, out.t0, out.t1))
    except Exception as exc:  # noqa: BLE001
        _fail(errors, "session", exc)
    finally:
        await s.close()


async def trainer(browser, url: str, epochs: int) -> None:
    page = await (await browser.new_context()).new_page()
    await start_training(page, url, epochs)


async def wire_trainer(url: str, script: dict, errors: list) -> WireSession:
    """Replay the recorded /train visit that starts a training run; the session stays open (and polls) until closed."""
    s = WireSession(url)
    await s.open("train", script["static"])
    for action in script["trainer"]:
        errors += [f"trainer: {e}" for e in (await s.replay(action)).errors]
    return s


def _log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _server(url: str | None, prefix: str = "load-home-", replicas: int = 1) -> Iterator[tuple[str, Path | None]]:
    """The app under test: the one at ``url``, or a fresh one on loopback with its own home and run log
    (with ``replicas`` > 1, that many servers behind ``explorer serve --replicas``' sticky proxy)."""
    if url:
        yield url.rstrip("/"), None
        return
    home = Path(tempfile.mkdtemp(prefix=prefix))
    env = {"EXPLORER_HOME": str(home), "EXPLORER_RUN_LOG": str(home / RUN_LOG)}
    # one numba cache for every server of the run (as the tests share one): each fresh home would compile UMAP again
    env["NUMBA_CACHE_DIR"] = os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    launcher = [sys.executable, str(ROOT / "bench" / "timed_streamlit.py")]
    if replicas > 1:
        launcher = [sys.executable, str(ROOT / "bench" / "replica_server.py"), "--replicas", str(replicas)]
    with serve(env=env, launcher=launcher, timeout=240) as local:
        yield local, home


def record_script(rounds: int) -> Path:
    """Record one browser session's frames (``wire_record.py``) on a throwaway app here (it starts a training
    run; widget ids do not depend on the server, so the frames replay on any server of this app); the path."""
    with _server(None, "load-record-") as (url, home):
        script = asyncio.run(wire_record.record(url, rounds))
        wire_record.save(script, path := home / SCRIPT)
    _log(f"recorded {sum(len(a['frames']) for a in script['user'])} frames in {path}")
    return path


def _server_times(results: dict, home: Path | None) -> None:
    """Turn each action's window into its time at the server (the server's log, else the browser's websocket)."""
    runs = read_runs(str(home / RUN_LOG)) if home and (home / RUN_LOG).exists() else None
    for name, who, t0, t1 in results.pop(WINDOWS, []):
        if runs is not None:
            server = server_span(runs.get(who.session, []), t0, t1)
        else:
            server = who.span(t0, t1) if isinstance(who, ServerClock) else None
        if server is not None:
            results.setdefault(SERVER + name, []).append(server)


async def _warm(url: str, script: dict | None, browser, replicas: int = 1) -> None:  # noqa: ANN001
    """Compute the default map once: a browser opening /latent-map, or the script's actions replayed once on each
    replica (each has its own caches: a page's first load on a cold one takes seconds, a model's first switch
    loads it), so the timed phases measure warm servers."""
    if script is None:
        warm = await (await browser.new_context()).new_page()
        await warm.goto(f"{url}/latent-map")
        await warm.wait_for_selector(".js-plotly-plot", timeout=180_000)
        await warm.context.close()
        return
    sessions: list[WireSession] = []
    for _ in range(4 * replicas):  # the proxy picks the replica; sessions stay open until each replica has one
        sessions.append(s := WireSession(url, timeout=180))
        await s.open("traverse")
        for action in script["user"]:  # every action once: its first run on a replica loads what later ones reuse
            await s.replay(action)
        if len({w.cookies.get(COOKIE, "") for w in sessions}) >= replicas:
            break
    for s in sessions:
        await s.close()


async def run_async(
    n: int,
    rounds: int,
    train: bool,
    think: float = 1.0,
    ramp: float = 1.0,
    url: str | None = None,
    pin: bool = False,
    script: dict | None = None,
    one_at_a_time: bool = False,
    replicas: int = 1,
) -> tuple[dict, list, str]:
    """One load: ``n`` sessions (browsers, or protocol clients replaying ``script``), with a training run.

    ``one_at_a_time``: the ``n`` sessions run one after another, not together (the 1-session reference,
    repeated so that its p95 comes from as many samples as the loaded run's)."""
    from playwright.async_api import async_playwright

    results: dict[str, list[float]] = {}
    errors: list[str] = []
    with _server(url, replicas=replicas) as (url, home):
        # this run's processes only: the machine may run other apps and their workers
        server = next((p.pid for p in psutil.Process().children() if "--server.port" in " ".join(p.cmdline())), None)
        groups: dict = {"workers": ("dask_worker", server), "server": ("", server)} if server else {}
        groups["clients"] = ("", os.getpid())  # this process and its children (Playwright, Chromium) but the server
        async with async_playwright() as pw:
            browser, nicer, trainee = None, None, None
            if script is None:
                nicer = asyncio.create_task(_nice_browsers(pin))
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            await _warm(url, script, browser, replicas)
            while home:  # the warm-up maps are queued one after another: idle twice, 5 s apart
                wait_jobs_idle(home)
                await asyncio.sleep(5)
                if not any((s := read_status(d)) and s.active for d in (home / "jobs").glob("*")):
                    break
            _log(f"server warm; {n} session(s){' + training' if train else ''}")
            if train:
                if script is None:
                    await trainer(browser, url, epochs=40)
                else:
                    trainee = await wire_trainer(url, script, errors)
                await asyncio.sleep(3)
            gap = 0.0 if one_at_a_time else ramp
            if script is None:
                users = [session(browser, url, rounds, results, errors, think, i * gap) for i in range(n)]
            else:
                users = [wire_session(url, script, results, errors, think, i * gap) for i in range(n)]
            with CpuMeter(groups) as cpu:
                if one_at_a_time:
                    for user in users:
                        await user
                else:
                    await asyncio.gather(*users)
            _log(cpu.summary())
            if trainee is not None:
                await trainee.close()
            if browser is not None:
                await browser.close()
                nicer.cancel()
        _server_times(results, home)
    return results, errors, cpu.summary()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def _p(xs: list[float]) -> str:
    return f"p50 {1000 * statistics.median(xs):.0f} ms, p95 {pct(xs, 0.95):.0f} ms (n={len(xs)})" if xs else "-"


def run(
    n: int = 8,
    rounds: int = 12,
    think: float = 1.0,
    ramp: float = 1.0,
    url: str | None = None,
    more: tuple[int, ...] = (16,),
    pin: bool = False,
    clients: str = "protocol",
    script: Path | None = None,
    replicas: int = 1,
) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """Rows for the table (server-side, then client-side, per action and load), then the notes."""
    tape = None
    if clients == "protocol":
        tape = wire_record.load(script or record_script(rounds))
    pace = {"think": think, "ramp": ramp, "url": url, "pin": pin, "script": tape, "replicas": replicas}
    # the reference: one session at a time, n of them in turn, so both p95s rest on as many samples
    single, err1, cpu1 = asyncio.run(run_async(n, rounds, train=False, one_at_a_time=True, **pace))
    loads = {k: asyncio.run(run_async(k, rounds, train=True, **pace)) for k in dict.fromkeys((n, *more))}
    client = "browser" if tape is None else "client"
    rows = []
    for action in (a for a in single if not a.startswith(SERVER)):
        for where, key in (("server", SERVER + action), (client, action)):
            s = single.get(key, [])
            for k, (many, _, _) in loads.items():
                m = many.get(key, [])
                ratio = f"{pct(m, 0.95) / pct(s, 0.95):.2f}x p95" if m and s else "-"
                rows.append(
                    (f"load ({where}): {action}", f"{k} sessions + training: {_p(m)}", f"1 session: {_p(s)}", ratio)
                )
    for k, (_, errs, _) in loads.items():
        rows.append(("load: errors", f"{len(errs)} with {k} sessions + training", f"{len(err1)} with 1 session", "-"))
    who = "browsers at nice 19" if tape is None else "protocol clients (one asyncio process, websocket replay)"
    notes = [
        f"think time {think:g} s, sessions {ramp:g} s apart, {who}"
        + (" on the last core, the server and its workers on the others" if pin and tape is None else "")
        + f", app {url or 'on this machine'}"
        + (f", {replicas} replicas behind explorer serve's sticky proxy" if replicas > 1 and not url else ""),
        f"1 session at a time ({n} in turn): {cpu1}",
    ] + [f"{k} sessions + training: {cpu}" for k, (_, _, cpu) in loads.items()]
    return rows, notes + [f"error: {e}" for e in err1 + [e for _, errs, _ in loads.values() for e in errs]]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=8, help="concurrent sessions")
    ap.add_argument(
        "--rounds", type=int, default=12, help="times each session does each action (12: 96 samples at 8 sessions)"
    )
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between a session's actions, seconds")
    ap.add_argument("--ramp", type=float, default=1.0, help="seconds between session starts")
    ap.add_argument("--url", help="drive the app at this URL instead of starting one here")
    ap.add_argument("--more", default="16", help="more session counts, comma-separated ('' for none)")
    ap.add_argument("--pin", action="store_true", help="browsers on the last core, the server on the others")
    ap.add_argument("--clients", choices=("protocol", "browser"), default="protocol", help="what drives the sessions")
    ap.add_argument("--script", type=Path, help="a recording to replay (protocol); default: record one first")
    ap.add_argument("--replicas", type=int, default=1, help="app servers behind explorer serve's proxy (default 1)")
    a = ap.parse_args()
    more = tuple(int(k) for k in a.more.split(",") if k)
    rows, notes = run(a.n, a.rounds, a.think, a.ramp, a.url, more, a.pin, a.clients, a.script, a.replicas)
    print_table(rows)
    for line in notes[:25]:
        print(line)
