"""/shared with the caption model in headless Chromium: type a caption, see digits; pick a digit, read its caption."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.catalog import shipped_dir
from tests.browser import CHROMIUM, browser, exceptions, serve, wait_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
    pytest.mark.skipif(not (shipped_dir() / "mnist-caption-joint-vae.safetensors").exists(), reason="no caption model"),
]
GRID_JS = """() => { const el = [...document.querySelectorAll('[data-testid="stImage"]')]
  .find(e => e.innerText.includes('q(z | caption)')); const img = el && el.querySelector('img');
  return img && img.complete ? img.src : null; }"""


def test_type_a_caption_then_read_a_digits_caption(tmp_path):
    with serve(env={"EXPLORER_HOME": str(tmp_path)}) as url, browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/shared")
        wait_idle(page)
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name="mnist-caption-joint-vae").click()
        page.wait_for_function(GRID_JS, timeout=120_000)
        first = page.evaluate(GRID_JS)
        box = page.locator("[data-testid='stMain'] [data-testid='stTextInputField']").first  # not the sidebar's
        box.fill("a thin left-slanted two with a curly tail")
        box.press("Enter")
        page.wait_for_selector("text=curly, tail", timeout=60_000)  # the ignored words, named
        page.wait_for_function(f"() => {{ const s = ({GRID_JS})(); return s && s !== {first!r}; }}", timeout=60_000)
        assert "left-slanted" in page.inner_text("[data-testid='stMain']")
        page.get_by_role("tab", name="Digit → caption").click()
        page.wait_for_selector("text=Decoded from its code", timeout=60_000)
        page.wait_for_selector(
            "[data-testid='stDataFrame']", timeout=60_000
        )  # the word probabilities, drawn after the text
        assert not exceptions(page)
