"""Serve the Confluence emulator (Cloud) with a generated space, plus a small admin API for the benchmark.

    python -m bench.serve_space --pages 1000 --latency-ms 50

prints one JSON line ``{"endpoint": ..., "admin": ..., "space": {...}}`` once both listen, then serves until
SIGTERM. The admin API (its own port, so it is neither delayed, authenticated nor counted like Confluence
requests) answers:

- ``GET /requests``: Confluence requests served so far (``count``, ``by_kind``);
- ``POST /reset``: forget them;
- ``POST /change?fraction=0.01``: edit that share of the pages now (new version, new body);
- ``POST /change-comments?fraction=0.01``: edit that share of the comments now;
- ``POST /relabel?fraction=0.01``: add a label to that share of the pages, without a new version;
- ``POST /restrict?fraction=0.01``: change the read restrictions of that share of the pages (no new versions);
- ``POST /latency?ms=50``: change the per-request latency.

``--restricted-share 0.1`` gives that share of the pages read restrictions the benchmark account satisfies
(``bench.space.restrict_pages``), for the permissions benchmark (``bench.permissions``).

LangChain's default ``include_restricted_content=False`` asks ``GET /rest/api/content/{id}/restriction/byOperation``
for every page; the emulator answers it (no restrictions on the generated pages), so that loader runs with its
defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence

from aiohttp import web
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState, RequestRecord

from bench.space import (
    SeededSpace,
    change_comments,
    change_pages,
    change_restrictions,
    relabel_pages,
    restrict_pages,
    seed_space,
)


def request_kind(record: RequestRecord) -> str:
    """A short name for what a request was, for the breakdown in reports."""
    path = re.sub(r"^/wiki", "", record.path)
    if path.startswith("/media/"):
        return "attachment media"
    if path.endswith("/download"):
        return "attachment download"
    if "/restriction/byOperation" in path:
        return "restrictions"
    if "/api/v2/spaces/" in path and path.endswith("/permissions"):
        return "space permissions (v2)"
    if path == "/rest/api/content/search":
        expand = record.query.get("expand", "")
        cql = record.query.get("cql", "")
        if "body" in expand:
            return "search (bodies)"
        if "restrictions" in expand:
            return "search (restrictions lookup)" if cql.startswith("id in") else "search (restrictions sweep)"
        if "type in (attachment)" in cql or "type = attachment" in cql:
            return "search (changed attachments)" if "lastmodified" in cql else "search (attachments)"
        if "type = comment" in cql and "lastmodified" not in cql and "type in" not in cql:
            return "search (comment ids)"
        if "lastmodified" in cql:
            return "search (changed)"
        return "search (ids)"
    if path == "/rest/api/search":
        return "search (count)"
    if path == "/rest/api/content":
        return "content list (bodies)" if "body" in record.query.get("expand", "") else "content list"
    if path.startswith(("/rest/api/space", "/api/v2/spaces")):
        return "space"
    if path.startswith("/rest/api/content/"):
        return "content item"
    return path


def build_admin(emulator: ConfluenceEmulator, space: SeededSpace) -> web.Application:
    state = emulator.state

    async def requests(_: web.Request) -> web.Response:
        with state.lock:
            records = list(state.requests)
        kinds = Counter(request_kind(r) for r in records)
        failed = sum(1 for r in records if r.status >= 400)
        return web.json_response({"count": len(records), "failed": failed, "by_kind": dict(kinds)})

    async def reset(_: web.Request) -> web.Response:
        with state.lock:
            state.requests.clear()
        return web.json_response({"ok": True})

    async def change(request: web.Request) -> web.Response:
        fraction = float(request.query.get("fraction", "0.01"))
        with state.lock:
            changed = change_pages(state, space, fraction)
        return web.json_response({"changed": len(changed), "ids": changed})

    async def change_comments_now(request: web.Request) -> web.Response:
        fraction = float(request.query.get("fraction", "0.01"))
        with state.lock:
            changed = change_comments(state, space, fraction)
        return web.json_response({"changed": len(changed), "ids": changed})

    async def relabel(request: web.Request) -> web.Response:
        fraction = float(request.query.get("fraction", "0.01"))
        with state.lock:
            changed = relabel_pages(state, space, fraction)
        return web.json_response({"changed": len(changed), "ids": changed})

    async def restrict(request: web.Request) -> web.Response:
        fraction = float(request.query.get("fraction", "0.01"))
        with state.lock:
            changed = change_restrictions(state, space, fraction)
        return web.json_response({"changed": changed})

    async def latency(request: web.Request) -> web.Response:
        with state.lock:
            state.latency_s = float(request.query.get("ms", "0")) / 1000
        return web.json_response({"latency_s": state.latency_s})

    async def summary(_: web.Request) -> web.Response:
        return web.json_response(space.summary())

    app = web.Application()
    app.add_routes(
        [
            web.get("/requests", requests),
            web.post("/reset", reset),
            web.post("/change", change),
            web.post("/change-comments", change_comments_now),
            web.post("/relabel", relabel),
            web.post("/latency", latency),
            web.post("/restrict", restrict),
            web.get("/summary", summary),
        ]
    )
    return app


async def serve(
    pages: int, latency_ms: float, seed: int, host: str, port: int, admin_port: int, restricted_share: float = 0
) -> None:
    t0 = time.monotonic()
    state = ConfluenceState()
    space = seed_space(state, pages, seed=seed)
    if restricted_share > 0:
        restrict_pages(state, space, restricted_share)
    seeded_s = time.monotonic() - t0
    state.latency_s = latency_ms / 1000
    emulator = ConfluenceEmulator(state, edition="cloud", host=host, port=port)
    await emulator.start_async()
    runner = web.AppRunner(build_admin(emulator, space), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, admin_port).start()
    admin = f"http://{host}:{runner.addresses[0][1]}"
    info = {"endpoint": emulator.endpoint, "admin": admin, "space": space.summary(), "seeded_s": round(seeded_s, 2)}
    print(json.dumps(info), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await emulator.stop_async()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Confluence emulator with a generated benchmark space")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--admin-port", type=int, default=0)
    parser.add_argument("--restricted-share", type=float, default=0, help="share of pages with read restrictions")
    args = parser.parse_args(argv)
    asyncio.run(
        serve(args.pages, args.latency_ms, args.seed, args.host, args.port, args.admin_port, args.restricted_share)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
