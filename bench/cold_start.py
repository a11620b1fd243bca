"""Cold start: a fresh server and empty caches, from launch to the first latent map on screen."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.browser import browser, serve, wait_idle


def run() -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="cold-home-"))
    t0 = time.perf_counter()
    with browser() as b, serve(env={"EXPLORER_HOME": str(home)}) as url:
        t_server = time.perf_counter() - t0
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/latent-map")
        wait_idle(page)
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        t_map = time.perf_counter() - t0
    return {"server_s": t_server, "first_map_s": t_map}
