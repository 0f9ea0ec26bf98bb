"""The routes: indexes, documents, search, settings, tasks and keys. Writes answer 202 with an enqueued task."""

from __future__ import annotations

import copy
import re

from aiohttp import web

from . import search
from .documents import shown, validate_index_uid
from .errors import (
    JSON,
    MeiliError,
    compact,
    expect_object,
    expect_str,
    expect_str_list,
    expect_uint,
    missing_field,
    not_emulated,
    reject_unknown_fields,
    serde_unexpected,
    ticks,
    type_error,
)
from .filters import check_filterable, fuse_filters, matches, parse_filter
from .http import Ctx, Handler, answer, documents_body, json_body
from .settings import ALL_SETTINGS, EMULATED, hide_secret, validate_patch
from .settings import shown as shown_settings


def _enqueue(ctx: Ctx, index_uid: str | None, type_: str, details: JSON, payload: object = None) -> web.Response:
    task = ctx.store.enqueue(index_uid, type_, details, payload)
    return answer(task.summary(), 202)


async def health(ctx: Ctx) -> web.Response:
    return answer({"status": "available"})


async def create_index(ctx: Ctx) -> web.Response:
    body = expect_object(await json_body(ctx))
    reject_unknown_fields(body, ("uid", "primaryKey"))
    if "uid" not in body:
        raise missing_field("uid", "missing_index_uid")
    uid = validate_index_uid(body["uid"], "invalid_index_uid", ".uid")
    if not ctx.access.may_create(uid):
        raise MeiliError("invalid_api_key", "The provided API key is invalid.")
    primary_key = body.get("primaryKey")
    if primary_key is not None:
        expect_str(primary_key, "invalid_index_primary_key", ".primaryKey")
    return _enqueue(ctx, uid, "indexCreation", {"primaryKey": primary_key}, primary_key)


async def get_index(ctx: Ctx) -> web.Response:
    with ctx.store.lock:
        return answer(ctx.store.index(ctx.params["index"]).view())


async def delete_index(ctx: Ctx) -> web.Response:
    return _enqueue(ctx, ctx.params["index"], "indexDeletion", {"deletedDocuments": None})


async def add_documents(ctx: Ctx) -> web.Response:
    known = ("primaryKey", "csvDelimiter", "customMetadata", "skipCreation")
    for name in ctx.query:
        if name not in known:
            raise MeiliError("bad_request", f"Unknown parameter `{name}`: expected one of {ticks(known)}")
        if name != "primaryKey":
            raise not_emulated(f"The `{name}` parameter")
    docs = await documents_body(ctx)
    uid = ctx.params["index"]
    payload = {
        "documents": docs,
        "primaryKey": ctx.query.get("primaryKey"),
        "may_create": ctx.access.may_create(uid),
        "merge": ctx.request.method == "PUT",  # PUT updates: top-level fields it names replace, the rest stay
    }
    return _enqueue(
        ctx, uid, "documentAdditionOrUpdate", {"receivedDocuments": len(docs), "indexedDocuments": None}, payload
    )


async def fetch_documents(ctx: Ctx) -> web.Response:
    body = expect_object(await json_body(ctx))
    reject_unknown_fields(body, ("offset", "limit", "fields", "retrieveVectors", "filter", "ids", "sort"))
    if body.get("retrieveVectors") or body.get("sort") is not None:
        raise not_emulated("Fetching documents with `retrieveVectors` or `sort`")
    offset = 0 if body.get("offset") is None else expect_uint(body["offset"], "invalid_document_offset", ".offset")
    limit = 20 if body.get("limit") is None else expect_uint(body["limit"], "invalid_document_limit", ".limit")
    fields = (
        None if body.get("fields") is None else expect_str_list(body["fields"], "invalid_document_fields", ".fields")
    )
    ids = body.get("ids")
    if ids is not None and not isinstance(ids, list):
        raise type_error("invalid_document_ids", ".ids", "an array", ids)
    with ctx.store.lock:
        index = ctx.store.index(ctx.params["index"])
        node = parse_filter(body.get("filter"), "invalid_document_filter")
        if node is not None:
            # Unlike search and tasks, this route reports the engine's filter error without the index.
            check_filterable(node, index.settings["filterableAttributes"], "invalid_document_filter")
        wanted = None if ids is None else {i if isinstance(i, str) else compact(i) for i in ids}
        selected = [
            d
            for i, d in index.documents.items()
            if (wanted is None or i in wanted) and (node is None or matches(node, d))
        ]
        page = [shown(d, fields) for d in selected[offset : offset + limit]]
    return answer({"results": page, "offset": offset, "limit": limit, "total": len(selected)})


async def delete_batch(ctx: Ctx) -> web.Response:
    body = await json_body(ctx)
    if not isinstance(body, list):
        raise MeiliError(
            "bad_request", f"Json deserialize error: invalid type: {serde_unexpected(body)}, expected a sequence"
        )
    ids = [v if isinstance(v, str) else compact(v) for v in body]
    details = {"providedIds": len(ids), "deletedDocuments": None}
    return _enqueue(ctx, ctx.params["index"], "documentDeletion", details, {"ids": ids})


async def delete_by_filter(ctx: Ctx) -> web.Response:
    body = expect_object(await json_body(ctx))
    reject_unknown_fields(body, ("filter",))
    if "filter" not in body:
        raise missing_field("filter", "missing_document_filter")
    # The syntax is checked now; whether the attributes are filterable only when the task runs.
    if parse_filter(body["filter"], "invalid_document_filter") is None:
        raise MeiliError("invalid_document_filter", "Sending an empty filter is forbidden.")
    details = {"providedIds": 0, "deletedDocuments": None, "originalFilter": compact(body["filter"])}
    return _enqueue(ctx, ctx.params["index"], "documentDeletion", details, {"filter": body["filter"]})


async def search_index(ctx: Ctx) -> web.Response:
    request = search.validate_request(await json_body(ctx))
    uid = ctx.params["index"]
    request.filter = fuse_filters(request.filter, ctx.access.search_filter(uid))
    with ctx.store.lock:
        index = ctx.store.index(uid)
        return answer(search.run(uid, list(index.documents.values()), index.settings, request))


async def get_settings(ctx: Ctx) -> web.Response:
    with ctx.store.lock:
        return answer(shown_settings(ctx.store.index(ctx.params["index"]).settings))


async def get_setting(ctx: Ctx) -> web.Response:
    routes = {re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower(): name for name in ALL_SETTINGS}
    name = routes.get(ctx.params["setting"])
    if name is None:
        return web.Response(status=404)
    if name not in EMULATED:
        raise not_emulated(f"The `{name}` setting")
    with ctx.store.lock:
        return answer(shown_settings(ctx.store.index(ctx.params["index"]).settings)[name])


async def update_settings(ctx: Ctx) -> web.Response:
    patch = validate_patch(await json_body(ctx))
    uid = ctx.params["index"]
    details = copy.deepcopy(patch)
    for conf in (details.get("embedders") or {}).values():
        if isinstance(conf, dict) and isinstance(conf.get("apiKey"), str):
            conf["apiKey"] = hide_secret(conf["apiKey"])
    return _enqueue(ctx, uid, "settingsUpdate", details, {"patch": patch, "may_create": ctx.access.may_create(uid)})


async def get_task(ctx: Ctx) -> web.Response:
    raw = ctx.params["uid"]
    if not raw.isdigit():
        raise MeiliError(
            "invalid_task_uids", f"Invalid value in parameter `taskUid`: could not parse `{raw}` as a positive integer"
        )
    with ctx.store.lock:
        task = ctx.store.tasks.get(int(raw))
        # A key limited to some indexes does not see the tasks of the others.
        if task is None or (task.index_uid is not None and not ctx.access.sees(task.index_uid)):
            raise MeiliError("task_not_found", f"Task `{raw}` not found.")
        return answer(task.view())


ROUTES: list[tuple[str, str, str | None, Handler]] = [
    # (method, path, the action a key needs or None for a public route, handler)
    ("GET", "/health", None, health),
    ("POST", "/indexes", "indexes.create", create_index),
    ("GET", "/indexes/{index}", "indexes.get", get_index),
    ("DELETE", "/indexes/{index}", "indexes.delete", delete_index),
    ("POST", "/indexes/{index}/documents", "documents.add", add_documents),
    ("PUT", "/indexes/{index}/documents", "documents.add", add_documents),
    ("POST", "/indexes/{index}/documents/fetch", "documents.get", fetch_documents),
    ("POST", "/indexes/{index}/documents/delete-batch", "documents.delete", delete_batch),
    ("POST", "/indexes/{index}/documents/delete", "documents.delete", delete_by_filter),
    ("POST", "/indexes/{index}/search", "search", search_index),
    ("GET", "/indexes/{index}/settings", "settings.get", get_settings),
    ("PATCH", "/indexes/{index}/settings", "settings.update", update_settings),
    ("GET", "/indexes/{index}/settings/{setting}", "settings.get", get_setting),
    ("GET", "/tasks/{uid}", "tasks.get", get_task),
]
