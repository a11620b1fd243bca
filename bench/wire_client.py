"""A load-test client that speaks Streamlit's own websocket protocol, so many sessions cost almost nothing.

A real browser session is recorded once (``wire_record.py``): the ``BackMsg`` frames it sent for each
action. A ``WireSession`` then opens the app as the browser does (the page and its static files, the
health and host-config calls, ``/_stcore/stream`` with the ``streamlit`` subprotocol and the XSRF
cookie as its token) and replays those frames, with what the frontend adds on its own: the hashes of
the messages it has cached (the server then sends ``ref_hash`` references, resolved here from the
cache), the fragments' auto-reruns (``st.fragment(run_every=...)``, sent with the current widget
states), and the GETs of the ``/media/...`` files a run shows (images each time a new one appears,
other files, such as the live decoder's weights, once per session). Widget ids are deterministic in
Streamlit, so a session that follows the recorded sequence gets the same runs as the browser did.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

FULL, FRAGMENT = 0, 3  # ForwardMsg.ScriptFinishedStatus: FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_SUCCESSFULLY
MEDIA = re.compile(rb"/media/[0-9a-f]{8,64}\.[a-z0-9]{1,8}")
IMAGES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg")
TRIGGERS = {"trigger_value", "string_trigger_value", "chat_input_value", "json_trigger_value"}
SIDEBAR = 1  # delta_path[0] of the sidebar's elements
PARALLEL_GETS = 6  # a browser's connections per host
QUIET = 1.0  # seconds without a run after which a frame waiting for more runs is sent anyway


@dataclass
class View:
    """What a session was shown since the last reset: element kinds, texts, exceptions and media URLs."""

    kinds: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)
    sidebar: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    media: set[str] = field(default_factory=set)
    elements: int = 0  # new_element deltas
    bytes: int = 0  # ForwardMsg bytes received

    def shows(self, expect: str | None) -> bool:
        """Whether ``expect`` is shown: 'kind:ELEMENT' (an element type), 'sidebar:TEXT', or 'TEXT' anywhere."""
        where, _, what = (expect or "").partition(":") if ":" in (expect or "") else ("", "", expect or "")
        if where == "kind":
            return what in self.kinds
        return not what or any(what in t for t in (self.sidebar if where == "sidebar" else self.texts))

    def check(self, expect: str | None) -> list[str]:
        """Problems: exception boxes, and ``expect`` not shown."""
        errs = [f"exception delta: {e[:100]}" for e in self.exceptions]
        return errs + ([] if self.shows(expect) else [f"{expect!r} not shown"])


def _texts(el) -> list[str]:  # noqa: ANN001 - an Element proto
    kind = el.WhichOneof("type")
    if kind == "imgs":
        return [i.caption for i in el.imgs.imgs if i.caption]
    if kind == "exception":
        return [el.exception.message]
    part = getattr(el, kind, None) if kind in ("markdown", "alert", "heading", "text", "metric") else None
    return [getattr(part, f) for f in ("body", "label") if part is not None and hasattr(part, f)]


class Decoder:
    """ForwardMsg frames -> what the page shows, with the frontend's message cache (``ref_hash``)."""

    def __init__(self) -> None:
        self.cache: dict[str, list] = {}  # hash -> [encoded message, full run count when last used]
        self.runs = 0  # full runs finished
        self.max_age = 2
        self.session = ""
        self.page_hash = ""
        self.finishes: list[tuple[float, int]] = []  # (when received, ScriptFinishedStatus)
        self.auto: list[tuple[str, float | None]] = []  # (fragment id or '*', interval or None to stop), oldest first
        self.misses = 0
        self.view = View()

    def feed(self, data: bytes, now: float | None = None) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind, raw = msg.WhichOneof("type"), data
        self.view.bytes += len(data)
        if kind == "ref_hash":
            hit = self.cache.get(msg.ref_hash)
            if hit is None:
                self.misses += 1
                return
            hit[1] = self.runs
            meta, raw = msg.metadata, hit[0]
            msg = ForwardMsg.FromString(raw)
            msg.metadata.CopyFrom(meta)
            kind = msg.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash and msg.hash not in self.cache:
            self.cache[msg.hash] = [data, self.runs]
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            self.view.elements += 1
            self.view.kinds.add(el.WhichOneof("type"))
            texts = _texts(el)
            self.view.texts += texts
            if list(msg.metadata.delta_path[:1]) == [SIDEBAR]:
                self.view.sidebar += texts
            if el.WhichOneof("type") == "exception":
                self.view.exceptions.append(el.exception.message or el.exception.type)
            self.view.media.update(m.decode() for m in MEDIA.findall(raw))
        elif kind == "new_session":
            ns = msg.new_session
            self.session = ns.initialize.session_id or self.session
            self.max_age = ns.config.max_cached_message_age or self.max_age
            self.page_hash = ns.page_script_hash or self.page_hash
            if not msg.metadata.run.fragment_ids:  # a full run: the frontend drops every auto-rerun timer
                self.auto.append(("*", None))
        elif kind == "auto_rerun":
            self.auto.append((msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
        elif kind == "stop_auto_rerun":
            self.auto += [(f, None) for f in msg.stop_auto_rerun.fragment_ids]
        elif kind == "script_finished":
            self.finishes.append((now or time.monotonic(), msg.script_finished))
            if msg.script_finished == FULL:
                self.runs += 1
                for h in [h for h, (_, used) in self.cache.items() if self.runs - used > self.max_age]:
                    del self.cache[h]


def frames_of(action: dict) -> list[tuple[bytes, int, float]]:
    """A recorded action's frames: (BackMsg bytes, full runs to wait for first, then seconds to wait)."""
    return [(base64.b64decode(f["b64"]), f["after"], f["delay"]) for f in action["frames"]]


@dataclass
class Outcome:
    """One replayed action: client seconds (first frame sent -> run finished and media fetched), its window."""

    seconds: float
    t0: float
    t1: float
    errors: list[str]
    view: View
    fetched: int  # media GETs


class WireSession:
    """One app session over Streamlit's websocket protocol, replaying recorded actions."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        from tornado.httpclient import AsyncHTTPClient

        self.url, self.timeout = url.rstrip("/"), timeout
        self.http = AsyncHTTPClient(max_clients=64)  # one per event loop
        self.gets = asyncio.Semaphore(PARALLEL_GETS)
        self.dec = Decoder()
        self.widgets = None  # WidgetStates of the last frame sent, triggers cleared
        self.context = None  # ClientContext of the last frame sent
        self.shown: set[str] = set()  # media of the last finished run
        self.fetched: set[str] = set()
        self.fetches: list[asyncio.Task] = []
        self.media_errors: list[str] = []
        self.auto: dict[str, tuple[float, asyncio.Task]] = {}
        self.changed = asyncio.Event()
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.cookies: dict[str, str] = {}  # sent with every request, as a browser would (a proxy's sticky cookie)

    async def _get(self, path: str, what: str = "media") -> None:
        async with self.gets:
            try:
                r = await self.http.fetch(
                    self.url + path, raise_error=False, request_timeout=self.timeout, headers=self._cookie_header()
                )
                ok = r.code == 200 and r.body is not None
            except Exception as exc:  # noqa: BLE001 - a failed GET is counted
                ok, r = False, exc
            if not ok:
                self.media_errors.append(f"{what} GET {path}: {getattr(r, 'code', r)}")

    def _cookie_header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    async def open(self, page: str, static: list[str] = ()) -> None:
        """Load the page as a browser does (HTML, static files, health, host-config), then open the stream."""
        from websockets.asyncio.client import connect

        r = await self.http.fetch(f"{self.url}/{page}", request_timeout=self.timeout)
        cookies = [c.split(";", 1)[0] for c in r.headers.get_list("Set-Cookie")]
        self.cookies = dict(c.split("=", 1) for c in cookies if "=" in c)
        await asyncio.gather(*(self._get(p, "static") for p in [*static, "/_stcore/health", "/_stcore/host-config"]))
        if self.media_errors:
            raise ConnectionError(f"{len(self.media_errors)} failed: {self.media_errors[0]}")
        xsrf = next((c.split("=", 1)[1] for c in cookies if c.startswith("_streamlit_xsrf=")), "PLACEHOLDER_AUTH_TOKEN")
        ws_url = "ws" + self.url.removeprefix("http") + "/_stcore/stream"
        self.ws = await connect(
            ws_url,
            subprotocols=["streamlit", xsrf],
            origin=self.url,
            additional_headers=self._cookie_header() or None,
            max_size=None,
            open_timeout=self.timeout,
        )
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for data in self.ws:
                now = time.monotonic()
                if not isinstance(data, bytes):
                    continue
                before = (len(self.dec.finishes), len(self.dec.auto), set(self.dec.view.media))
                self.dec.feed(data, now)
                for url in self.dec.view.media - before[2]:
                    image = url.endswith(IMAGES)
                    if url not in self.shown and (image or url not in self.fetched):
                        self.fetched.add(url)
                        self.fetches.append(asyncio.create_task(self._get(url)))
                for fid, interval in self.dec.auto[before[1] :]:
                    self._schedule(fid, interval)
                if len(self.dec.finishes) > before[0]:
                    if self.dec.finishes[-1][1] == FULL:
                        self.shown = set(self.dec.view.media)
                    self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.changed.set()

    def _schedule(self, fid: str, interval: float | None) -> None:
        """Start, change or stop a fragment's auto-rerun timer, as the frontend's ``handleAutoRerun`` does."""
        if interval is not None and fid in self.auto and self.auto[fid][0] == interval:
            return
        for f in list(self.auto) if fid == "*" else [fid] if fid in self.auto else []:
            self.auto.pop(f)[1].cancel()
        if interval is not None:
            self.auto[fid] = (interval, asyncio.create_task(self._auto(fid, interval)))

    async def _auto(self, fid: str, interval: float) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        while True:
            await asyncio.sleep(interval)
            msg = BackMsg()
            rs = msg.rerun_script
            if self.widgets is not None:
                rs.widget_states.CopyFrom(self.widgets)
            if self.context is not None:
                rs.context_info.CopyFrom(self.context)
            rs.page_script_hash, rs.fragment_id, rs.is_auto_rerun = self.dec.page_hash, fid, True
            await self._send(msg)

    async def _send(self, msg) -> float:  # noqa: ANN001 - a BackMsg
        rs = msg.rerun_script
        rs.ClearField("cached_message_hashes")
        rs.cached_message_hashes.extend(self.dec.cache)
        t = time.monotonic()
        await self.ws.send(msg.SerializeToString())
        return t

    async def send_frame(self, data: bytes) -> float:
        """Send a recorded BackMsg as this session's: its cached hashes, this server's URL; keep its widget states."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetStates

        msg = BackMsg.FromString(data)
        rs = msg.rerun_script
        if rs.context_info.url:
            parts = urlsplit(rs.context_info.url)
            rs.context_info.url = self.url + parts.path + (f"?{parts.query}" if parts.query else "")
        if not rs.is_auto_rerun and not rs.fragment_id:
            self.widgets = WidgetStates()
            self.widgets.widgets.extend(w for w in rs.widget_states.widgets if w.WhichOneof("value") not in TRIGGERS)
            self.context = rs.context_info
        return await self._send(msg)

    async def _until(self, cond, what: str, poll: float | None = None) -> None:  # noqa: ANN001 - a callable
        deadline = time.monotonic() + self.timeout
        while not cond():
            if self.reader is None or self.reader.done():
                raise ConnectionError("the websocket closed")
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(what)
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, poll or left))
            except TimeoutError:
                pass

    async def replay(self, action: dict) -> Outcome:
        """Send an action's frames in their recorded order and pacing; done when its run has finished
        and the media it shows are fetched."""
        self.dec.view = View()
        first_fetch, first_err = len(self.fetches), len(self.media_errors)
        base = self.dec.runs
        t0 = sent = None
        last_frag = False
        for data, after, delay in frames_of(action):
            # the runs the browser saw before sending it; fewer where the server had less to do (a map the
            # recording computed is cached now): then the previous frame's run, finished and quiet for QUIET s
            def ready(a: int = after, last: float | None = sent) -> bool:
                fin = self.dec.finishes
                if last is None or self.dec.runs - base >= a:  # a first frame: the user acts at once
                    return True
                done = last is not None and any(t >= last and s == FULL for t, s in fin)
                return done and time.monotonic() - fin[-1][0] > QUIET

            await self._until(ready, "the run before the next frame", poll=0.1)
            await asyncio.sleep(delay)
            sent = await self.send_frame(data)
            t0 = t0 or sent
            last_frag = bool(self._fragment(data))
        if sent is None:
            return Outcome(0.0, time.monotonic(), time.monotonic(), ["no frames recorded"], self.dec.view, 0)
        want, expect, view = FRAGMENT if last_frag else FULL, action.get("expect"), self.dec.view
        try:  # the run, and any the server or a fragment starts after it, until the page shows what it must
            await self._until(
                lambda: (
                    any(t >= sent and s == want for t, s in self.dec.finishes)
                    and (view.shows(expect) or bool(view.exceptions))
                ),
                "no run finished",
            )
        except TimeoutError:
            if not any(t >= sent and s == want for t, s in self.dec.finishes):
                raise  # it finished without showing what it must: check() says so below
        await asyncio.gather(*self.fetches[first_fetch:])
        t1 = time.monotonic()
        errors = self.dec.view.check(action.get("expect")) + self.media_errors[first_err:]
        return Outcome(t1 - t0, t0, t1, errors, self.dec.view, len(self.fetches) - first_fetch)

    @staticmethod
    def _fragment(data: bytes) -> str:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        return BackMsg.FromString(data).rerun_script.fragment_id

    async def close(self) -> None:
        for _, task in self.auto.values():
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        await asyncio.gather(*self.fetches, return_exceptions=True)
