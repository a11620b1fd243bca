"""Load test: N concurrent headless sessions drag sliders, click map points and switch models
while one more session trains a model. Reports p50/p95 per action and the errors, against
the same actions in a single session on an idle server. Bounded: loopback only, fixed rounds.

Sessions act like people: they start ``--ramp`` seconds apart and pause ``--think`` seconds on
average (uniform 0.5-1.5x) between actions; the single-session reference is paced the same way.
``--think 0`` hammers the server back to back. The CPU used by the server, its workers and the
browsers is printed too: here the browsers share the server's cores, in a classroom they do not.
``--url`` drives an app that already runs elsewhere, so that the browsers and the server do not
share a machine; the CPU figures then cover this machine only.

Each action is timed twice: in the browser (until the result is drawn) and at the server: from
the moment the server reads the rerun message the browser sends to the moment it queues the
``script_finished`` message that ends that session's last run of the action. The server keeps that
clock itself (``bench/timed_streamlit.py``, a launcher that logs each run), so a slow browser cannot
inflate it; browsers also run at ``nice 19``. With ``--url`` the server is not ours to launch, and
the figure falls back to the websocket frames seen by the browser. Sessions: 1, then ``-n`` and
each of ``--more``, those with a training run beside them.
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

from _common import CpuMeter, print_table
from slider_latency import wait_jobs_idle
from timed_streamlit import read_runs

from tests.browser import CHROMIUM, CHROMIUM_FLAGS, DECODED_SRC_JS, LATENT_SLIDER, ROOT, SRC_CHANGED_JS, serve
from tests.plotly_click import PIXEL_JS

SERVER = "server: "  # results under SERVER + action are the server-side times
RUN_LOG = "runs.jsonl"
WINDOWS = "windows"  # results[WINDOWS]: (action, clock, t0, t1) of each action that succeeded
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
EXC = "() => document.querySelectorAll('[data-testid=\"stException\"]').length"


class ServerClock:
    """A page's Streamlit websocket: its session id, and when the browser sent and saw a run finish."""

    def __init__(self, page) -> None:
        self.sent: list[float] = []
        self.finished: list[float] = []
        self.session = ""
        page.on("websocket", self._attach)

    def _attach(self, ws) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("framesent", lambda _: self.sent.append(time.monotonic()))
            ws.on("framereceived", self._received)

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, (bytes, bytearray)):
            msg = ForwardMsg()
            with contextlib.suppress(Exception):
                msg.ParseFromString(bytes(payload))
                kind = msg.WhichOneof("type")
                if kind == "script_finished":
                    self.finished.append(time.monotonic())
                elif kind == "new_session" and msg.new_session.initialize.session_id:
                    self.session = msg.new_session.initialize.session_id

    def span(self, t0: float, t1: float, runs: dict[str, list[tuple[float, float]]] | None = None) -> float | None:
        """Seconds from the first message sent after t0 to the last run that ended before t1.

        With ``runs`` (the server's own log, by session) both ends are the server's clock.
        """
        if runs is not None:
            mine = [(a, b) for a, b in runs.get(self.session, []) if a >= t0 and b <= t1]
            return mine[-1][1] - mine[0][0] if mine else None
        sent = next((t for t in self.sent if t >= t0), None)
        ends = [t for t in self.finished if sent is not None and sent <= t <= t1]
        return ends[-1] - sent if ends else None


async def _nice_browsers(pin: bool, interval: float = 0.5) -> None:
    """Keep every Chromium process this benchmark started at nice 19, new renderers included.

    (A launcher running ``nice 19 chromium`` is not enough: Chromium, run as root, raises its
    browser process's priority itself.) Nice alone does not keep dozens of renderer threads off the
    server's core, since the scheduler weighs threads, not processes; with ``pin`` the browsers, the
    Playwright driver and this process run on the last core, and the server with its Dask workers on
    the others, as if the browsers were on other machines.
    """
    import psutil

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


async def _idle(page, timeout: float = 60_000) -> None:
    await page.wait_for_function(IDLE, timeout=timeout)


async def _settle(page, clock: ServerClock, t0: float, timeout: float = 60.0) -> None:
    """Wait until a script run that the browser asked for after t0 has finished, and the page is idle."""
    deadline = time.monotonic() + timeout
    while True:
        sent = next((t for t in clock.sent if t >= t0), None)
        if sent is not None and any(t >= sent for t in clock.finished):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("no script run followed the action")
        await asyncio.sleep(0.02)
    await _idle(page)


async def _timed(results: dict, errors: list, name: str, coro, page, clock: ServerClock) -> None:
    """Time one action in the browser (until its result is drawn), then let its script run settle.

    The window kept for the server's figure runs from the action to the settled page, since the
    browser may draw the result (a slider decoded in the browser) before the server's run ends.
    """
    t0 = time.monotonic()
    try:
        await coro
        results.setdefault(name, []).append(time.monotonic() - t0)
        await _settle(page, clock, t0)
        results.setdefault(WINDOWS, []).append((name, clock, t0, time.monotonic()))
    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
        errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")


async def _slider(page) -> None:
    before = await page.evaluate(DECODED_SRC_JS)
    await page.keyboard.press("ArrowRight")
    await page.wait_for_function(SRC_CHANGED_JS, arg=before, timeout=30_000)


async def _mouse_drag(page, moves: int = 20) -> None:
    """A mouse drag across the top latent slider (decoded in the browser), then the release's rerun."""
    slider = page.locator(LATENT_SLIDER).first
    box = await slider.bounding_box()
    frac = await slider.evaluate("e => (e.value - e.min) / (e.max - e.min)")
    a, b = (0.7, 0.3) if frac > 0.5 else (0.3, 0.7)  # away from where the thumb is, so the image changes
    x, y = box["x"] + box["width"] * a, box["y"] + box["height"] / 2
    before = await page.evaluate(DECODED_SRC_JS)
    await page.mouse.move(x, y)
    await page.mouse.down()
    for i in range(1, moves + 1):
        await page.mouse.move(x + i * box["width"] * (b - a) / moves, y)
    await page.wait_for_function(SRC_CHANGED_JS, arg=before, timeout=30_000)
    await page.mouse.up()


async def _click_map(page, clock: ServerClock, k: int) -> None:
    """Click a point; done when the run it starts has finished and the decoded point is shown."""
    t0 = time.monotonic()
    xy = await page.evaluate(PIXEL_JS, [str(k % 10), 1 + k])
    await page.mouse.click(xy[0], xy[1])
    await _settle(page, clock, t0)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stImageCaption\"]')]"
        ".some(e => e.innerText === 'reconstruction')",
        timeout=30_000,
    )


async def _switch_model(page, name: str, caption: str) -> None:
    """Pick another model; done when the sidebar describes it and the page shows its map (or the map's progress)."""
    await page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    await page.get_by_role("option", name=name, exact=True).click()
    await page.wait_for_function(
        f"() => document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('{caption}')", timeout=60_000
    )
    await page.wait_for_selector(".js-plotly-plot, [data-testid='stProgress'], [data-testid='stAlert']", timeout=60_000)


async def session(browser, url: str, rounds: int, results: dict, errors: list, think: float, delay: float) -> None:
    rng = random.Random(delay)

    async def pause() -> None:
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    await asyncio.sleep(delay)
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    clock = ServerClock(page)
    try:
        await page.goto(f"{url}/traverse")
        await page.wait_for_function(DECODED_SRC_JS, timeout=120_000)
        await page.locator(LATENT_SLIDER).first.focus()
        for _ in range(rounds):
            await pause()
            await _timed(results, errors, "drag slider (/traverse)", _slider(page), page, clock)
        for _ in range(rounds):
            await pause()
            await _timed(results, errors, "mouse drag, live decode (/traverse)", _mouse_drag(page), page, clock)
        await page.locator("[data-testid='stSidebarNav'] a", has_text="Latent map").click()
        await page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        await _idle(page)
        for k in range(rounds):
            await pause()
            await _timed(results, errors, "click map point", _click_map(page, clock, k), page, clock)
        for name, caption in (("mnist-vae-mlp-z16", "z=16"), ("mnist-vae-mlp-z2", "z=2")):
            await pause()
            await _timed(results, errors, "switch model", _switch_model(page, name, caption), page, clock)
        if await page.evaluate(EXC):
            errors.append("an exception box is on the page")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"session: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    finally:
        await ctx.close()


async def trainer(browser, url: str, epochs: int) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{url}/train")
    await _idle(page)
    ep = page.get_by_label("Epochs")
    await ep.fill(str(epochs))
    await ep.press("Enter")
    await _idle(page)
    await page.get_by_role("button", name="Start training").click()


def _log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[tuple[str, Path | None]]:
    """The app under test: the one at ``url``, or a fresh one on loopback with its own home and run log."""
    if url:
        yield url.rstrip("/"), None
        return
    home = Path(tempfile.mkdtemp(prefix="load-home-"))
    env = {"EXPLORER_HOME": str(home), "EXPLORER_RUN_LOG": str(home / RUN_LOG)}
    with serve(env=env, launcher=[sys.executable, str(ROOT / "bench" / "timed_streamlit.py")]) as local:
        yield local, home


def _server_times(results: dict, home: Path | None) -> None:
    """Turn each action's window into its time at the server (the server's log, else the websocket)."""
    runs = read_runs(str(home / RUN_LOG)) if home and (home / RUN_LOG).exists() else None
    for name, clock, t0, t1 in results.pop(WINDOWS, []):
        if (server := clock.span(t0, t1, runs)) is not None:
            results.setdefault(SERVER + name, []).append(server)


async def run_async(
    n: int, rounds: int, train: bool, think: float = 1.0, ramp: float = 1.0, url: str | None = None, pin: bool = False
) -> tuple[dict, list, str]:
    from playwright.async_api import async_playwright

    results: dict[str, list[float]] = {}
    errors: list[str] = []
    with _server(url) as (url, home):
        async with async_playwright() as pw:
            nicer = asyncio.create_task(_nice_browsers(pin))
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            warm = await (await browser.new_context()).new_page()  # compute the default map once
            await warm.goto(f"{url}/latent-map")
            await warm.wait_for_selector(".js-plotly-plot", timeout=180_000)
            await warm.context.close()
            if home:
                wait_jobs_idle(home)
            _log(f"server warm; {n} session(s){' + training' if train else ''}")
            if train:
                await trainer(browser, url, epochs=40)
                await asyncio.sleep(3)
            groups = {"server": "app.py --server.", "workers": "dask_worker", "browsers": "chromium"}
            with CpuMeter(groups) as cpu:
                await asyncio.gather(
                    *(session(browser, url, rounds, results, errors, think, i * ramp) for i in range(n))
                )
            _log(cpu.summary())
            await browser.close()
            nicer.cancel()
        _server_times(results, home)
    return results, errors, cpu.summary()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def _p(xs: list[float]) -> str:
    return f"p50 {1000 * statistics.median(xs):.0f} ms, p95 {pct(xs, 0.95):.0f} ms" if xs else "-"


def run(
    n: int = 8,
    rounds: int = 6,
    think: float = 1.0,
    ramp: float = 1.0,
    url: str | None = None,
    more: tuple[int, ...] = (16,),
    pin: bool = False,
) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """Rows for the table (server-side, then browser-side, per action and load), then the notes."""
    pace = {"think": think, "ramp": ramp, "url": url, "pin": pin}
    single, err1, cpu1 = asyncio.run(run_async(1, rounds, train=False, **pace))
    loads = {k: asyncio.run(run_async(k, rounds, train=True, **pace)) for k in dict.fromkeys((n, *more))}
    rows = []
    for action in (a for a in single if not a.startswith(SERVER)):
        for where, key in (("server", SERVER + action), ("browser", action)):
            s = single.get(key, [])
            for k, (many, _, _) in loads.items():
                m = many.get(key, [])
                ratio = f"{pct(m, 0.95) / pct(s, 0.95):.2f}x p95" if m and s else "-"
                rows.append(
                    (f"load ({where}): {action}", f"{k} sessions + training: {_p(m)}", f"1 session: {_p(s)}", ratio)
                )
    for k, (_, errs, _) in loads.items():
        rows.append(("load: errors", f"{len(errs)} with {k} sessions + training", f"{len(err1)} with 1 session", "-"))
    notes = [
        f"think time {think:g} s, sessions {ramp:g} s apart, browsers at nice 19"
        + (" on the last core, the server and its workers on the others" if pin else "")
        + f", app {url or 'on this machine'}",
        f"1 session: {cpu1}",
    ] + [f"{k} sessions + training: {cpu}" for k, (_, _, cpu) in loads.items()]
    return rows, notes + [f"error: {e}" for e in err1 + [e for _, errs, _ in loads.values() for e in errs]]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=8, help="concurrent sessions")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between a session's actions, seconds")
    ap.add_argument("--ramp", type=float, default=1.0, help="seconds between session starts")
    ap.add_argument("--url", help="drive the app at this URL instead of starting one here")
    ap.add_argument("--more", default="16", help="more session counts, comma-separated ('' for none)")
    ap.add_argument("--pin", action="store_true", help="browsers on the last core, the server on the others")
    a = ap.parse_args()
    rows, notes = run(a.n, a.rounds, a.think, a.ramp, a.url, tuple(int(k) for k in a.more.split(",") if k), a.pin)
    print_table(rows)
    for line in notes[:25]:
        print(line)
