"""``explorer serve --replicas 2`` for real: two app servers behind the sticky proxy, one local Dask
cluster, driven by two Chromium users (each its own cookie jar, as two students' browsers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from explorer.replicas import COOKIE
from tests.browser import (
    CHROMIUM,
    DECODED_SRC_JS,
    LATENT_SLIDER,
    ROOT,
    SHOTS,
    SRC_CHANGED_JS,
    browser,
    exceptions,
    free_port,
    wait_healthy,
    wait_idle,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(proxy URL, the serve process) for ``explorer serve --replicas 2`` with its own EXPLORER_HOME."""
    home = tmp_path_factory.mktemp("replicas-home")
    port = free_port()
    env = {**os.environ, "EXPLORER_HOME": str(home), "EXPLORER_DEVICE": "cpu"}
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    cmd = [sys.executable, "-m", "explorer", "serve", "--replicas", "2", "--port", str(port)]
    log = open(home / "serve.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 300)
    except RuntimeError:
        proc.kill()
        raise AssertionError((home / "serve.log").read_text()[-2000:]) from None
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def _drag_changes_image(page) -> None:
    """Press on the top latent slider, move the mouse, and see the decoded image change before release."""
    page.wait_for_function(DECODED_SRC_JS, timeout=120_000)
    before = page.evaluate(DECODED_SRC_JS)
    box = page.locator(LATENT_SLIDER).first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] / 4, y, steps=8)
    page.wait_for_function(SRC_CHANGED_JS, arg=before, timeout=20_000)  # while the button is still down
    page.mouse.up()


def test_two_browsers_land_on_two_replicas_and_each_decodes_live(served):
    url, proc = served
    replicas = {p.pid for p in psutil.Process(proc.pid).children() if "streamlit" in " ".join(p.cmdline())}
    assert len(replicas) == 2
    with browser() as br:
        users = [br.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
        pages = [ctx.new_page() for ctx in users]
        for page in pages:
            page.goto(f"{url}/traverse")
        landed = []
        for i, (ctx, page) in enumerate(zip(users, pages)):
            wait_idle(page, 180_000)
            _drag_changes_image(page)
            wait_idle(page, 60_000)
            assert not exceptions(page)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"replicas-user{i}-traverse.png"))
            landed.append(next(c["value"] for c in ctx.cookies() if c["name"] == COOKIE))
        assert sorted(landed) == ["0", "1"]
        # a user stays on their replica across pages: the map page works through the same proxy
        pages[0].goto(f"{url}/latent-map")
        wait_idle(pages[0], 180_000)
        assert next(c["value"] for c in users[0].cookies() if c["name"] == COOKIE) == landed[0]
        assert not exceptions(pages[0])


def test_sigterm_stops_the_proxy_the_replicas_and_the_workers(served):
    _, proc = served
    children = psutil.Process(proc.pid).children(recursive=True)
    assert any("dask_worker" in " ".join(c.cmdline()) for c in children)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=90) == 0
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [" ".join(p.cmdline())[:120] for p in alive]
