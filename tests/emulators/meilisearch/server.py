"""`MeiliEmulator`: serves the routes over real HTTP from a background thread and processes tasks in order."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import sys
import threading
import time
import traceback
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from .auth import Access, Authorizer
from .documents import validate_index_uid
from .errors import JSON, MeiliError
from .http import Ctx, Handler, answer
from .indexing import process
from .key_routes import KEY_ROUTES
from .keys import default_keys
from .routes import ROUTES
from .store import Store

_Route = tuple[str, tuple[str, ...], str | None, Handler]


class MeiliEmulator:
    """A Meilisearch server in a background thread. See the package docstring."""

    def __init__(
        self,
        master_key: str | None = "masterKey",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        payload_limit: int = 100_000_000,
        task_delay_s: float = 0.0,
    ) -> None:
        self.master_key = master_key
        self.host = host
        self.payload_limit = payload_limit
        self.task_delay_s = task_delay_s  # how long each task stays `processing`
        self.store = Store()
        if master_key is not None:
            self.store.keys.update((k.uid, k) for k in default_keys(master_key))
        self._auth = Authorizer(master_key, self.store.keys)
        self._routes: list[_Route] = [(m, tuple(p.strip("/").split("/")), a, h) for m, p, a, h in ROUTES + KEY_ROUTES]
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wake: asyncio.Event | None = None
        self._serving = False

    @property
    def fail_next_tasks(self) -> list[tuple[str, str]]:
        """(code, message) errors the next enqueued tasks fail with, one each: fault injection for tests."""
        return self.store.fail_next_tasks

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def __enter__(self) -> MeiliEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- test helpers -------------------------------------------------------------------------------------------

    def documents(self, index_uid: str) -> list[JSON]:
        """The stored documents of an index (empty when it does not exist), bypassing HTTP."""
        with self.store.lock:
            index = self.store.indexes.get(index_uid)
            return copy.deepcopy(list(index.documents.values())) if index else []

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Block until no task is enqueued or processing."""
        deadline = time.monotonic() + timeout_s
        while self.store.busy():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Meilisearch emulator tasks still pending after {timeout_s}s")
            time.sleep(0.01)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event-loop thread and listen; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("MeiliEmulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(ready, failure), name="meili-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("MeiliEmulator did not start within 30s")
        if failure:
            self._thread = None
            raise failure[0]

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._wake = asyncio.Event()
            loop.run_until_complete(self._listen())
            worker = loop.create_task(self._worker())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            worker.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(self._unlisten())
                loop.run_until_complete(worker)
            loop.close()

    def stop(self) -> None:
        """Stop listening, as a crashed backend: connections are refused, tasks wait. Data is kept."""
        if self._loop is not None and self._serving:
            asyncio.run_coroutine_threadsafe(self._unlisten(), self._loop).result(30)

    def restart(self) -> None:
        """Listen again on the same port with all data kept."""
        if self._loop is None:
            raise RuntimeError("MeiliEmulator was never started")
        if not self._serving:
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)

    def close(self) -> None:
        """Stop listening and end the background thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        self._loop = self._thread = None

    async def _listen(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # A short shutdown timeout: stop() must look like a crashed backend, not a graceful drain.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, self.host, self._port, reuse_address=True).start()
        self._runner = runner
        if self._port == 0:
            self._port = int(runner.addresses[0][1])
        self._serving = True
        assert self._wake is not None
        self._wake.set()

    async def _unlisten(self) -> None:
        self._serving = False
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _worker(self) -> None:
        """Process tasks one at a time, oldest first, while listening."""
        assert self._wake is not None
        while True:
            task = self.store.start_next() if self._serving else None
            if task is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await asyncio.sleep(self.task_delay_s)
            with self.store.lock:
                process(self.store, task)

    # --- dispatch -----------------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            response = await self._route(request)
        except MeiliError as exc:
            return answer(exc.body(), exc.status)
        except Exception as exc:  # the emulator's own bug: visible, not swallowed
            traceback.print_exc(file=sys.stderr)
            return answer(MeiliError("internal", f"emulator bug: {exc!r}").body(), 500)
        if request.method != "GET" and self._wake is not None:
            self._wake.set()
        return response

    async def _route(self, request: web.Request) -> web.StreamResponse:
        # Meilisearch ignores a trailing slash; each path segment is percent-decoded on its own.
        raw = request.rel_url.raw_path.strip("/")
        parts = [unquote(p) for p in raw.split("/")]
        found = [(r, p) for r in self._routes if (p := _match(r[1], parts)) is not None]
        chosen = next(((r, p) for r, p in found if r[0] == request.method), None)
        if chosen is None:
            return web.Response(status=405 if found else 404)
        (_, _, action, handler), params = chosen
        index = params.get("index")
        access = self._auth.check(request.headers.get("Authorization"), action, index) if action else None
        if index is not None:
            validate_index_uid(index)
        query = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        ctx = Ctx(request, params, query, access or Access(), self.store, self.payload_limit, self.master_key)
        return await handler(ctx)


def _match(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    if len(segments) != len(parts):
        return None
    params: dict[str, str] = {}
    for pattern, part in zip(segments, parts, strict=True):
        if pattern.startswith("{"):
            params[pattern[1:-1]] = part
        elif pattern != part:
            return None
    return params
