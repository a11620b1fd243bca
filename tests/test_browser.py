"""The app in a real browser: headless Debian Chromium through Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, browser, exceptions, serve, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")]
SHOTS = Path(os.environ.get("EXPLORER_SCREENSHOTS", Path(__file__).resolve().parents[1] / "screens"))


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with serve(env={"EXPLORER_HOME": str(tmp_path_factory.mktemp("home"))}) as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    with browser() as b:
        p = b.new_page(viewport={"width": 1400, "height": 1000})
        yield p


def test_home_page_shows_sample_grid(page, app_url):
    page.goto(app_url)
    wait_idle(page)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 3", timeout=90_000
    )
    assert "Samples from the prior" in page.inner_text("body")
    imgs = page.query_selector_all("[data-testid='stImage'] img")
    assert all(i.evaluate("e => e.naturalWidth > 50 && e.complete") for i in imgs)
    assert not exceptions(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "home.png"), full_page=True)
