"""Click-to-decode latency on /latent-map in headless Chromium: from a click on a point to its
image and reconstruction being shown."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import print_table, stats_ms
from slider_latency import wait_jobs_idle

from tests.browser import browser, serve, wait_idle
from tests.plotly_click import click_point

HEADING = "() => { const h = [...document.querySelectorAll('h3')].find(h => h.textContent.includes(' · index ')); return h ? h.textContent : ''; }"
# Any new selection counts: in a dense scatter the point nearest the cursor may be an overlapping neighbour.
SHOWN = f"(before) => {{ const t = ({HEADING})(); return t && t !== before; }}"


def run(n: int = 15) -> dict:
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    samples = []
    with browser() as b, serve(env={"EXPLORER_HOME": str(home)}) as url:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/latent-map")
        wait_idle(page)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        wait_jobs_idle(home)
        wait_idle(page)
        for i in range(n + 2):
            trace, k = str(i % 10), 2 + i
            idx = page.evaluate(HEADING)
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
    return stats_ms(samples)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=15)
    r = run(ap.parse_args().n)
    print_table(
        [
            (
                "click map point -> image + reconstruction",
                f"median {r['median_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms",
                "-",
                "-",
            )
        ]
    )
