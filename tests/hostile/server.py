"""A small hostile HTTP server on 127.0.0.1 for security tests: it redirects to other hosts, sends foreign links,
trickles bytes, sends compression bombs and deep JSON, and never ends. It records every request it receives.

Each instance is its own origin (its own port), so two instances stand for "the endpoint" and "a foreign host".
It serves from a thread with its own event loop, like the emulators, so the client under test shares nothing with it.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Hit:
    method: str
    path: str  # path and query
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class HostileServer:
    """`route(path, handler)`; `hits` lists what it was asked. `url` is its origin."""

    host: str = "127.0.0.1"
    hits: list[Hit] = field(default_factory=list)
    _routes: dict[str, Handler] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def route(self, path: str, handler: Handler) -> None:
        self._routes[path] = handler

    def paths(self) -> list[str]:
        return [h.path for h in self.hits]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.hits.append(Hit(request.method, request.path_qs, dict(request.headers), body))
        handler = self._routes.get(request.path)
        if handler is None:
            return web.json_response({"message": "no such route"}, status=404)
        return await handler(request)

    def start(self) -> HostileServer:
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            self.port = int(self._runner.addresses[0][1])

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="hostile-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop, runner = self._loop, self._runner

        async def down() -> None:
            if runner is not None:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = self._thread = None


# --- canned behaviours --------------------------------------------------------------------------------------


def json_answer(data: Any, status: int = 200) -> Handler:
    raw = orjson.dumps(data)

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=raw, status=status, content_type="application/json")

    return handle


def raw_answer(body: bytes, *, headers: dict[str, str] | None = None, status: int = 200) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=body, status=status, headers=headers or {"Content-Type": "application/json"})

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    return handle


def bomb(decoded_bytes: int, encoding: str = "gzip") -> bytes:
    """`decoded_bytes` of zeros, compressed (about 1,000:1), built in steps so the test stays small itself."""
    wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    step = b"\0" * (1 << 20)
    parts = [comp.compress(step) for _ in range(decoded_bytes // len(step))]
    parts.append(comp.flush())
    return b"".join(parts)


def trickle(prefix: bytes, every_s: float, *, forever: bytes = b" ") -> Handler:
    """Headers at once, then `prefix`, then one byte every `every_s` seconds, never ending."""

    async def handle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(prefix)
        try:
            while True:
                await asyncio.sleep(every_s)
                await resp.write(forever)
        except (ConnectionError, asyncio.CancelledError):
            return resp

    return handle


def never_answers() -> Handler:
    async def handle(_: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    return handle
