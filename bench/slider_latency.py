"""Slider-to-image latency on /traverse in headless Chromium, against the empty-app floor.

Each sample: press an arrow key on a slider, wait until the decoded image's src changes and
the new image has loaded. Prints median and p95 for both apps and their ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import ROOT, print_table, stats_ms

from tests.browser import browser, serve, wait_idle

SRC_JS = """() => { const el = [...document.querySelectorAll('[data-testid="stImage"]')]
  .find(e => e.innerText.includes('decode(z)')); if (!el) return null;
  const img = el.querySelector('img'); return img && img.complete ? img.src : null; }"""


def measure(page, slider_locator, n: int, warmup: int = 3) -> list[float]:
    """Latency of n arrow-key presses (alternating direction so the value stays in range)."""
    slider_locator.focus()
    out = []
    for i in range(n + warmup):
        before = page.evaluate(SRC_JS)
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight" if (i // 4) % 2 == 0 else "ArrowLeft")
        page.wait_for_function(f"(b) => {{ const s = ({SRC_JS})(); return s && s !== b; }}", arg=before, timeout=20_000)
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def wait_jobs_idle(home: Path, timeout: float = 300) -> None:
    """Wait until the server's background jobs (map warm-ups) have finished."""
    from explorer.jobs import read_status

    deadline = time.monotonic() + timeout
    time.sleep(1)
    while time.monotonic() < deadline:
        states = [read_status(d) for d in (home / "jobs").glob("*")] if (home / "jobs").is_dir() else []
        if not any(s and s.active for s in states):
            return
        time.sleep(1)


def run(n: int = 40, page_path: str = "traverse", home: Path | None = None) -> dict:
    """Measure the traverse page and the floor app, with no background job running."""
    home = home or Path(tempfile.mkdtemp(prefix="bench-home-"))
    result = {}
    with browser() as b:
        with serve(ROOT / "bench" / "floor_app.py") as url:
            page = b.new_page()
            page.goto(url)
            wait_idle(page)
            page.wait_for_function(SRC_JS)
            result["floor"] = stats_ms(measure(page, page.get_by_role("slider").first, n))
        with serve(env={"EXPLORER_HOME": str(home)}) as url:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/{page_path}")
            wait_jobs_idle(home)
            wait_idle(page)
            page.wait_for_function(SRC_JS, timeout=60_000)
            slider = page.locator("[data-testid='stSlider']", has_text=" · KL ").first.get_by_role("slider")
            result["traverse"] = stats_ms(measure(page, slider, n))
    result["ratio_median"] = result["traverse"]["median_ms"] / result["floor"]["median_ms"]
    return result


def measure_during_tsne(n: int = 30) -> dict:
    """Slider latency while a 10k-point t-SNE runs at a worker's priority (nice 10), against idle."""
    import os
    import subprocess
    import sys

    idle = run(n)
    out = Path(tempfile.mkdtemp()) / "m.npz"
    env = {**os.environ, "EXPLORER_HOME": tempfile.mkdtemp(prefix="tsne-home-")}
    bg = subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "explorer", "embed", str(ROOT / "checkpoints" / "mnist-vae-mlp-z16.safetensors"),
                           "--method", "tsne", "--split", "all", "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(3)  # past start-up, into the optimisation
        busy = run(n)
    finally:
        bg.kill()
    return {
        "idle": idle["traverse"],
        "busy": busy["traverse"],
        "ratio_median": busy["traverse"]["median_ms"] / idle["traverse"]["median_ms"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--during-tsne", action="store_true", help="also measure while a 10k t-SNE runs in the background")
    args = ap.parse_args()
    if args.during_tsne:
        r = measure_during_tsne(args.n)
        print_table([("slider median while t-SNE 10k runs", f"{r['busy']['median_ms']:.0f} ms (p95 {r['busy']['p95_ms']:.0f})",
                      f"{r['idle']['median_ms']:.0f} ms idle (p95 {r['idle']['p95_ms']:.0f})", f"{r['ratio_median']:.2f}x")])  # fmt: skip
        return
    r = run(args.n)
    if args.json:
        print(json.dumps(r))
        return
    print_table([
        ("slider->image median (/traverse)", f"{r['traverse']['median_ms']:.0f} ms", f"{r['floor']['median_ms']:.0f} ms (empty app)", f"{r['ratio_median']:.2f}x"),
        ("slider->image p95 (/traverse)", f"{r['traverse']['p95_ms']:.0f} ms", f"{r['floor']['p95_ms']:.0f} ms (empty app)",
         f"{r['traverse']['p95_ms'] / r['floor']['p95_ms']:.2f}x"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
