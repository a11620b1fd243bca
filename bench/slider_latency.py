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

from tests.browser import DECODED_SRC_JS, LATENT_SLIDER, SRC_CHANGED_JS, browser, serve, wait_idle


def measure(page, slider_locator, n: int, warmup: int = 3) -> list[float]:
    """Latency of n arrow-key presses (alternating direction so the value stays in range)."""
    slider_locator.focus()
    out = []
    for i in range(n + warmup):
        before = page.evaluate(DECODED_SRC_JS)
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight" if (i // 4) % 2 == 0 else "ArrowLeft")
        page.wait_for_function(SRC_CHANGED_JS, arg=before, timeout=20_000)
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
            page.wait_for_function(DECODED_SRC_JS)
            result["floor"] = stats_ms(measure(page, page.get_by_role("slider").first, n))
        with serve(env={"EXPLORER_HOME": str(home)}) as url:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/{page_path}")
            wait_jobs_idle(home)
            wait_idle(page)
            page.wait_for_function(DECODED_SRC_JS, timeout=60_000)
            slider = page.locator(LATENT_SLIDER).first
            result["traverse"] = stats_ms(measure(page, slider, n))
    result["ratio_median"] = result["traverse"]["median_ms"] / result["floor"]["median_ms"]
    return result


def _idle_vs_busy(n: int, start_background) -> dict:
    """Slider latency idle, then while ``start_background()`` runs; it returns a function that ends it."""
    idle = run(n)
    stop = start_background()
    try:
        busy = run(n)
    finally:
        stop()
    return {
        "idle": idle["traverse"],
        "busy": busy["traverse"],
        "ratio_median": busy["traverse"]["median_ms"] / idle["traverse"]["median_ms"],
        "ratio_p95": busy["traverse"]["p95_ms"] / idle["traverse"]["p95_ms"],
    }


def measure_during_tsne(n: int = 30) -> dict:
    """Slider latency while a 10k-point t-SNE runs at a worker's priority (nice 10), against idle."""
    import os
    import subprocess
    import sys

    def start():
        out = Path(tempfile.mkdtemp()) / "m.npz"
        env = {**os.environ, "EXPLORER_HOME": tempfile.mkdtemp(prefix="tsne-home-")}
        bg = subprocess.Popen(
            [
                "nice",
                "-n",
                "10",
                sys.executable,
                "-m",
                "explorer",
                "embed",
                str(ROOT / "checkpoints" / "mnist-vae-mlp-z16.safetensors"),
                "--method",
                "tsne",
                "--split",
                "all",
                "--out",
                str(out),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(3)  # past start-up, into the optimisation
        return bg.kill

    return _idle_vs_busy(n, start)


def measure_during_train(n: int = 30) -> dict:
    """Slider latency while a training job runs in a worker exactly as /train starts one, against idle.

    The job (MNIST, vae-mlp, z=2, up to 200 epochs) goes through ``JobRunner`` into its own jobs
    folder, so the server under test sees no job of its own; it is stopped once the measure ends.
    """
    import os

    from explorer.jobs import JobRunner
    from explorer.training.pipeline import RunSpec
    from explorer.training.train import TrainSettings
    from explorer.training.trainjob import spec_to_dict

    def start():
        home = Path(tempfile.mkdtemp(prefix="train-home-"))
        os.environ["EXPLORER_HOME"] = str(home)  # the worker saves its checkpoint there
        runner = JobRunner(home / "jobs")
        spec = RunSpec(model="vae-mlp", dataset="mnist", config={"latent_dim": 2}, settings=TrainSettings(epochs=200))
        job = runner.submit("train", {"spec": spec_to_dict(spec), "name": "bench-background"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until it trains, past imports and data loading
            st = runner.status(job)
            if st is None or not st.active or (st.state == "running" and st.progress > 0):
                break
            time.sleep(0.5)
        if st is None or st.state != "running":
            raise RuntimeError(f"the training job did not start: {st}")

        def stop():
            print(f"background job while measuring: {runner.status(job).message}")  # proof that it trained meanwhile
            runner.stop(job)
            runner.wait(job, timeout=60)
            os.environ.pop("EXPLORER_HOME", None)

        return stop

    return _idle_vs_busy(n, start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--during-tsne", action="store_true", help="measure idle, then while a 10k t-SNE runs in the background"
    )
    ap.add_argument(
        "--during-train", action="store_true", help="measure idle, then while a training job runs in a worker"
    )
    args = ap.parse_args()
    if args.during_tsne or args.during_train:
        what, fn = (
            ("t-SNE 10k runs", measure_during_tsne)
            if args.during_tsne
            else ("a training job runs", measure_during_train)
        )
        r = fn(args.n)
        print_table(
            [
                (
                    f"slider median while {what}",
                    f"{r['busy']['median_ms']:.0f} ms",
                    f"{r['idle']['median_ms']:.0f} ms idle",
                    f"{r['ratio_median']:.2f}x",
                ),
                (
                    f"slider p95 while {what}",
                    f"{r['busy']['p95_ms']:.0f} ms",
                    f"{r['idle']['p95_ms']:.0f} ms idle",
                    f"{r['ratio_p95']:.2f}x",
                ),
            ]
        )
        return
    r = run(args.n)
    if args.json:
        print(json.dumps(r))
        return
    print_table(
        [
            (
                "slider->image median (/traverse)",
                f"{r['traverse']['median_ms']:.0f} ms",
                f"{r['floor']['median_ms']:.0f} ms (empty app)",
                f"{r['ratio_median']:.2f}x",
            ),
            (
                "slider->image p95 (/traverse)",
                f"{r['traverse']['p95_ms']:.0f} ms",
                f"{r['floor']['p95_ms']:.0f} ms (empty app)",
                f"{r['traverse']['p95_ms'] / r['floor']['p95_ms']:.2f}x",
            ),
        ]
    )


if __name__ == "__main__":
    main()
