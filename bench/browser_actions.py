"""What one load-test user does, in a real browser (Playwright): the actions that ``load_test.py
--clients browser`` times and that ``wire_record.py`` records once for the protocol clients."""

from __future__ import annotations

import asyncio
import contextlib
import time

import _common  # noqa: F401  (puts the repo on sys.path, for tests.*)

from tests.browser import DECODED_SRC_JS, LATENT_SLIDER, SRC_CHANGED_JS
from tests.plotly_click import PIXEL_JS

IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
EXC = "() => document.querySelectorAll('[data-testid=\"stException\"]').length"
# (name, sidebar entry, what its caption says) of the models a session switches to, in order
SWITCHES = (("mnist-vae-mlp-z16", "z=16"), ("mnist-vae-mlp-z2", "z=2"))


class ServerClock:
    """A page's Streamlit websocket: its session id, and when the browser sent and saw a run finish."""

    def __init__(self, page) -> None:
        self.sent: list[float] = []
        self.finished: list[float] = []
        self.session = ""
        page.on("websocket", self._attach)

    def _attach(self, ws) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("framesent", lambda _: self.sent.append(time.monotonic()))
            ws.on("framereceived", self._received)

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, (bytes, bytearray)):
            msg = ForwardMsg()
            with contextlib.suppress(Exception):
                msg.ParseFromString(bytes(payload))
                kind = msg.WhichOneof("type")
                if kind == "script_finished":
                    self.finished.append(time.monotonic())
                elif kind == "new_session" and msg.new_session.initialize.session_id:
                    self.session = msg.new_session.initialize.session_id

    def span(self, t0: float, t1: float, runs: dict[str, list[tuple[float, float]]] | None = None) -> float | None:
        """Seconds from the first message sent after t0 to the last run that ended before t1.

        With ``runs`` (the server's own log, by session) both ends are the server's clock.
        """
        if runs is not None:
            return server_span(runs.get(self.session, []), t0, t1)
        sent = next((t for t in self.sent if t >= t0), None)
        ends = [t for t in self.finished if sent is not None and sent <= t <= t1]
        return ends[-1] - sent if ends else None


def server_span(runs: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    """From the first of a session's logged runs (sent, done) that began after t0 to the last that ended by t1."""
    mine = [(a, b) for a, b in runs if a >= t0 and b <= t1]
    return mine[-1][1] - mine[0][0] if mine else None


async def idle(page, timeout: float = 60_000) -> None:
    await page.wait_for_function(IDLE, timeout=timeout)


async def settle(page, clock: ServerClock, t0: float, timeout: float = 60.0) -> None:
    """Wait until a script run that the browser asked for after t0 has finished, and the page is idle."""
    deadline = time.monotonic() + timeout
    while True:
        sent = next((t for t in clock.sent if t >= t0), None)
        if sent is not None and any(t >= sent for t in clock.finished):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("no script run followed the action")
        await asyncio.sleep(0.02)
    await idle(page)


async def load_traverse(page, url: str) -> None:
    await page.goto(f"{url}/traverse")
    await page.wait_for_function(DECODED_SRC_JS, timeout=120_000)
    await page.locator(LATENT_SLIDER).first.focus()


async def slider(page) -> None:
    """One arrow-key step of the focused latent slider, done when the decoded image has changed."""
    before = await page.evaluate(DECODED_SRC_JS)
    await page.keyboard.press("ArrowRight")
    await page.wait_for_function(SRC_CHANGED_JS, arg=before, timeout=30_000)


async def mouse_drag(page, moves: int = 20) -> None:
    """A mouse drag across the top latent slider (decoded in the browser), then the release's rerun."""
    slider = page.locator(LATENT_SLIDER).first
    box = await slider.bounding_box()
    frac = await slider.evaluate("e => (e.value - e.min) / (e.max - e.min)")
    a, b = (0.7, 0.3) if frac > 0.5 else (0.3, 0.7)  # away from where the thumb is, so the image changes
    x, y = box["x"] + box["width"] * a, box["y"] + box["height"] / 2
    before = await page.evaluate(DECODED_SRC_JS)
    await page.mouse.move(x, y)
    await page.mouse.down()
    for i in range(1, moves + 1):
        await page.mouse.move(x + i * box["width"] * (b - a) / moves, y)
    await page.wait_for_function(SRC_CHANGED_JS, arg=before, timeout=30_000)
    await page.mouse.up()


async def open_map(page) -> None:
    await page.locator("[data-testid='stSidebarNav'] a", has_text="Latent map").click()
    await page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    await idle(page)


async def click_map(page, clock: ServerClock, k: int) -> None:
    """Click a point; done when the run it starts has finished and the decoded point is shown."""
    t0 = time.monotonic()
    xy = await page.evaluate(PIXEL_JS, [str(k % 10), 1 + k])
    await page.mouse.click(xy[0], xy[1])
    await settle(page, clock, t0)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stImageCaption\"]')]"
        ".some(e => e.innerText === 'reconstruction')",
        timeout=30_000,
    )


async def switch_model(page, name: str, caption: str) -> None:
    """Pick another model; done when the sidebar describes it and the page shows its map (or the map's progress)."""
    await page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    await page.get_by_role("option", name=name, exact=True).click()
    await page.wait_for_function(
        f"() => document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('{caption}')", timeout=60_000
    )
    await page.wait_for_selector(".js-plotly-plot, [data-testid='stProgress'], [data-testid='stAlert']", timeout=60_000)


async def start_training(page, url: str, epochs: int) -> None:
    """Open /train, set the epochs and press Start training (the run goes on in a worker)."""
    await page.goto(f"{url}/train")
    await idle(page)
    ep = page.get_by_label("Epochs")
    await ep.fill(str(epochs))
    await ep.press("Enter")
    await idle(page)
    await page.get_by_role("button", name="Start training").click()


def user_actions(page, clock: ServerClock, url: str, rounds: int) -> list[tuple[str, bool, object, str | None]]:
    """One session's actions in order: (name, timed in the browser, a function making its coroutine, what the
    run must show: 'TEXT' anywhere or 'sidebar:TEXT')."""
    acts = [("load /traverse", False, lambda: load_traverse(page, url), None)]
    acts += [("drag slider (/traverse)", True, lambda: slider(page), None)] * rounds
    acts += [("mouse drag, live decode (/traverse)", True, lambda: mouse_drag(page), None)] * rounds
    acts.append(("go to Latent map", False, lambda: open_map(page), "kind:plotly_chart"))
    acts += [("click map point", True, lambda k=k: click_map(page, clock, k), "reconstruction") for k in range(rounds)]
    acts += [("switch model", True, lambda n=n, c=c: switch_model(page, n, c), f"sidebar:{c}") for n, c in SWITCHES]
    return acts
