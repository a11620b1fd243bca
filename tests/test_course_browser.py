"""The course in a real browser: /learn from first step to last, and the 2-D prior overlay actually drawn."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from explorer.course.steps import STEPS
from tests.browser import CHROMIUM, FIGURES_DRAWN_JS, SHOTS, exceptions, wait_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
]
VIEWPORT = {"width": 1400, "height": 1400}  # read by the page fixture (tests/conftest.py)


def _plot_area_pixels(page):
    from PIL import Image

    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    png = page.screenshot(clip=box)
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_2d_prior_overlay_draws_its_markers(page, app_url):
    page.goto(f"{app_url}/latent-map")  # the default model is 2-D: raw axes
    wait_idle(page, 120_000)
    page.wait_for_selector(".js-plotly-plot .nsewdrag", timeout=300_000)  # first test: its map is computed first
    wait_idle(page)
    page.wait_for_timeout(1500)  # WebGL traces paint after the SVG
    before = _plot_area_pixels(page)
    page.get_by_text("Prior overlay").click()
    page.wait_for_selector(".legendtext:has-text('prior samples')", timeout=60_000)
    wait_idle(page)
    page.wait_for_timeout(1500)
    after = _plot_area_pixels(page)
    # The legend entry can narrow the plot, so compare what is drawn, not pixel by pixel: the crosses are
    # the only near-black marks (the manifold is grey at 45% opacity, the points are coloured).
    frac = [
        sum(1 for r, g, b in im.getdata() if max(r, g, b) < 90) / (im.size[0] * im.size[1]) for im in (before, after)
    ]
    assert frac[1] > frac[0] + 0.005, frac  # 1,000 crosses: thousands of dark pixels
    assert not exceptions(page)
    SHOTS.mkdir(exist_ok=True)
    after.save(SHOTS / "latent-map-prior-2d.png")


def test_learn_walks_from_first_step_to_last(page, app_url):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{app_url}/learn")
    wait_idle(page, 120_000)
    for n, step in enumerate(STEPS, 1):
        page.wait_for_selector(f"h2:has-text('{n}. {step.title}')", timeout=120_000)
        page.wait_for_selector("text=Try this:", timeout=120_000)
        wait_idle(page, 120_000)
        assert not exceptions(page), (n, exceptions(page))
        assert page.locator("[data-testid='stMarkdownContainer'] .katex").count() >= 1, n  # the formula is typeset
        assert n == 1 or f"step={n}" in page.url  # the step is in the URL: a teacher can link to it
        try:  # its live figure is drawn: no empty chart, and at least one chart or image (maps may still compute)
            page.wait_for_function(FIGURES_DRAWN_JS, timeout=300_000)
        except PlaywrightTimeout:
            pytest.fail(f"step {n} ({step.key}): a figure is empty or none was drawn")
        nxt = page.get_by_role("button", name="Next")
        if n < len(STEPS):
            nxt.click()
    assert nxt.is_disabled()
    page.get_by_role("button", name="Previous").click()
    page.wait_for_selector(f"h2:has-text('{len(STEPS) - 1}. {STEPS[-2].title}')", timeout=60_000)
