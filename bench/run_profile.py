"""Where the app server's time goes, per user action: wall, CPU and the top functions of each script run.

``python bench/run_profile.py`` starts the app through this same file as a launcher
(``python bench/run_profile.py run app.py ...``), which wraps every script run of the server in a
per-thread CPU clock (``time.thread_time``) and, with ``--cprofile``, in ``cProfile``; one headless
Chromium session then drives the load test's four actions (a keyboard slider step and a mouse drag on
/traverse, map clicks on /latent-map, model switches in the sidebar), and it prints per action the
script runs' wall time, script-thread CPU time, the server process's CPU over the action, and with
``--cprofile`` the functions with the most cumulative time over all of that action's runs.
CPU time, not wall time, is the figure to trust on a shared machine. cProfile slows Python code
down, so time without ``--cprofile`` and look at the functions with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

RUNS = "runs.jsonl"  # one line per script run, written by the launcher
PROFILES = "profiles"  # one .prof per script run, with --cprofile


def install(folder: str, profile: bool) -> None:
    """Patch ``ScriptRunner._run_script`` to log each run's clocks (and profile) into ``folder``."""
    import cProfile

    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    out = Path(folder)
    (out / PROFILES).mkdir(parents=True, exist_ok=True)
    log = open(out / RUNS, "a", buffering=1)  # noqa: SIM115 - open for the server's lifetime, line-buffered
    lock, count = threading.Lock(), [0]
    run_script = ScriptRunner._run_script

    def timed_run_script(self: ScriptRunner, rerun_data) -> None:  # noqa: ANN001
        with lock:
            count[0] += 1
            n = count[0]
        prof = cProfile.Profile(time.thread_time) if profile else None  # CPU, not wall
        t0, c0, p0 = time.monotonic(), time.thread_time(), time.process_time()
        if prof:
            prof.enable()
        try:
            run_script(self, rerun_data)
        finally:
            if prof:
                prof.disable()
                prof.dump_stats(str(out / PROFILES / f"{n}.prof"))
            line = {
                "n": n,
                "session": self._session_id,
                "t0": t0,
                "t1": time.monotonic(),
                "cpu": time.thread_time() - c0,
                "proc": time.process_time() - p0,
                "fragment": bool(rerun_data.fragment_id_queue),
            }
            log.write(json.dumps(line) + "\n")

    ScriptRunner._run_script = timed_run_script


def read_runs(folder: Path) -> list[dict]:
    path = folder / RUNS
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


async def drive(url: str, rounds: int, think: float, windows: list) -> None:
    """One Chromium session: the load test's four actions, ``rounds`` times each; appends (action, t0, t1)."""
    from browser_actions import ServerClock, click_map, idle, mouse_drag, settle, slider, switch_model
    from playwright.async_api import async_playwright

    from tests.browser import CHROMIUM, CHROMIUM_FLAGS, DECODED_SRC_JS, LATENT_SLIDER

    async def act(name: str, coro, page, clock) -> None:
        await asyncio.sleep(think)
        t0 = time.monotonic()
        await coro
        await settle(page, clock, t0)
        windows.append((name, t0, time.monotonic()))

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
        clock = ServerClock(page)
        await page.goto(f"{url}/latent-map")  # the default map, computed once before anything is timed
        await page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        await page.goto(f"{url}/traverse")
        await page.wait_for_function(DECODED_SRC_JS, timeout=120_000)
        await idle(page)
        await page.locator(LATENT_SLIDER).first.focus()
        for _ in range(rounds):
            await act("slider step (/traverse)", slider(page), page, clock)
        for _ in range(rounds):
            await act("mouse drag + release (/traverse)", mouse_drag(page), page, clock)
        await page.locator("[data-testid='stSidebarNav'] a", has_text="Latent map").click()
        await page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        await idle(page)
        for k in range(rounds):
            await act("map click (/latent-map)", click_map(page, clock, k), page, clock)
        for k in range(rounds):
            name, caption = (("mnist-vae-mlp-z16", "z=16"), ("mnist-vae-mlp-z2", "z=2"))[k % 2]
            await act("model switch (sidebar)", switch_model(page, name, caption), page, clock)
        await browser.close()


def top_functions(paths: list[Path], n: int) -> list[str]:
    """The ``n`` functions with the most cumulative time over these profiles, one line each."""
    import pstats

    if not paths:
        return []
    st = pstats.Stats(str(paths[0]))
    for p in paths[1:]:
        st.add(str(p))
    rows = []
    for (file, line, fn), (_, calls, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
        rows.append((ct, tt, calls, f"{Path(file).name}:{line}({fn})"))
    rows.sort(reverse=True)
    k = len(paths)
    return [
        f"    {ct / k * 1000:7.1f} ms cum  {tt / k * 1000:6.1f} ms own  {c / k:8.1f} calls  {f}"
        for ct, tt, c, f in rows[:n]
    ]


def report(folder: Path, windows: list, top: int, profile: bool) -> None:
    """Per action: p50 of wall, script-thread CPU and server process CPU per action, then the top functions."""
    runs = read_runs(folder)
    by_action: dict[str, list[list[dict]]] = {}
    for name, t0, t1 in windows:
        mine = [r for r in runs if r["t0"] >= t0 and r["t1"] <= t1]
        if mine:
            by_action.setdefault(name, []).append(mine)
    print(f"{'action':36} {'n':>3} {'runs':>4} {'wall p50':>9} {'script CPU p50':>15} {'process CPU p50':>16}")
    for name, acts in by_action.items():
        wall = [1000 * (a[-1]["t1"] - a[0]["t0"]) for a in acts]
        cpu = [1000 * sum(r["cpu"] for r in a) for a in acts]
        proc = [1000 * sum(r["proc"] for r in a) for a in acts]
        nruns = sum(len(a) for a in acts) / len(acts)
        print(
            f"{name:36} {len(acts):3d} {nruns:4.1f} {statistics.median(wall):7.0f}ms"
            f" {statistics.median(cpu):13.0f}ms {statistics.median(proc):14.0f}ms"
        )
    if profile:
        for name, acts in by_action.items():
            print(f"\n{name}: top functions by cumulative time, per action")
            paths = [folder / PROFILES / f"{r['n']}.prof" for a in acts for r in a]
            for line in top_functions([p for p in paths if p.exists()], top):
                print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=6, help="times each action is done")
    ap.add_argument("--think", type=float, default=0.5, help="seconds between actions")
    ap.add_argument("--cprofile", action="store_true", help="profile each run (slower; for the top functions)")
    ap.add_argument("--top", type=int, default=25, help="functions listed per action")
    ap.add_argument("--port", type=int, help="serve on this port (default: a free one)")
    a = ap.parse_args()

    from _common import ROOT  # noqa: F401 - puts the repository on sys.path

    from tests import browser as tb

    folder = Path(tempfile.mkdtemp(prefix="run-profile-"))
    env = {"EXPLORER_PROFILE_DIR": str(folder), "EXPLORER_PROFILE_CPROFILE": "1" if a.cprofile else ""}
    env.setdefault("EXPLORER_HOME", os.environ.get("EXPLORER_HOME", str(folder / "home")))
    if a.port:
        tb.free_port = lambda: a.port  # type: ignore[assignment]
    windows: list = []
    with tb.serve(env=env, launcher=[sys.executable, __file__], timeout=120) as url:
        asyncio.run(drive(url, a.rounds, a.think, windows))
    report(folder, windows, a.top, a.cprofile)
    print(f"\nruns and profiles: {folder}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":  # the launcher: streamlit with its script runs timed
        install(os.environ["EXPLORER_PROFILE_DIR"], bool(os.environ.get("EXPLORER_PROFILE_CPROFILE")))
        from streamlit.web.cli import main as streamlit_main

        sys.argv[0] = "streamlit"
        sys.exit(streamlit_main())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
