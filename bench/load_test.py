"""Load test: N concurrent headless sessions drag sliders, click map points and switch models
while one more session trains a model. Reports p50/p95 per action and the errors, against
the same actions in a single session on an idle server. Bounded: loopback only, fixed rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _common import print_table
from slider_latency import SRC_JS, wait_jobs_idle

from tests.browser import CHROMIUM, CHROMIUM_FLAGS, serve
from tests.plotly_click import PIXEL_JS

IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
EXC = "() => document.querySelectorAll('[data-testid=\"stException\"]').length"


async def _idle(page, timeout: float = 60_000) -> None:
    await page.wait_for_function(IDLE, timeout=timeout)


async def _timed(results: dict, errors: list, name: str, coro) -> None:
    t0 = time.perf_counter()
    try:
        await coro
        results.setdefault(name, []).append(time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
        errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")


async def _slider(page) -> None:
    before = await page.evaluate(SRC_JS)
    await page.keyboard.press("ArrowRight")
    await page.wait_for_function(
        f"(b) => {{ const s = ({SRC_JS})(); return s && s !== b; }}", arg=before, timeout=30_000
    )


async def _click_map(page, k: int) -> None:
    xy = await page.evaluate(PIXEL_JS, [str(k % 10), 1 + k])
    await page.mouse.click(xy[0], xy[1])
    await page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stImageCaption\"]')]"
                                 ".some(e => e.innerText === 'reconstruction')", timeout=30_000)  # fmt: skip
    await _idle(page)


async def _switch_model(page, name: str, caption: str) -> None:
    """Pick another model; done when the sidebar describes it and the page shows its map (or the map's progress)."""
    await page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    await page.get_by_role("option", name=name, exact=True).click()
    await page.wait_for_function(
        f"() => document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('{caption}')", timeout=60_000
    )
    await page.wait_for_selector(".js-plotly-plot, [data-testid='stProgress'], [data-testid='stAlert']", timeout=60_000)


async def session(browser, url: str, rounds: int, results: dict, errors: list) -> None:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    try:
        await page.goto(f"{url}/traverse")
        await page.wait_for_function(SRC_JS, timeout=120_000)
        await page.locator("[data-testid='stSlider']", has_text=" · KL ").first.get_by_role("slider").focus()
        for _ in range(rounds):
            await _timed(results, errors, "drag slider (/traverse)", _slider(page))
        await page.locator("[data-testid='stSidebarNav'] a", has_text="Latent map").click()
        await page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        await _idle(page)
        for k in range(rounds):
            await _timed(results, errors, "click map point", _click_map(page, k))
        for k in range(2):
            await _timed(
                results, errors, "switch model", _switch_model(page, ["mnist-vae-mlp-z16", "mnist-vae-mlp-z2"][k % 2])
            )
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


async def run_async(n: int, rounds: int, train: bool) -> tuple[dict, list]:
    from playwright.async_api import async_playwright

    home = Path(tempfile.mkdtemp(prefix="load-home-"))
    results: dict[str, list[float]] = {}
    errors: list[str] = []
    with serve(env={"EXPLORER_HOME": str(home)}) as url:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            warm = await (await browser.new_context()).new_page()  # compute the default map once
            await warm.goto(f"{url}/latent-map")
            await warm.wait_for_selector(".js-plotly-plot", timeout=180_000)
            wait_jobs_idle(home)
            if train:
                await trainer(browser, url, epochs=40)
                await asyncio.sleep(3)
            await asyncio.gather(*(session(browser, url, rounds, results, errors) for _ in range(n)))
            await browser.close()
    return results, errors


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def run(n: int = 8, rounds: int = 6) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    single, err1 = asyncio.run(run_async(1, rounds, train=False))
    many, errn = asyncio.run(run_async(n, rounds, train=True))
    rows = []
    for action in single:
        s, m = single[action], many.get(action, [])
        rows.append((f"load: {action}", f"{n} sessions + training: p50 {1000 * statistics.median(m) if m else float('nan'):.0f} ms, "
                     f"p95 {pct(m, 0.95):.0f} ms", f"1 session: p50 {1000 * statistics.median(s):.0f} ms, p95 {pct(s, 0.95):.0f} ms",
                     f"{pct(m, 0.95) / pct(s, 0.95):.2f}x p95"))  # fmt: skip
    rows.append(("load: errors", f"{len(errn)} with {n} sessions", f"{len(err1)} with 1 session", "-"))
    return rows, err1 + errn


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=8, help="concurrent sessions")
    ap.add_argument("--rounds", type=int, default=6)
    a = ap.parse_args()
    rows, errors = run(a.n, a.rounds)
    print_table(rows)
    for e in errors[:20]:
        print("error:", e)
