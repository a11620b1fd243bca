"""Start the app on loopback and drive it with Playwright in Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The live decoder's sliders (explorer/ui/live_decoder); the first is the top-KL dimension.
LATENT_SLIDER = "[data-role='latent-slider']"
# The decoded image: the live decoder's canvas as a data URL, else the src of the image captioned
# "decode(z)" once it has loaded (server decoding), else null.
DECODED_SRC_JS = """() => { const c = document.querySelector('canvas[data-role="decoded"]');
  if (c && c.closest('[data-ready="1"]')) return c.toDataURL();
  const el = [...document.querySelectorAll('[data-testid="stImage"]')]
  .find(e => e.innerText.includes('decode(z)')); if (!el) return null;
  const img = el.querySelector('img'); return img && img.complete ? img.src : null; }"""
# True once that src differs from the one passed in.
SRC_CHANGED_JS = f"(b) => {{ const s = ({DECODED_SRC_JS})(); return s && s !== b; }}"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(
    app: Path = ROOT / "app.py",
    env: dict[str, str] | None = None,
    timeout: float = 90,
    launcher: list[str] | None = None,
) -> Iterator[str]:
    """Run ``streamlit run app`` (or ``launcher run app``) on a free loopback port; yields the base URL."""
    port = free_port()
    cmd = [
        *(launcher or [sys.executable, "-m", "streamlit"]),
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    log = open(os.environ.get("EXPLORER_SERVER_LOG", os.devnull), "ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until the app at ``url`` answers its health check; RuntimeError if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the app did not start (exit {proc.poll()})")
        time.sleep(0.3)


@contextlib.contextmanager
def browser() -> Iterator[object]:
    """A Playwright Chromium browser (Debian's binary, never a downloaded one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def exceptions(page) -> list[str]:
    """Texts of any exception boxes on the page."""
    return [e.inner_text() for e in page.query_selector_all("[data-testid='stException']")]


SHOTS = Path(os.environ.get("EXPLORER_SCREENSHOTS", ROOT / "screens"))  # where browser tests save what they saw
# True once the page shows at least one figure and every Plotly chart on it has drawn something: a trace with
# points, or shapes (the diagrams). An empty figure (no trace, or traces without points) never passes.
FIGURES_DRAWN_JS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const drawn = p => p._fullData !== undefined && (p._fullData.some(t => t.visible !== false
    && ['x', 'y', 'z'].some(k => t[k] && t[k].length > 0)) || (p._fullLayout.shapes || []).length > 0);
  const images = [...document.querySelectorAll("[data-testid='stImage'] img")]
    .filter(i => i.complete && i.naturalWidth > 0);
  return plots.every(drawn) && plots.length + images.length > 0;
}"""
