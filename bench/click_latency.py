"""Click-to-decode latency on /latent-map in headless Chromium: from a click on a point to its
image and reconstruction being shown.

``--full``: the same on the 70k-point map of all of Fashion-MNIST (the shipped conv model, PCA,
split 'all', computed into the cache first), with the bytes the browser receives per click.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import ROOT, print_table, stats_ms
from slider_latency import wait_jobs_idle

from tests.browser import browser, serve, wait_idle
from tests.plotly_click import click_point

HEADING = "() => { const h = [...document.querySelectorAll('h3')].find(h => h.textContent.includes(' · index ')); return h ? h.textContent : ''; }"
# Any new selection counts: in a dense scatter the point nearest the cursor may be an overlapping neighbour.
SHOWN = f"(before) => {{ const t = ({HEADING})(); return t && t !== before; }}"
TRACES = (
    "() => document.querySelector('.js-plotly-plot')._fullData.filter(d => d.x && d.x.length > 50).map(d => d.name)"
)
FULL_MODEL = "fashion-mnist-vae-conv-z16"
N_POINTS = "() => { const gd = document.querySelector('.js-plotly-plot'); return gd && gd._fullData ? gd._fullData.reduce((n, d) => n + (d.x ? d.x.length : 0), 0) : 0; }"


def _precompute_full(home: Path) -> float:
    """The 70k PCA map into ``home``'s cache (as /latent-map would ask for it); returns the seconds it took
    to compute (from its sidecar when it was there already)."""
    import os

    os.environ["EXPLORER_HOME"] = str(home)
    from explorer.analysis.projection import ProjectionParams, get_or_compute

    ckpt = ROOT / "checkpoints" / f"{FULL_MODEL}.safetensors"
    for split, limit in (("test", 5000), ("all", 5000)):  # the maps the page shows on the way there
        get_or_compute(ckpt, "fashion-mnist", ProjectionParams(split=split, limit=limit))
    t0 = time.perf_counter()
    proj, cached = get_or_compute(ckpt, "fashion-mnist", ProjectionParams(split="all"))
    return proj.meta["seconds"] + proj.meta["timings"]["load"] if cached else time.perf_counter() - t0


def _open_full(page, url: str) -> None:
    """/latent-map of the Fashion model, PCA, split 'all' and every one of its points."""
    page.goto(f"{url}/latent-map?model={FULL_MODEL}&method=pca")
    wait_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Split").click()
    page.get_by_role("option", name="all", exact=True).click()
    wait_idle(page)
    thumb = page.get_by_test_id("stSlider").filter(has_text="Points").get_by_role("slider")
    for _ in range(6):  # to the last size, the whole split: one step per key press, and each rerun drops the focus
        if thumb.get_attribute("aria-valuetext") == "70,000":
            break
        thumb.focus()
        thumb.press("ArrowRight")
        wait_idle(page)
    page.wait_for_function(f"() => ({N_POINTS})() >= 70000", timeout=300_000)


def run(n: int = 15, full: bool = False, shots: Path | None = None, home: Path | None = None) -> dict:
    home = home or Path(tempfile.mkdtemp(prefix="bench-home-"))
    out: dict = {}
    if full:
        out["precompute_s"] = _precompute_full(home)
    samples, received = [], []
    with browser() as b, serve(env={"EXPLORER_HOME": str(home)}) as url:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        frames: list[int] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(len(f))))
        if full:
            _open_full(page, url)
            out["points"] = page.evaluate(N_POINTS)
        else:
            page.goto(f"{url}/latent-map")
            wait_idle(page)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        wait_jobs_idle(home)
        wait_idle(page)
        names = page.evaluate(TRACES)  # the class traces (digits, or Fashion-MNIST's class names)
        for i in range(n + 2):
            trace, k = names[i % len(names)], 2 + i
            idx = page.evaluate(HEADING)
            frames.clear()
            t0 = time.perf_counter()
            click_point(page, trace, k)
            try:
                page.wait_for_function(SHOWN, arg=idx, timeout=10_000)
            except Exception:  # noqa: BLE001 - a click that lands mid-rerun is lost: count the retry's time
                click_point(page, trace, k)
                page.wait_for_function(SHOWN, arg=idx, timeout=20_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')].every(e => e.complete)"
            )
            if i >= 2:
                samples.append(time.perf_counter() - t0 - 0.15)  # minus click_point's fixed hover pause
            wait_idle(page)
            received.append(sum(frames))
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"click-{'70k' if full else 'default'}.png"), full_page=True)
    out.update(stats_ms(samples))
    out["received_kb"] = sorted(received)[len(received) // 2] / 1024  # median bytes per click, websocket
    return out


def rows(r: dict, full: bool) -> list[tuple[str, str, str, str]]:
    what = (
        f"click map point -> image, 70k map ({r['points']:,} points drawn)"
        if full
        else "click map point -> image + reconstruction"
    )
    out = [(what, f"median {r['median_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms", "goal 1000 ms" if full else "-", "-")]
    out.append(("  received per click (websocket, median)", f"{r['received_kb']:.0f} kB", "-", "-"))
    if full:
        out.append(("  70k PCA map computed (encode + quality)", f"{r['precompute_s']:.1f} s", "-", "-"))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--full", action="store_true", help="the 70k-point Fashion-MNIST map")
    ap.add_argument("--shots", type=Path, help="save a screenshot of the page after the clicks here")
    ap.add_argument("--home", type=Path, help="EXPLORER_HOME to use (its cached maps are kept); default a new one")
    a = ap.parse_args()
    print_table(rows(run(a.n, a.full, a.shots, a.home), a.full))
