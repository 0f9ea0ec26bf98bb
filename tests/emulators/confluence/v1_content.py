"""REST v1 content reads: listings, items, children (pages, attachments, comments), labels and downloads.

On Cloud all but the attachment download are CHANGE-864 reads: Atlassian's v1 OpenAPI no longer lists them, the
site still answers a classic token (with a ``Warning: 299`` header) and the API gateway answers 410.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from urllib.parse import quote

from aiohttp import web

from . import routing as scopes
from .api_base import Api, Site
from .model import Content
from .render_content import content_json
from .replies import Reply, int_param, json_response, parse_expand, v1_error
from .routing import Route

MEDIA_TOKEN_TTL_S = 300.0


class V1Content(Api):
    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self._media_tokens: dict[str, tuple[str, float]] = {}

    def routes(self) -> list[Route]:
        out = [
            Route("GET", "/content", self.contents, "v1.content", scopes.CONTENT_READ, deprecated=True),
            Route("GET", "/content/{id}", self.content, "v1.content.item", scopes.CONTENT_READ, deprecated=True),
            Route("GET", "/content/{id}/child/page", self.child_pages, "v1.child.page", scopes.CONTENT_READ, True),
            Route(
                "GET",
                "/content/{id}/child/attachment",
                self.child_attachments,
                "v1.child.attachment",
                scopes.CONTENT_READ,
                True,
            ),
            Route(
                "GET", "/content/{id}/child/comment", self.child_comments, "v1.child.comment", scopes.CONTENT_READ, True
            ),
            Route("GET", "/content/{id}/label", self.labels, "v1.label", scopes.CONTENT_READ, deprecated=True),
        ]
        if self.cloud:
            out.append(
                Route(
                    "GET",
                    "/content/{id}/child/attachment/{att}/download",
                    self.download,
                    "v1.download",
                    scopes.DOWNLOAD,
                )
            )
        return out

    # -- listings ------------------------------------------------------------------------------------------
    async def contents(self, request: web.Request) -> web.Response:
        exp = parse_expand(request)
        ctype = request.query.get("type", "page")
        if ctype not in ("page", "blogpost"):
            raise Reply(v1_error(400, f"Unsupported content type: {ctype}"))
        statuses = self.statuses(request)
        space_key = request.query.get("spaceKey")
        title = request.query.get("title")
        items = self.listing(
            request,
            lambda c: (
                c.type == ctype
                and c.status in statuses
                and (space_key is None or c.space_key == space_key)
                and (title is None or c.title == title)
            ),
        )
        return self.paged(request, items, exp)

    async def content(self, request: web.Request) -> web.Response:
        exp = parse_expand(request)
        with self.state.lock:
            content = self.visible(request, request.match_info["id"])
            return json_response(content_json(self.render, content, exp))

    async def child_pages(self, request: web.Request) -> web.Response:
        exp = parse_expand(request)
        with self.state.lock:
            parent = self.visible(request, request.match_info["id"])
        items = self.listing(request, lambda c: c.type == "page" and c.parent_id == parent.id and c.status == "current")
        return self.paged(request, items, exp)

    async def child_attachments(self, request: web.Request) -> web.Response:
        exp = parse_expand(request)
        filename = request.query.get("filename")
        media_type = request.query.get("mediaType")
        with self.state.lock:
            parent = self.visible(request, request.match_info["id"])
        items = self.listing(
            request,
            lambda c: (
                c.type == "attachment"
                and c.parent_id == parent.id
                and c.status == "current"
                and (filename is None or c.title == filename)
                and (media_type is None or c.media_type == media_type)
            ),
        )
        return self.paged(request, items, exp)

    async def child_comments(self, request: web.Request) -> web.Response:
        """Comments on a page or blog post. ``location`` filters (footer, inline, resolved); ``depth=all``
        adds replies on Data Center, while Cloud documents ``depth`` as unused (root comments only)."""
        exp = parse_expand(request)
        locations = {x for v in request.query.getall("location", []) for x in v.split(",") if x}
        everything = request.query.get("depth", "").lower() == "all" and not self.cloud
        with self.state.lock:
            parent = self.visible(request, request.match_info["id"])

        def keep(c: Content) -> bool:
            if c.type != "comment" or c.parent_id != parent.id or c.status != "current":
                return False
            if c.reply_to is not None and not everything:
                return False
            resolved = c.location == "inline" and c.resolution == "resolved"
            return not locations or c.location in locations or ("resolved" in locations and resolved)

        return self.paged(request, self.listing(request, keep), exp)

    async def labels(self, request: web.Request) -> web.Response:
        with self.state.lock:
            content = self.visible(request, request.match_info["id"])
            prefix = request.query.get("prefix")
            names = [] if prefix not in (None, "global") else list(content.labels)
            start = int_param(request, "start", 0)
            limit = min(int_param(request, "limit", 200), 200)
            page = names[start : start + limit]
            results = [{"prefix": "global", "name": n, "id": str(self.state._label_id(n)), "label": n} for n in page]
        body = {
            "results": results,
            "start": start,
            "limit": limit,
            "size": len(results),
            "_links": {"self": f"{self.site.endpoint}/rest/api/content/{content.id}/label"},
        }
        return json_response(body)

    # -- downloads -----------------------------------------------------------------------------------------
    def _attachment(self, request: web.Request, page_id: str, match: Callable[[Content], bool]) -> Content:
        with self.state.lock:
            for c in self.state.contents.values():
                if (
                    c.type == "attachment"
                    and c.parent_id == page_id
                    and c.status == "current"
                    and match(c)
                    and self.readable(request, c)
                ):
                    return c
        raise Reply(v1_error(404, "Attachment not found"))

    async def download(self, request: web.Request) -> web.Response:
        """Cloud: 302 to the media host with a short-lived token of its own (what Onyx moved to)."""
        att_id = request.match_info["att"]
        att = self._attachment(request, request.match_info["id"], lambda c: c.id == att_id)
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            now = time.monotonic()
            self._media_tokens = {k: v for k, v in self._media_tokens.items() if v[1] > now}
            self._media_tokens[token] = (att.id, now + MEDIA_TOKEN_TTL_S)
        location = f"{self.site.base_url}/media/{token}/{att.id}"
        return web.Response(status=302, headers={"Location": location})

    async def media(self, request: web.Request) -> web.Response:
        token, att_id = request.match_info["token"], request.match_info["att"]
        with self.state.lock:
            grant = self._media_tokens.get(token)
            if grant is None or grant[0] != att_id or grant[1] < time.monotonic():
                return json_response({"error": "invalid or expired token"}, status=401)
            try:
                att = self.state.get(att_id)
            except KeyError:
                return json_response({"error": "file not found"}, status=404)
            data, media_type, name = att.data, att.media_type, att.title
        disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        return web.Response(body=data, content_type=media_type, headers={"Content-Disposition": disposition})

    async def legacy_download(self, request: web.Request) -> web.Response:
        if self.cloud:
            # Cloud removed the servlet download path for API tokens; only the REST redirect works.
            return v1_error(401, "Unauthorized", {"WWW-Authenticate": f'OAuth realm="{self.site.endpoint}"'})
        name = request.match_info["filename"]
        att = self._attachment(request, request.match_info["page"], lambda c: c.title == name)
        disposition = f"attachment; filename*=UTF-8''{quote(att.title)}"
        return web.Response(body=att.data, content_type=att.media_type, headers={"Content-Disposition": disposition})
