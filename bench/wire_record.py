"""Record once what a real browser sends for each load-test action, for ``wire_client.WireSession`` to replay.

One Chromium session (Playwright) does the load test's actions (``browser_actions.user_actions``) and
then starts a training run on /train; every ``BackMsg`` frame it sends on ``/_stcore/stream`` is kept
with the action it belongs to (frames sent from one action's start to the next's). Auto-reruns are
left out (the replaying client makes its own). Each frame notes how many full runs had finished in
its action before it was sent, and the pause after that (capped), so a frame the frontend sends in
reaction to a run (a component reporting its state) is replayed after that run. What the browser was
shown in each action (element kinds, texts, the /media/ GETs) is kept too, to check the replay by.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

from browser_actions import ServerClock, idle, start_training, user_actions
from wire_client import FULL, Decoder

from tests.browser import CHROMIUM, CHROMIUM_FLAGS

SETTLE = 0.5  # seconds after each action for the frames the frontend sends in reaction to its run
MAX_DELAY = 1.0


def _user_rerun(msg) -> bool:  # noqa: ANN001 - a BackMsg
    return msg.WhichOneof("type") == "rerun_script" and not msg.rerun_script.is_auto_rerun


class Tape:
    """Frames a page sent and received on the stream, and its GETs, each with its time."""

    def __init__(self, page) -> None:
        self.sent: list[tuple[float, bytes]] = []
        self.received: list[tuple[float, bytes]] = []
        self.gets: list[tuple[float, str]] = []
        page.on("websocket", self._attach)
        page.on("request", lambda r: self.gets.append((time.monotonic(), r.url)))

    def _attach(self, ws) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("framesent", lambda p: isinstance(p, bytes) and self.sent.append((time.monotonic(), p)))
            ws.on("framereceived", lambda p: isinstance(p, bytes) and self.received.append((time.monotonic(), p)))

    async def answered(self, t0: float, timeout: float = 120.0) -> None:
        """Wait until the last rerun the page asked for since t0 (auto-reruns aside) has finished."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            asked = [t for t, d in self.sent if t >= t0 and _user_rerun(BackMsg.FromString(d))]
            done = [t for t, d in self.received if t >= t0 and ForwardMsg.FromString(d).HasField("script_finished")]
            if not asked or (done and done[-1] >= asked[-1]):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the page's run did not finish")

    def actions(self, marks: list[tuple[str, bool, str | None, float]], end: float) -> list[dict]:
        """Cut the tape into actions at their start times; check that each showed what it must."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        dec, out, rec = Decoder(), [], iter(self.received)
        pending = next(rec, None)
        for i, (name, timed, expect, t0) in enumerate(marks):
            t1 = marks[i + 1][3] if i + 1 < len(marks) else end
            dec.view = type(dec.view)()
            frames, runs0, last = [], dec.runs, t0
            for t, data in self.sent:
                if not t0 <= t < t1:
                    continue
                if not _user_rerun(BackMsg.FromString(data)):
                    continue
                while pending is not None and pending[0] <= t:
                    dec.feed(pending[1], pending[0])
                    pending = next(rec, None)
                done = [f for f, s in dec.finishes if s == FULL and t0 <= f <= t]
                last = max([last, *done[-1:]])
                delay = 0.0 if not frames else min(MAX_DELAY, t - last)
                frames.append({"b64": base64.b64encode(data).decode(), "after": dec.runs - runs0, "delay": delay})
                last = t
            while pending is not None and pending[0] < t1:
                dec.feed(pending[1], pending[0])
                pending = next(rec, None)
            if errs := dec.view.check(expect):
                raise RuntimeError(f"recording {name}: {'; '.join(errs)}")
            media = [
                u.split("/media/")[1] for t, u in self.gets if t0 <= t < t1 and "/media/" in u and "/static/" not in u
            ]
            out.append({"name": name, "timed": timed, "expect": expect, "frames": frames, "media": media})
            out[-1]["kinds"] = sorted(dec.view.kinds)
        return out

    def static(self, url: str) -> list[str]:
        """The app's own files the page fetched (static assets, favicon), as paths."""
        return sorted(
            {u.removeprefix(url) for _, u in self.gets if u.startswith(url + "/static/") or u == url + "/favicon.png"}
        )


async def _play(browser, url: str, acts) -> tuple[list[dict], Tape]:  # noqa: ANN001
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    tape = Tape(page)
    marks = []
    for name, timed, act, expect in acts(page):
        t0 = time.monotonic()
        marks.append((name, timed, expect, t0))
        await act()
        for _ in range(2):  # the action's runs, then those of frames sent in reaction to them
            await tape.answered(t0)
            await idle(page)
            await asyncio.sleep(SETTLE)
    out = tape.actions(marks, time.monotonic())
    await ctx.close()
    return out, tape


async def record(url: str, rounds: int, epochs: int = 40, train: bool = True) -> dict:
    """Record one user's actions and (with ``train``) a trainer's on the app at ``url``: a throwaway server,
    since it starts a training run."""
    import streamlit
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        user, tape = await _play(browser, url, lambda page: user_actions(page, ServerClock(page), url, rounds))

        def trainer(page) -> list:  # noqa: ANN001
            return [("start training", False, lambda: start_training(page, url, epochs), None)]

        train = (await _play(browser, url, trainer))[0] if train else []
        await browser.close()
    return {
        "streamlit": streamlit.__version__,
        "rounds": rounds,
        "static": tape.static(url),
        "user": user,
        "trainer": train,
    }


def save(script: dict, path: Path) -> None:
    from explorer.storage import atomic_write_json

    atomic_write_json(path, script)


def load(path: Path) -> dict:
    return json.loads(path.read_text())
