"""HTTP plumbing: the request context handlers get, JSON answers, and reading bodies as Meilisearch does."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .auth import Access
from .errors import JSON, MeiliError, describe, not_emulated
from .store import Store

_JSON_ACCEPTED = "Accepted values for the Content-Type header are: `application/json`"
_DOCS_ACCEPTED = (
    "Accepted values for the Content-Type header are: `application/json`, `application/x-ndjson`, `text/csv`"
)


@dataclass
class Ctx:
    request: web.Request
    params: dict[str, str]  # path parameters
    query: dict[str, str]
    access: Access
    store: Store
    payload_limit: int
    master_key: str | None


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


def answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(), status=status, content_type="application/json"
    )


def _mime(ctx: Ctx) -> str | None:
    header = ctx.request.headers.get("Content-Type")
    return None if header is None else header.split(";")[0].strip().lower()


async def read_body(ctx: Ctx) -> bytes:
    """The body, refused past the payload limit (aiohttp has already undone any Content-Encoding)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await ctx.request.content.read(65536):
        size += len(chunk)
        if size <= ctx.payload_limit:
            chunks.append(chunk)
    if size > ctx.payload_limit:
        raise MeiliError(
            "payload_too_large",
            "The provided payload reached the size limit. The maximum accepted payload size is "
            f"{_human(ctx.payload_limit)}.",
        )
    return b"".join(chunks)


def _human(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.2f} {unit}"
    return f"{n} B"


def _loads(raw: bytes) -> Any:
    def reject_constant(name: str) -> Any:
        raise ValueError(f"invalid number `{name}`")

    return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)


async def json_body(ctx: Ctx) -> Any:
    mime = _mime(ctx)
    if mime is None:
        raise MeiliError("missing_content_type", f"A Content-Type header is missing. {_JSON_ACCEPTED}")
    if mime != "application/json":
        header = ctx.request.headers["Content-Type"]
        raise MeiliError("invalid_content_type", f"The Content-Type `{header}` is invalid. {_JSON_ACCEPTED}")
    raw = await read_body(ctx)
    if not raw.strip():
        raise MeiliError("missing_payload", "A json payload is missing.")
    try:
        return _loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MeiliError("malformed_payload", f"The json payload provided is malformed. `{exc}`.") from None


async def documents_body(ctx: Ctx) -> list[JSON]:
    """A JSON array of documents (or one document). NDJSON and CSV are real formats the emulator leaves out."""
    mime = _mime(ctx)
    if mime is None:
        raise MeiliError("missing_content_type", f"A Content-Type header is missing. {_DOCS_ACCEPTED}")
    if mime in ("application/x-ndjson", "text/csv"):
        raise not_emulated(f"A `{mime}` document payload")
    if mime != "application/json":
        header = ctx.request.headers["Content-Type"]
        raise MeiliError("invalid_content_type", f"The Content-Type `{header}` is invalid. {_DOCS_ACCEPTED}")
    raw = await read_body(ctx)
    if not raw.strip():
        raise MeiliError("missing_payload", "A json payload is missing.")
    try:
        parsed = _loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MeiliError(
            "malformed_payload",
            f"The `json` payload provided is malformed. `Couldn't serialize document value: {exc}`.",
        ) from None
    if not isinstance(parsed, list | dict):
        raise MeiliError(
            "malformed_payload",
            f"The `json` payload provided is malformed. `Couldn't serialize document value: invalid type: "
            f"{describe(parsed)}, expected a map or a sequence`.",
        )
    docs = parsed if isinstance(parsed, list) else [parsed]
    for doc in docs:
        if not isinstance(doc, dict):
            # Meilisearch 1.50 answers a non-object in the array with a 500, not a 400.
            raise MeiliError(
                "internal", f"Couldn't serialize document value: invalid type: {describe(doc)}, expected a map"
            )
    return docs
