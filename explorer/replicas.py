"""``explorer serve --replicas N``: N app servers behind one sticky proxy, on one machine.

Streamlit runs every session of a server in one Python interpreter, one script run at a time, so a
slider step that arrives while another session's map click runs waits for it. Replicas are separate
interpreters: each browser session is pinned to one of them (a cookie), and sessions spread over the
replicas by their open websockets. All replicas share one Dask cluster (the local one started here,
or ``$EXPLORER_SCHEDULER``) and one ``EXPLORER_HOME``, as in the README's Deployment section, so a
job started on one is seen and stoppable on every other, and a map is computed once.

The proxy forwards plain HTTP (pages, static files, ``/media/``, uploads) and the ``/_stcore/stream``
websocket unchanged, the browser's ``Host`` and ``Origin`` included, so each replica's own checks
(XSRF, origin) see the browser's request. Nothing is parsed or rewritten beyond the hop-by-hop headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

COOKIE = "explorer_replica"  # which replica a browser's session lives on
MAX_BODY = 128 * 1024**2  # uploads (64 MB, .streamlit/config.toml) and the largest page data, with room
HOP = {  # hop-by-hop headers (RFC 9110 7.6.1) and those the proxy sets itself
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
WS_HANDSHAKE = HOP | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
}
HEALTH_EVERY = 2.0  # seconds between the proxy's health checks of each replica


class Pool:
    """The replicas' base URLs, the websockets open on each, and which answer their health check."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = [u.rstrip("/") for u in upstreams]
        self.sockets = [0] * len(upstreams)
        self.up = [True] * len(upstreams)
        self._turn = itertools.count()

    def pick(self, cookie: str | None) -> int:
        """The replica for a request: the cookie's if it names one that is up, else the least busy one."""
        if cookie and cookie.isdigit() and int(cookie) < len(self.upstreams) and self.up[int(cookie)]:
            return int(cookie)
        live = [i for i, ok in enumerate(self.up) if ok] or list(range(len(self.upstreams)))
        least = min(self.sockets[i] for i in live)
        ties = [i for i in live if self.sockets[i] == least]
        return ties[next(self._turn) % len(ties)]


def make_app(pool: Pool) -> Any:
    """The proxy: a tornado Application that forwards to ``pool``'s replicas."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
    from tornado.httputil import HTTPHeaders
    from tornado.web import Application, RequestHandler
    from tornado.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect

    client = AsyncHTTPClient(force_instance=True, max_clients=256, max_body_size=MAX_BODY)

    def _copy(headers: HTTPHeaders, drop: set[str]) -> HTTPHeaders:
        out = HTTPHeaders()
        for k, v in headers.get_all():
            if k.lower() not in drop:
                out.add(k, v)
        return out

    class HTTPProxy(RequestHandler):
        SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

        def compute_etag(self) -> None:  # the replica's ETag, not one of the proxy's own
            return None

        async def _forward(self, *_: str) -> None:
            i = pool.pick(self.get_cookie(COOKIE))
            headers = _copy(self.request.headers, HOP)
            has_body = self.request.method in ("POST", "PUT", "PATCH") or bool(self.request.body)
            req = HTTPRequest(
                pool.upstreams[i] + self.request.uri,
                method=self.request.method,
                headers=headers,
                body=self.request.body if has_body else None,
                follow_redirects=False,
                decompress_response=False,
                allow_nonstandard_methods=True,
                request_timeout=600,
            )
            try:
                resp = await client.fetch(req, raise_error=False)
                failed = resp.error if resp.code == 599 else None  # 599: tornado's code for a failed connection
            except (OSError, HTTPClientError) as exc:
                failed = exc
            if failed is not None:
                pool.up[i] = False  # the next request goes elsewhere until the health check sees it again
                self.set_status(502)
                self.finish(f"replica {i} did not answer: {failed}")
                return
            self.set_status(resp.code, resp.reason)
            for name in ("Content-Type", "Server", "Date"):  # tornado's defaults: the replica's own come next
                self.clear_header(name)
            for k, v in resp.headers.get_all():
                if k.lower() not in HOP or (k.lower() == "content-length" and self.request.method == "HEAD"):
                    self.add_header(k, v)
            if self.get_cookie(COOKIE) != str(i):
                self.set_cookie(COOKIE, str(i), httponly=True, samesite="Lax")
            if resp.body and resp.code not in (204, 304) and self.request.method != "HEAD":
                self.write(resp.body)
            self.finish()

        get = head = post = put = delete = patch = options = _forward

    class StreamProxy(WebSocketHandler):
        """The browser's ``/_stcore/stream`` websocket, piped to its replica's, message by message."""

        upstream: Any = None
        replica = -1

        def check_origin(self, origin: str) -> bool:
            return True  # the replica checks the Origin against the Host header, both forwarded as sent

        def select_subprotocol(self, subprotocols: list[str]) -> str | None:
            return subprotocols[0] if subprotocols else None

        async def open(self, *_: str) -> None:
            i = self.replica = pool.pick(self.get_cookie(COOKIE))
            pool.sockets[i] += 1  # counted at once, so sessions arriving together spread
            raw = self.request.headers.get("Sec-WebSocket-Protocol", "")
            protocols = [p.strip() for p in raw.split(",")] if raw else None  # positions matter to Streamlit
            url = "ws" + pool.upstreams[i].removeprefix("http") + self.request.uri
            try:
                upstream = await websocket_connect(
                    HTTPRequest(url, headers=_copy(self.request.headers, WS_HANDSHAKE), request_timeout=60),
                    on_message_callback=self._from_replica,
                    subprotocols=protocols,
                    max_message_size=MAX_BODY,
                )
            except (OSError, HTTPClientError):
                pool.up[i] = False
                self._release()
                self.close(1011, f"replica {i} did not answer")
                return
            if self.replica < 0:  # the browser left while the replica answered
                upstream.close()
                return
            self.upstream = upstream

        def _from_replica(self, msg: str | bytes | None) -> None:
            if msg is None:  # the replica closed the stream
                self.close()
                return
            with contextlib.suppress(WebSocketClosedError):
                self.write_message(msg, binary=isinstance(msg, bytes))

        async def on_message(self, msg: str | bytes) -> None:
            if self.upstream is not None:
                with contextlib.suppress(WebSocketClosedError):
                    await self.upstream.write_message(msg, binary=isinstance(msg, bytes))

        def on_close(self) -> None:
            self._release()

        def _release(self) -> None:
            if self.upstream is not None:
                self.upstream.close()
                self.upstream = None
            if self.replica >= 0:
                pool.sockets[self.replica] -= 1
                self.replica = -1

    return Application(
        [(r"/_stcore/stream", StreamProxy), (r"/.*", HTTPProxy)],
        websocket_max_message_size=MAX_BODY,
    )


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


async def _watch(pool: Pool) -> None:
    """Mark replicas up or down by their health check."""
    while True:
        await asyncio.sleep(HEALTH_EVERY)
        for i, url in enumerate(pool.upstreams):
            pool.up[i] = await asyncio.to_thread(_healthy, url)


async def run_proxy(upstreams: list[str], port: int, address: str = "127.0.0.1") -> None:
    """Serve the proxy to ``upstreams`` on ``address:port`` until SIGINT or SIGTERM."""
    from tornado.httpserver import HTTPServer

    pool = Pool(upstreams)
    server = HTTPServer(make_app(pool), max_body_size=MAX_BODY)
    server.listen(port, address)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    watcher = asyncio.create_task(_watch(pool))
    await done.wait()
    watcher.cancel()
    server.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_replicas(
    app: Path, n: int, env: dict[str, str], launcher: list[str] | None = None, timeout: float = 180
) -> tuple[list[subprocess.Popen], list[str]]:
    """Start ``n`` Streamlit servers of ``app`` on free loopback ports; wait until each answers its health check."""
    from explorer.storage import home_dir

    logs = home_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs, urls = [], []
    for i in range(n):
        port = free_port()
        cmd = [*(launcher or [sys.executable, "-m", "streamlit"]), "run", str(app)]
        cmd += ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"]
        cmd += ["--browser.gatherUsageStats", "false"]
        with open(logs / f"replica-{i}.log", "ab") as log:  # its banner names a loopback port nobody should use
            procs.append(
                subprocess.Popen(cmd, cwd=app.parent, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            )
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    for proc, url in zip(procs, urls):
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(procs)
                raise RuntimeError(f"the replica at {url} did not start (exit {proc.poll()})")
            time.sleep(0.3)
    return procs, urls


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def serve(app: Path, n: int, port: int, address: str = "127.0.0.1", launcher: list[str] | None = None) -> int:
    """Run ``n`` replicas of ``app`` behind the proxy on ``address:port`` until SIGINT or SIGTERM.

    Three kinds of process: this one (the local cluster's scheduler, when it starts one), the
    replicas, and the proxy. The proxy has an interpreter of its own: the scheduler relays every
    training's progress and epoch snapshots, and must not hold up the messages of every session.
    """
    import threading

    from explorer.cluster import SCHEDULER_ENV, get_client, scheduler_address, shutdown
    from explorer.errors import ExplorerError
    from explorer.storage import home_dir

    try:  # refused before anything starts
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((address, port))
    except OSError as exc:
        raise ExplorerError(f"cannot serve on {address}:{port}: {exc.strerror or exc}") from None
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    scheduler = scheduler_address()
    if not scheduler:  # one local cluster for every replica, started here
        scheduler = get_client("").scheduler.address
    procs: list[subprocess.Popen] = []
    try:
        procs, urls = start_replicas(app, n, {**os.environ, SCHEDULER_ENV: scheduler}, launcher)
        cmd = [sys.executable, "-m", "explorer.replicas", "--port", str(port), "--address", address, *urls]
        procs.append(proxy := subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
        here = f"http://{'127.0.0.1' if address in ('', '0.0.0.0') else address}:{port}"
        deadline = time.monotonic() + 60
        while not _healthy(here):  # the proxy listens, and passes a health check through to a replica
            if proxy.poll() is not None or time.monotonic() > deadline:
                print(f"error: the proxy did not start on {address}:{port} (exit {proxy.poll()})", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(
            f"Latent Explorer: http://{address}:{port} ({n} replicas, jobs on {scheduler}; "
            f"their logs in {home_dir() / 'logs'})",
            flush=True,
        )
        while not stopping.wait(1.0):
            if any(p.poll() is not None for p in procs):  # a replica or the proxy died: stop, loudly
                gone = next(p for p in procs if p.poll() is not None)
                print(
                    f"error: {'the proxy' if gone is proxy else 'a replica'} exited ({gone.returncode})",
                    file=sys.stderr,
                )
                return 1
        return 0
    finally:
        stop(procs[::-1])  # the proxy first: no new requests reach replicas that are stopping
        shutdown()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="The sticky proxy of explorer serve --replicas (started by it).")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("upstreams", nargs="+", help="the replicas' base URLs")
    a = ap.parse_args()
    try:
        asyncio.run(run_proxy(a.upstreams, a.port, a.address))
    except OSError as exc:  # the port is taken or the address is not this machine's
        sys.exit(f"error: the proxy cannot listen on {a.address}:{a.port}: {exc.strerror or exc}")
