"""The drawing pad in real Chromium: a mouse stroke on /anchors becomes the prototype the model sees."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, browser, exceptions, serve, wait_idle

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SHOTS = Path(os.environ.get("EXPLORER_SHOTS", "/tmp"))
PAD = "canvas[data-role='draw-grid']"
PREVIEW = ".st-key-anchors_custom_img_pad_preview img"
# The ink's bounding box (top, bottom, left, right) and mass centre (row, col) of a 28x28 image,
# read from the <img> or <canvas> matched by `sel` (pixels above 40 of 255 count as ink).
INK_JS = """(sel) => { const e = document.querySelector(sel); if (!e) return null;
  if (e.tagName === 'IMG' && !(e.complete && e.naturalWidth)) return null;
  const c = document.createElement('canvas'); c.width = c.height = 28;
  const g = c.getContext('2d'); g.drawImage(e, 0, 0, 28, 28);
  const d = g.getImageData(0, 0, 28, 28).data; let t = 99, b = -1, l = 99, r = -1, m = 0, my = 0, mx = 0;
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) { const v = d[4 * (28 * y + x)];
    if (v > 40) { t = Math.min(t, y); b = Math.max(b, y); l = Math.min(l, x); r = Math.max(r, x); }
    m += v; my += v * y; mx += v * x; }
  return b < 0 ? null : {t, b, l, r, cy: my / m, cx: mx / m, src: e.src || ''}; }"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with serve(env={"EXPLORER_HOME": str(home)}) as url, browser() as b:
        yield url, b


@pytest.fixture(scope="module")
def anchors_page(app):
    url, b = app
    page = b.new_page(viewport={"width": 1400, "height": 1000})
    sent: list[int] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(1)))
    page.goto(f"{url}/anchors")
    wait_idle(page, 120_000)
    page.get_by_text("Make your own anchor").first.click()
    page.get_by_text("draw a prototype").click()
    wait_idle(page)
    page.wait_for_selector(".dc-pad[data-ready='1']", timeout=30_000)
    page.locator(PAD).scroll_into_view_if_needed()
    yield page, sent
    page.close()


GREY_JS = """(sel) => { const e = document.querySelector(sel), d = e.getContext('2d').getImageData(0, 0, 28, 28).data;
  let n = 0; for (let p = 0; p < 784; p++) if (d[4 * p] > 40 && d[4 * p] < 215) n++; return n; }"""
# A stroke as a finger makes it: pointer events of type "touch", down, 20 moves, up.
TOUCH_JS = """([sel, x0, y0, x1, y1]) => { const c = document.querySelector(sel), r = c.getBoundingClientRect();
  const ev = (type, f) => c.dispatchEvent(new PointerEvent(type, {pointerId: 7, pointerType: 'touch', isPrimary: true,
    bubbles: true, clientX: r.left + r.width * (x0 + (x1 - x0) * f), clientY: r.top + r.height * (y0 + (y1 - y0) * f)}));
  ev('pointerdown', 0); for (let i = 1; i <= 20; i++) ev('pointermove', i / 20); ev('pointerup', 1); }"""


def stroke(page, sent: list[int] | None, start: tuple[float, float], end: tuple[float, float], moves: int = 30) -> int:
    """Drag the mouse across the pad from ``start`` to ``end`` (fractions of its box); the ws messages sent meanwhile."""
    box = page.locator(PAD).bounding_box()
    at = lambda fx, fy: (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)  # noqa: E731
    page.mouse.move(*at(*start))
    page.mouse.down()
    sent = [] if sent is None else sent
    before = len(sent)
    for i in range(1, moves + 1):
        page.mouse.move(*at(start[0] + (end[0] - start[0]) * i / moves, start[1] + (end[1] - start[1]) * i / moves))
        page.wait_for_timeout(15)
    during = len(sent) - before
    page.mouse.up()
    return during


def preview_after(page, old_src: str | None) -> dict:
    """The centred preview's ink, once a new preview image has loaded."""
    page.wait_for_function(f"(o) => {{ const i = ({INK_JS})({PREVIEW!r}); return i && i.src !== o; }}", arg=old_src)
    wait_idle(page)
    return page.evaluate(INK_JS, PREVIEW)


@pytest.mark.browser
@needs_chromium
def test_a_drawn_stroke_becomes_the_centred_prototype(anchors_page):
    page, sent = anchors_page
    assert page.evaluate(INK_JS, PREVIEW) is None  # a blank pad: no preview yet
    ws_before = len(sent)
    assert stroke(page, sent, (0.25, 0.1), (0.25, 0.6)) == 0, "nothing is sent while the pen moves"
    for _ in range(100):  # the stroke's end sends the drawing
        if len(sent) > ws_before:
            break
        page.wait_for_timeout(100)
    assert len(sent) > ws_before
    pad = page.evaluate(INK_JS, PAD)
    assert page.evaluate(GREY_JS, PAD) >= 10  # a soft brush: anti-aliased edges, as MNIST strokes have
    assert pad["cx"] < 9 and pad["cy"] < 12  # the pad shows the stroke where it was drawn: left, upper half
    tall = preview_after(page, None)
    assert tall["b"] - tall["t"] + 1 >= 19 and tall["r"] - tall["l"] + 1 <= 8  # scaled to a 20-high box
    assert abs(tall["cx"] - 14) <= 1.5 and abs(tall["cy"] - 14) <= 1.5  # centred by mass, as MNIST was

    page.locator("[data-role='draw-clear']").focus()  # Clear from the keyboard
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => !document.querySelector({PREVIEW!r})", timeout=30_000)
    assert page.locator(PAD).get_attribute("data-ink") == "0"

    stroke(page, sent, (0.6, 0.8), (0.95, 0.8))  # a short horizontal stroke, bottom right
    wide = preview_after(page, tall["src"])
    assert wide["r"] - wide["l"] + 1 >= 19 and wide["b"] - wide["t"] + 1 <= 8
    assert not exceptions(page)


@pytest.mark.browser
@needs_chromium
def test_the_eraser_removes_ink_and_a_drawing_becomes_an_anchor(anchors_page):
    from tests.plotly_click import click_point

    page, sent = anchors_page
    ink = int(page.locator(PAD).get_attribute("data-ink"))
    assert ink > 0  # the horizontal stroke of the test before
    page.locator(".dc-btn[data-tool='eraser']").click()
    stroke(page, sent, (0.6, 0.8), (0.75, 0.8))
    page.locator(".dc-btn[data-tool='pen']").click()
    assert 0 < int(page.locator(PAD).get_attribute("data-ink")) < ink
    wait_idle(page)
    click_point(page, "anchor target here", 25 * 18 + 6)  # a spot on the upper left of the target map
    add = page.get_by_role("button", name="Add anchor drawn:")
    add.wait_for(timeout=30_000)
    add.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stMultiSelect]').innerText.includes('drawn:')", timeout=30_000
    )
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "anchors-drawn-anchor.png"), full_page=True)
    chosen = page.get_by_test_id("stMultiSelect").first.inner_text()
    assert re.search(r"drawn:[0-9a-f]{8}@-1\.50:1\.50", chosen), chosen
    assert "donut" in chosen and "stick" in chosen  # added to the selection, not in place of it
    assert not exceptions(page)


@pytest.mark.browser
@needs_chromium
def test_start_from_a_training_image_and_edit_it_by_touch(anchors_page):
    page, _ = anchors_page
    page.locator("[data-role='draw-clear']").click()
    page.wait_for_function(f"() => !document.querySelector({PREVIEW!r})", timeout=30_000)
    page.get_by_text("Start from a dataset image").click()
    page.wait_for_function(f"() => document.querySelector({PAD!r}).getAttribute('data-ink') > 30", timeout=30_000)
    start = preview_after(page, None)  # the training image, centred, before any stroke
    ink = int(page.locator(PAD).get_attribute("data-ink"))
    page.locator(PAD).scroll_into_view_if_needed()
    page.evaluate(TOUCH_JS, [PAD, 0.05, 0.95, 0.95, 0.95])  # a finger along the bottom edge
    assert int(page.locator(PAD).get_attribute("data-ink")) > ink
    edited = preview_after(page, start["src"])
    assert edited["r"] - edited["l"] + 1 >= 19  # the full-width stroke now sets the box's width
    page.screenshot(path=str(SHOTS / "anchors-start-from-edited.png"), full_page=True)
    assert not exceptions(page)


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize(
    "model, tab, expect",
    [
        ("mnist-caption-joint-vae", "Digit → caption", "text=Decoded from its code: a"),
        ("mnist-fashion-joint-vae", None, "text=The 10 nearest fashion-mnist codes"),
        ("mnist-fashion-joint-vae", "Cross-modal generation", "text=fashion-mnist decoded from μ (first)"),
    ],
)
def test_a_drawn_one_on_shared(app, model, tab, expect):
    """A vertical stroke, drawn: the caption model reads a one, the garment gallery shows trousers (class 1),
    and the cross-modal tab decodes garments from it."""
    url, b = app
    page = b.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/shared")
    wait_idle(page, 120_000)
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=model).click()
    page.wait_for_selector("[data-testid='stTab']", timeout=120_000)
    wait_idle(page, 120_000)
    if tab:
        page.get_by_role("tab", name=tab).click()
    page.get_by_text("draw a digit").locator("visible=true").first.click(timeout=60_000)  # the open tab's
    page.wait_for_selector(".dc-pad[data-ready='1']", timeout=60_000)
    page.locator(PAD).first.scroll_into_view_if_needed()
    stroke(page, None, (0.5, 0.15), (0.5, 0.85))
    page.wait_for_selector(expect, timeout=60_000)
    wait_idle(page)
    main = page.inner_text("[data-testid='stMain']")
    if tab == "Cross-modal generation":  # the garments decoded from the drawing's code, under it
        assert "Draw a digit on the pad" not in main  # it says so only while the pad is blank
        assert page.locator("[data-testid='stImage']").locator("visible=true").count() >= 4  # preview, grids, item
    elif tab:
        assert "Decoded from its code: a" in main and " one" in main.split("Decoded from its code:")[1].split("\n")[0]
    else:
        labels = [line for line in main.splitlines() if " · " in line and line.split(" · ")[0] in FASHION]
        assert sum(line.startswith("Trouser") for line in labels) >= 6, labels
    part = "-generation" if tab == "Cross-modal generation" else ""
    page.screenshot(path=str(SHOTS / f"shared-drawn-{model}{part}.png"), full_page=True)
    assert not exceptions(page)
    page.close()
