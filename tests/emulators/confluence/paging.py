"""Pagination as each surface does it, bugs included.

v1 pages by ``start``/``limit`` with a ``next`` link relative to ``_links.base``; ``limit`` is capped silently
(the answer's ``limit`` shows the cap). Cloud's CQL search pages by an opaque cursor. Data Center can
under-count ``start`` (Onyx #4129) and, in some builds, keeps answering full pages with a ``next`` link past the
end of listings over 200 items (CONFSERVER-95396). v2 pages by an opaque cursor in ``_links.next`` and the
``Link`` header (``rel="next"``); ``limit`` above the documented maximum is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from .auth import Call
from .model import JSON, ExpandTree
from .replies import Reply, int_param, v1_error, v2_error
from .state import ConfluenceState

CLOUD_MAX_START = 100_000


def effective_limit(request: web.Request, exp: ExpandTree, state: ConfluenceState, cloud: bool) -> int:
    requested = int_param(request, "limit", 25)
    if requested < 1:
        raise Reply(v1_error(400, "limit must be positive"))
    if cloud:
        cap = state.cloud_body_cap if "body" in exp else state.cloud_cap
    elif "body" in exp:
        cap = state.dc_body_cap
    else:
        cap = state.dc_expand_cap if exp else state.dc_plain_cap
    limit = min(requested, cap)
    over = state.timeout_body_pages_over
    if over is not None and "body" in exp and limit > over:
        # Big pages of bodies make the proxy in front of Confluence give up.
        html = "<html><head><title>504 Gateway Time-out</title></head><body><h1>504 Gateway Time-out</h1></body></html>"
        raise Reply(web.Response(status=504, text=html, content_type="text/html"))
    return limit


def start_param(request: web.Request, cloud: bool) -> int:
    start = int_param(request, "start", 0)
    if cloud and start > CLOUD_MAX_START:
        raise Reply(v1_error(400, f"start must be at most {CLOUD_MAX_START}"))
    return start


def window(
    state: ConfluenceState, cloud: bool, items: list[Any], start: int, limit: int
) -> tuple[list[Any], int | None]:
    """The slice a v1 listing answers and the ``start`` of its next link (None: last page)."""
    total = len(items)
    page = items[start : start + limit]
    if not cloud and state.dc_past_end and total > state.dc_past_end_threshold and start + limit >= total:
        # CONFSERVER-95396: a full page (records already returned fill it up) and a next link, forever.
        return items[-limit:], start + limit
    nxt: int | None = start + limit
    if start + limit >= total:
        # An exhausted listing has no next link, unless emulating the extra empty page quirk.
        nxt = start + limit if state.empty_page_with_next and start < total + limit else None
    size = len(page)
    if nxt is not None and not cloud and state.dc_miscount_start and size > 1:
        nxt -= min(max(1, size // 4), size - 1)
    return page, nxt


def rel_path(request: web.Request, call: Call) -> str:
    return request.path[len(call.prefix) :]


def v1_link(request: web.Request, call: Call, **params: str | int) -> str:
    kept = [(k, v) for k, v in request.query.items() if k not in ("start", "limit", "cursor", "next", "prev")]
    pairs: list[tuple[str, str | int]] = [*kept, *params.items()]
    return rel_path(request, call) + "?" + urlencode(pairs, quote_via=quote, safe=",")


def v1_list(
    request: web.Request,
    call: Call,
    base: str,
    context: str,
    results: list[JSON],
    start: int,
    limit: int,
    nxt: str | None,
) -> JSON:
    """A v1 list body. ``_links.base`` names the site even through the gateway (backstage community-plugins
    #4615), so a next link joined to it leaves the gateway."""
    self_url = base + rel_path(request, call)
    if request.rel_url.raw_query_string:
        self_url += "?" + request.rel_url.raw_query_string
    links: JSON = {"base": base, "context": context}
    if nxt is not None:
        links["next"] = nxt
    links["self"] = self_url
    return {"results": results, "start": start, "limit": limit, "size": len(results), "_links": links}


# -- opaque cursors --------------------------------------------------------------------------------------------
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode_cursor(position: int, limit: int, query: str) -> str:
    raw = json.dumps({"p": position, "l": limit, "q": _digest(query)}, separators=(",", ":")).encode()
    return "_f_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: str) -> tuple[int, int] | None:
    """(position, limit) of a cursor minted for ``query``; None for anything else."""
    if not cursor.startswith("_f_"):
        return None
    payload = cursor[3:]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        position, old_limit, digest = int(data["p"]), int(data["l"]), str(data["q"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if digest != _digest(query) or position < 0 or old_limit < 1:
        return None
    return position, old_limit


def cloud_search_start(state: ConfluenceState, cursor: str, limit: int, cql: str) -> int:
    decoded = decode_cursor(cursor, cql)
    if decoded is None:
        raise Reply(v1_error(400, "Invalid cursor"))
    position, old_limit = decoded
    if old_limit != limit:
        if state.cloud_cursor_strict_limit:
            raise Reply(v1_error(400, "The limit cannot change while paging with a cursor"))
        # The cursor remembers a page number, not an offset: a larger limit skips results.
        position = (position // old_limit) * limit
    return position


# -- v2 ----------------------------------------------------------------------------------------------------
def v2_query_key(request: web.Request, call: Call) -> str:
    kept = sorted((k, v) for k, v in request.query.items() if k not in ("cursor", "limit"))
    return rel_path(request, call) + "?" + urlencode(kept)


def v2_page(
    request: web.Request, call: Call, state: ConfluenceState, items: list[Any], default: int = 25
) -> tuple[list[Any], str | None]:
    """The slice of a v2 listing and the relative ``next`` URL (None on the last page)."""
    limit = int_param(request, "limit", default, v2=True)
    if limit < 1 or limit > state.v2_cap:
        raise Reply(v2_error(400, f"limit must be between 1 and {state.v2_cap}"))
    key = v2_query_key(request, call)
    position = 0
    cursor = request.query.get("cursor")
    if cursor:
        decoded = decode_cursor(cursor, key)
        if decoded is None:
            raise Reply(v2_error(400, "Invalid cursor"))
        position = decoded[0]
    page = items[position : position + limit]
    if position + limit >= len(items):
        return page, None
    kept = [(k, v) for k, v in request.query.items() if k not in ("cursor", "limit")]
    pairs = [*kept, ("limit", str(limit)), ("cursor", encode_cursor(position + limit, limit, key))]
    # Relative to the site, /wiki included (the spec's example: </wiki/api/v2/pages?limit=5&cursor=...>).
    return page, "/wiki" + rel_path(request, call) + "?" + urlencode(pairs, quote_via=quote, safe=",")


def v2_list(results: list[JSON], nxt: str | None, base: str) -> web.Response:
    from .replies import json_response

    links: JSON = {"base": base}
    headers: dict[str, str] = {}
    if nxt is not None:
        links["next"] = nxt
        headers["Link"] = f'<{nxt}>; rel="next"'
    return json_response({"results": results, "_links": links}, headers=headers or None)
