"""`/keys`: list, create, read, rename and delete API keys (synchronous, unlike index writes)."""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from .errors import MeiliError
from .http import Ctx, Handler, answer, json_body
from .keys import ApiKey, new_key, parse_create, parse_patch


def _query_uint(ctx: Ctx, name: str, default: int) -> int:
    raw = ctx.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise MeiliError(
            f"invalid_api_key_{name}",
            f"Invalid value in parameter `{name}`: could not parse `{raw}` as a positive integer",
        )
    return int(raw)


async def list_keys(ctx: Ctx) -> web.Response:
    offset, limit = _query_uint(ctx, "offset", 0), _query_uint(ctx, "limit", 20)
    with ctx.store.lock:
        keys = sorted(ctx.store.keys.values(), key=lambda k: k.created_at, reverse=True)
        results = [k.view() for k in keys[offset : offset + limit]]
    return answer({"results": results, "offset": offset, "limit": limit, "total": len(keys)})


async def create_key(ctx: Ctx) -> web.Response:
    fields = parse_create(await json_body(ctx))
    assert ctx.master_key is not None  # the route is refused without one
    with ctx.store.lock:
        uid = fields.get("uid")
        if uid is not None and uid in ctx.store.keys:
            raise MeiliError("api_key_already_exists", f"`uid` field value `{uid}` is already an existing API key.")
        key = new_key(ctx.master_key, fields)
        ctx.store.keys[key.uid] = key
        return answer(key.view(), 201)


def _find(ctx: Ctx) -> ApiKey:
    """A key by its uid, or else by its value."""
    ref = ctx.params["key"]
    try:
        found = ctx.store.keys.get(str(uuid.UUID(ref)))
    except ValueError:
        found = next((k for k in ctx.store.keys.values() if k.key == ref), None)
    if found is None:
        raise MeiliError("api_key_not_found", f"API key `{ref}` not found.")
    return found


async def get_key(ctx: Ctx) -> web.Response:
    with ctx.store.lock:
        return answer(_find(ctx).view())


async def update_key(ctx: Ctx) -> web.Response:
    patch = parse_patch(await json_body(ctx))
    with ctx.store.lock:
        key = _find(ctx)
        key.name = patch.get("name", key.name)
        key.description = patch.get("description", key.description)
        key.updated_at = time.time()
        return answer(key.view())


async def delete_key(ctx: Ctx) -> web.Response:
    with ctx.store.lock:
        del ctx.store.keys[_find(ctx).uid]
    return web.Response(status=204)


KEY_ROUTES: list[tuple[str, str, str | None, Handler]] = [
    ("GET", "/keys", "keys.get", list_keys),
    ("POST", "/keys", "keys.create", create_key),
    ("GET", "/keys/{key}", "keys.get", get_key),
    ("PATCH", "/keys/{key}", "keys.update", update_key),
    ("DELETE", "/keys/{key}", "keys.delete", delete_key),
]
