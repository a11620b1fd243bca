"""The sticky proxy of ``explorer serve --replicas`` (explorer/replicas.py), against two small tornado
servers standing in for the replicas: which replica a browser lands on and stays on, and that requests,
uploads, responses and the websocket stream pass through unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler, websocket_connect

from explorer.replicas import COOKIE, Pool, free_port, make_app


def _replica(name: str) -> Application:
    class Echo(RequestHandler):
        SUPPORTED_METHODS = ("GET", "PUT")

        def get(self, path: str) -> None:
            if path == "big":
                self.write(bytes(range(256)) * 20_000)  # 5 MB
                return
            if path == "cached":
                self.set_status(304)
                return
            self.set_header("Set-Cookie", f"_streamlit_xsrf=token-{name}; Path=/")
            seen = {k: self.request.headers.get(k) for k in ("Host", "Origin", "Cookie", "Connection")}
            self.write({"replica": name, "headers": seen})

        def put(self, path: str) -> None:
            self.write({"replica": name, "bytes": len(self.request.body), "sum": sum(self.request.body[::4096])})

    class Stream(WebSocketHandler):
        def select_subprotocol(self, subprotocols: list[str]) -> str | None:
            return subprotocols[0]

        def open(self) -> None:
            raw = self.request.headers.get("Sec-WebSocket-Protocol")
            hello = {"replica": name, "protocols": raw, "host": self.request.headers.get("Host")}
            self.write_message(json.dumps(hello))

        def on_message(self, message: str | bytes) -> None:
            if isinstance(message, bytes):
                self.write_message(message[::-1], binary=True)
            else:
                self.write_message(f"{name}:{message}")

    return Application([(r"/_stcore/stream", Stream), (r"/(.*)", Echo)])


@contextlib.asynccontextmanager
async def _proxied(live: tuple[bool, ...] = (True, True)):
    """(proxy URL, pool) with replicas A and B (a replica marked False has nothing listening)."""
    servers, urls = [], []
    for name, up in zip("AB", live):
        port = free_port()
        if up:
            servers.append(HTTPServer(_replica(name), max_body_size=64 * 1024**2))
            servers[-1].listen(port, "127.0.0.1")
        urls.append(f"http://127.0.0.1:{port}")
    pool = Pool(urls)
    port = free_port()
    proxy = HTTPServer(make_app(pool), max_body_size=64 * 1024**2)
    proxy.listen(port, "127.0.0.1")
    try:
        yield f"http://127.0.0.1:{port}", pool
    finally:
        for s in [proxy, *servers]:
            s.stop()


def _cookie(resp) -> str | None:
    for c in resp.headers.get_list("Set-Cookie"):
        if c.startswith(COOKIE + "="):
            return c.split(";", 1)[0].split("=", 1)[1]
    return None


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_a_browser_gets_a_replica_cookie_and_stays_on_its_replica():
    async def go():
        http = AsyncHTTPClient(force_instance=True)
        async with _proxied() as (url, _):
            first = await http.fetch(f"{url}/traverse")
            sticky = _cookie(first)
            assert sticky in ("0", "1")
            name = json.loads(first.body)["replica"]
            again = [
                json.loads((await http.fetch(f"{url}/page{i}", headers={"Cookie": f"{COOKIE}={sticky}"})).body)
                for i in range(6)
            ]
            assert {r["replica"] for r in again} == {name}
            # the replica's own cookie passes through beside the proxy's
            assert any(c.startswith("_streamlit_xsrf=token-") for c in first.headers.get_list("Set-Cookie"))

    _run(go())


def test_the_replica_sees_the_browsers_host_origin_and_cookies():
    async def go():
        http = AsyncHTTPClient(force_instance=True)
        async with _proxied() as (url, _):
            headers = {"Origin": "http://class.example:8501", "Cookie": f"{COOKIE}=1; _streamlit_xsrf=abc"}
            r = await http.fetch(HTTPRequest(f"{url}/x", headers={**headers, "Host": "class.example:8501"}))
            seen = json.loads(r.body)
            assert seen["replica"] == "B"
            assert seen["headers"]["Host"] == "class.example:8501"
            assert seen["headers"]["Origin"] == "http://class.example:8501"
            assert "_streamlit_xsrf=abc" in seen["headers"]["Cookie"]
            assert (seen["headers"]["Connection"] or "").lower() != "upgrade"

    _run(go())


def test_uploads_large_bodies_and_not_modified_pass_through():
    async def go():
        http = AsyncHTTPClient(force_instance=True, max_body_size=64 * 1024**2)
        async with _proxied() as (url, _):
            body = bytes(range(256)) * 8192  # 2 MB
            put = await http.fetch(f"{url}/upload", method="PUT", body=body)
            assert json.loads(put.body)["bytes"] == len(body)
            assert json.loads(put.body)["sum"] == sum(body[::4096])
            big = await http.fetch(f"{url}/big")
            assert big.body == bytes(range(256)) * 20_000
            cached = await http.fetch(f"{url}/cached", raise_error=False)
            assert cached.code == 304 and not cached.body

    _run(go())


def test_the_stream_round_trips_text_and_binary_and_keeps_the_subprotocol_positions():
    async def go():
        async with _proxied() as (url, pool):
            ws_url = "ws" + url.removeprefix("http") + "/_stcore/stream"
            req = HTTPRequest(ws_url, headers={"Cookie": f"{COOKIE}=0", "Host": "class.example:8501"})
            ws = await websocket_connect(req, subprotocols=["streamlit", "", "session-7"])
            assert ws.selected_subprotocol == "streamlit"
            hello = json.loads(await ws.read_message())
            assert hello["replica"] == "A"
            assert [p.strip() for p in hello["protocols"].split(",")] == ["streamlit", "", "session-7"]
            assert hello["host"] == "class.example:8501"
            assert pool.sockets == [1, 0]
            await ws.write_message("ping")
            assert await ws.read_message() == "A:ping"
            await ws.write_message(b"\x00\x01\x02\xff", binary=True)
            assert await ws.read_message() == b"\xff\x02\x01\x00"
            ws.close()
            for _ in range(100):  # the proxy hears the close and releases its count
                if pool.sockets == [0, 0]:
                    break
                await asyncio.sleep(0.02)
            assert pool.sockets == [0, 0]

    _run(go())


def test_new_sessions_spread_over_the_replicas_by_open_streams():
    async def go():
        async with _proxied() as (url, pool):
            ws_url = "ws" + url.removeprefix("http") + "/_stcore/stream"
            socks = [await websocket_connect(ws_url, subprotocols=["streamlit"]) for _ in range(4)]
            names = [json.loads(await s.read_message())["replica"] for s in socks]
            assert sorted(names) == ["A", "A", "B", "B"]
            assert pool.sockets == [2, 2]
            for s in socks:
                s.close()

    _run(go())


def test_a_replica_that_is_down_answers_502_once_then_its_browsers_move():
    async def go():
        http = AsyncHTTPClient(force_instance=True)
        async with _proxied(live=(False, True)) as (url, pool):
            down = await http.fetch(f"{url}/x", headers={"Cookie": f"{COOKIE}=0"}, raise_error=False)
            assert down.code == 502
            assert pool.up == [False, True]
            moved = await http.fetch(f"{url}/x", headers={"Cookie": f"{COOKIE}=0"})
            assert json.loads(moved.body)["replica"] == "B"
            assert _cookie(moved) == "1"

    _run(go())


@pytest.mark.parametrize("cookie", [None, "", "7", "-1", "x", "0;1"])
def test_pick_ignores_a_cookie_that_names_no_replica(cookie):
    pool = Pool(["http://a", "http://b"])
    pool.sockets = [3, 1]
    assert pool.pick(cookie) == 1


@pytest.mark.parametrize("args", [["--replicas", "2", "--port", "BUSY"], ["--replicas", "0"], ["--replicas", "two"]])
def test_serve_refuses_a_busy_port_or_a_bad_count_in_one_line(args, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = [str(busy.getsockname()[1]) if a == "BUSY" else a for a in args]
        env = {**os.environ, "EXPLORER_HOME": str(tmp_path)}
        r = subprocess.run(
            [sys.executable, "-m", "explorer", "serve", *args], env=env, capture_output=True, text=True, timeout=60
        )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()  # (the CLI starts its errors on a fresh line, after any progress bar)
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "in use" in r.stderr or "whole number from 1 to 64" in r.stderr
    assert not (tmp_path / "logs").exists()  # refused before any replica or worker started
