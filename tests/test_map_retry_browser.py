"""/latent-map in Chromium: a map job stopped while it runs can be started again from its panel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, exceptions, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]
SHOTS = Path(os.environ.get("EXPLORER_SHOTS", "/tmp"))
AGAIN = "button:has-text('Start again')"
STOP = "button:has-text('Stop')"


def test_a_stopped_map_starts_again_from_its_panel(page, app_url):
    page.goto(f"{app_url}/latent-map?method=tsne")
    wait_idle(page, timeout=120_000)
    page.locator("[data-testid='stSelectbox']", has_text="Split").click()  # 5,000 training codes: not warmed up
    page.get_by_role("option", name="train", exact=True).click()
    page.wait_for_selector(STOP, timeout=120_000)
    assert page.locator(AGAIN).count() == 0  # nothing to start again while it runs
    page.get_by_text("The layout as t-SNE optimises it").wait_for(timeout=300_000)  # it checks Stop as it iterates
    for attempt in range(3):  # a click that lands while the fragment reruns is lost; click again
        page.locator(STOP).click()
        try:
            page.wait_for_selector(AGAIN, timeout=20_000)  # the fragment alone reruns: no full rerun restarts it
            break
        except Exception:
            if attempt == 2:
                raise
    assert "The job was stopped." in page.inner_text("body")
    page.screenshot(path=str(SHOTS / "map-stopped.png"), full_page=True)
    page.locator(AGAIN).click()
    page.wait_for_function(
        "() => !document.body.innerText.includes('The job was stopped.')"
        " && (document.querySelector('[data-testid=\"stProgress\"]')"
        " || document.body.innerText.includes('Waiting for a free worker'))",
        timeout=60_000,
    )
    page.wait_for_selector(STOP, timeout=60_000)  # running (or queued) again, and stoppable
    assert page.locator(AGAIN).count() == 0 and not exceptions(page)
    page.screenshot(path=str(SHOTS / "map-started-again.png"), full_page=True)
    page.locator(STOP).click()  # leave the workers free for the next test
