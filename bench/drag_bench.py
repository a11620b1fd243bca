"""Drag benchmark: a 1 s, 60-move mouse drag of the top latent slider on /traverse.

For each model: decoded frames shown while the button is down (goal >= 30), the browser's
per-frame decode time (median, p95), websocket messages sent during the drag (goal 0) and the
weights payload. The reference, measured in the same run, is the same drag on the server-decoded
sliders (EXPLORER_LIVE_DECODER=off): frames shown while the button is down there.

python bench/drag_bench.py [--models mnist-vae-mlp-z2,fashion-mnist-vae-conv-z16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import CpuMeter, print_table

from tests.browser import DECODED_SRC_JS, LATENT_SLIDER, browser, serve, wait_idle

MODELS = ("mnist-vae-mlp-z2", "mnist-vae-mlp-z16", "fashion-mnist-vae-conv-z16", "mnist-fashion-joint-vae")
MOVES, SECONDS = 60, 1.0


def _pick_model(page, name: str) -> None:
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_idle(page)


def drag(page, slider, sent: list, server: str) -> dict:
    """One 1 s drag of ``slider``: decoded images while the button is down, frames sent, server CPU.

    ``server`` is a string in the server's command line (its port), for the CPU meter.
    """
    box = slider.bounding_box()
    x0, y = box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2
    page.evaluate("() => { if (globalThis.__liveDecoder) { __liveDecoder.frames = 0; __liveDecoder.decodeMs = []; } }")
    page.mouse.move(x0, y)
    page.mouse.down()
    n_sent, shown, last = len(sent), 0, page.evaluate(DECODED_SRC_JS)
    t0 = time.perf_counter()
    with CpuMeter({"server": server}, interval=0.25) as cpu:  # the whole gesture, release and rerun included
        for i in range(1, MOVES + 1):
            page.mouse.move(x0 + i * box["width"] * 0.6 / MOVES, y)
            src = page.evaluate(DECODED_SRC_JS)  # what the user sees now
            shown += src != last
            last = src
            time.sleep(max(0.0, t0 + i * SECONDS / MOVES - time.perf_counter()))
        during = len(sent) - n_sent
        stats = page.evaluate(
            "() => globalThis.__liveDecoder ? {frames: __liveDecoder.frames, ms: __liveDecoder.decodeMs} : null"
        )
        page.mouse.up()
        wait_idle(page)
        page.wait_for_timeout(300)
    out = {
        "shown": shown,
        "sent": during,
        "seconds": time.perf_counter() - t0,
        "server_cpu_ms": 1000 * cpu.seconds["server"],
    }
    if stats:
        ms = sorted(stats["ms"]) or [float("nan")]
        out.update(
            frames=stats["frames"], median_ms=statistics.median(ms), p95_ms=ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        )
    return out


def _page(b, url: str, sent: list):
    page = b.new_page(viewport={"width": 1400, "height": 1000})
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(f)))
    page.goto(f"{url}/traverse")
    wait_idle(page)
    return page


def run(models: tuple[str, ...] = MODELS) -> dict:
    from explorer.catalog import list_checkpoints
    from explorer.checkpoint import load_for_use
    from explorer.export import export_decoder

    paths = {e.name: e.path for e in list_checkpoints()}
    result: dict = {"live": {}, "payload": {}}
    home = Path(tempfile.mkdtemp(prefix="drag-home-"))
    with browser() as b:
        with serve(env={"EXPLORER_HOME": str(home)}) as url:
            sent: list = []
            port = f"--server.port {url.rsplit(':', 1)[1]} "
            page = _page(b, url, sent)
            for name in models:
                _pick_model(page, name)
                page.wait_for_selector(".lx-live[data-ready='1']", timeout=90_000)
                slider = page.locator(LATENT_SLIDER).first
                drag(page, slider, sent, port)  # warm-up (JIT)
                result["live"][name] = drag(page, slider, sent, port)
                result["payload"][name] = export_decoder(load_for_use(paths[name], "cpu")[0]).n_bytes
        with serve(env={"EXPLORER_HOME": str(home), "EXPLORER_LIVE_DECODER": "off"}) as url:
            sent = []
            page = _page(b, url, sent)
            page.wait_for_function(DECODED_SRC_JS, timeout=90_000)
            slider = page.locator("[data-testid='stSlider']", has_text=" · KL ").first.get_by_role("slider")
            port = f"--server.port {url.rsplit(':', 1)[1]} "
            result["server"] = drag(page, slider, sent, port)
    return result


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """Two rows per model: the drag (frames shown, messages sent) and the browser's decode cost."""
    ref, out = r["server"], []
    for name, d in r["live"].items():
        out.append(
            (
                f"drag 1 s, 60 moves ({name})",
                f"{d['shown']} frames shown, {d['sent']} ws msgs, server CPU {d['server_cpu_ms']:.0f} ms per drag",
                f"{ref['shown']} frames, {ref['sent']} msgs, {ref['server_cpu_ms']:.0f} ms (server decode)",
                "goal >= 30, 0",
            )
        )
        out.append(
            (
                f"  browser decode per frame ({name})",
                f"median {d['median_ms']:.1f} ms, p95 {d['p95_ms']:.1f} ms",
                f"weights {r['payload'][name] / 2**20:.2f} MB, once",
                "-",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    a = ap.parse_args()
    print_table(rows(run(tuple(a.models.split(",")))))


if __name__ == "__main__":
    main()
