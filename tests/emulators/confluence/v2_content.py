"""REST v2 pages, blog posts, attachments, labels and comments (Cloud only).

Listings return only what the caller may read, page by an opaque cursor (``_links.next`` and ``Link``), and take
``limit`` up to 250. ``body-format=storage`` inlines the storage XHTML. ``status`` defaults to current and
archived. Comment listings of a page or blog post hold top-level comments; replies are under
``/{footer|inline}-comments/{id}/children``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import routing as scopes
from .api_base import Api
from .model import CONTENT_STATUSES, Content
from .paging import v2_list, v2_page
from .render_v2 import BODY_FORMATS, V2Renderer
from .replies import Reply, json_response, v2_error
from .routing import Route

_SORT_KEYS: dict[str, Callable[[Content], Any]] = {
    "id": lambda c: c.num,
    "created-date": lambda c: c.created,
    "modified-date": lambda c: c.when,
    "title": lambda c: c.title.lower(),
}


def _values(request: web.Request, name: str) -> list[str]:
    return [x.strip() for v in request.query.getall(name, []) for x in v.split(",") if x.strip()]


class V2Content(Api):
    @property
    def v2(self) -> V2Renderer:
        return V2Renderer(self.state)

    def routes(self) -> list[Route]:
        out = [
            Route("GET", "/pages", self.pages, "v2.pages", scopes.PAGE),
            Route("GET", "/pages/{id}", self.page, "v2.page", scopes.PAGE),
            Route("GET", "/blogposts", self.blogposts, "v2.blogposts", scopes.PAGE),
            Route("GET", "/blogposts/{id}", self.blogpost, "v2.blogpost", scopes.PAGE),
            Route("GET", "/spaces/{id}/pages", self.space_pages, "v2.space.pages", scopes.PAGE),
            Route("GET", "/spaces/{id}/blogposts", self.space_blogposts, "v2.space.blogposts", scopes.PAGE),
            Route("GET", "/attachments/{id}", self.attachment, "v2.attachment", scopes.ATTACHMENT),
        ]
        for kind, scope in (("pages", scopes.PAGE), ("blogposts", scopes.PAGE)):
            out += [
                Route(
                    "GET", f"/{kind}/{{id}}/attachments", self.attachments, f"v2.{kind}.attachments", scopes.ATTACHMENT
                ),
                Route("GET", f"/{kind}/{{id}}/labels", self.labels, f"v2.{kind}.labels", scope),
                Route("GET", f"/{kind}/{{id}}/footer-comments", self.footer, f"v2.{kind}.footer", scopes.COMMENT),
                Route("GET", f"/{kind}/{{id}}/inline-comments", self.inline, f"v2.{kind}.inline", scopes.COMMENT),
            ]
        out += [
            Route("GET", "/attachments/{id}/labels", self.labels, "v2.attachments.labels", scopes.ATTACHMENT),
            Route("GET", "/footer-comments/{id}", self.comment, "v2.footer.item", scopes.COMMENT),
            Route("GET", "/inline-comments/{id}", self.comment, "v2.inline.item", scopes.COMMENT),
            Route("GET", "/footer-comments/{id}/children", self.replies, "v2.footer.children", scopes.COMMENT),
            Route("GET", "/inline-comments/{id}/children", self.replies, "v2.inline.children", scopes.COMMENT),
        ]
        return out

    # -- parameters ----------------------------------------------------------------------------------------
    @staticmethod
    def body_format(request: web.Request) -> str | None:
        fmt = request.query.get("body-format")
        if fmt is not None and fmt not in BODY_FORMATS:
            # The emulator renders storage (and view as the same XHTML); ADF and exports are not modelled.
            raise Reply(v2_error(400, f"body-format {fmt} is not supported by the emulator"))
        return fmt

    @staticmethod
    def v2_statuses(request: web.Request) -> set[str]:
        wanted = set(_values(request, "status")) or {"current", "archived"}
        if wanted - set(CONTENT_STATUSES):
            raise Reply(v2_error(400, "invalid status"))
        return wanted

    @staticmethod
    def sorted_by(request: web.Request, items: list[Content], allowed: tuple[str, ...]) -> list[Content]:
        raw = request.query.get("sort", "id" if "id" in allowed else allowed[0])
        field, desc = raw.lstrip("-"), raw.startswith("-")
        if field not in allowed:
            raise Reply(v2_error(400, f"sort {raw} is not supported"))
        return sorted(items, key=_SORT_KEYS[field], reverse=desc)

    def _listing(self, request: web.Request, ctype: str, space_ids: set[str], roots: bool = False) -> web.Response:
        fmt = self.body_format(request)
        statuses = self.v2_statuses(request)
        ids = set(_values(request, "id"))
        title = request.query.get("title")
        spaces = {s.key for s in self.state.spaces.values() if str(s.id) in space_ids}
        items = self.listing(
            request,
            lambda c: (
                c.type == ctype
                and c.status in statuses
                and (not space_ids or c.space_key in spaces)
                and (not ids or c.id in ids)
                and (title is None or c.title == title)
                and (not roots or c.parent_id is None)
            ),
        )
        allowed = (
            ("id", "created-date", "modified-date", "title")
            if ctype == "page"
            else ("id", "created-date", "modified-date")
        )
        items = self.sorted_by(request, items, allowed)
        page, nxt = v2_page(request, self.call(request), self.state, items)
        with self.state.lock:
            return v2_list([self.v2.page(c, fmt) for c in page], nxt, self.site.endpoint)

    # -- pages and blog posts ------------------------------------------------------------------------------
    async def pages(self, request: web.Request) -> web.Response:
        return self._listing(request, "page", set(_values(request, "space-id")))

    async def blogposts(self, request: web.Request) -> web.Response:
        return self._listing(request, "blogpost", set(_values(request, "space-id")))

    def _space_id(self, request: web.Request) -> set[str]:
        space = self.state.space_by_id(request.match_info["id"])
        if space is None or not self.space_visible(request, space):
            raise Reply(v2_error(404))
        return {str(space.id)}

    async def space_pages(self, request: web.Request) -> web.Response:
        """``depth=root`` keeps the space's top-level pages only (default ``all``)."""
        depth = request.query.get("depth", "all")
        if depth not in ("all", "root"):
            raise Reply(v2_error(400, "depth must be all or root"))
        return self._listing(request, "page", self._space_id(request), roots=depth == "root")

    async def space_blogposts(self, request: web.Request) -> web.Response:
        return self._listing(request, "blogpost", self._space_id(request))

    def _single(self, request: web.Request, ctype: str) -> web.Response:
        fmt = self.body_format(request)
        with self.state.lock:
            c = self.visible_v2(request, request.match_info["id"], (ctype,))
            out = self.v2.page(c, fmt)
            if request.query.get("include-labels") == "true":
                labels = [self.v2.label(n) for n in c.labels]
                out["labels"] = {"results": labels, "meta": {"hasMore": False, "cursor": None}, "_links": {}}
            out["_links"]["base"] = self.site.endpoint
        return json_response(out)

    async def page(self, request: web.Request) -> web.Response:
        return self._single(request, "page")

    async def blogpost(self, request: web.Request) -> web.Response:
        return self._single(request, "blogpost")

    # -- attachments and labels ----------------------------------------------------------------------------
    def _container(self, request: web.Request) -> Content:
        kind = "blogpost" if "/blogposts/" in request.path else "page"
        return self.visible_v2(request, request.match_info["id"], (kind,))

    async def attachments(self, request: web.Request) -> web.Response:
        with self.state.lock:
            container = self._container(request)
        statuses = self.v2_statuses(request)
        filename, media_type = request.query.get("filename"), request.query.get("mediaType")
        items = self.listing(
            request,
            lambda c: (
                c.type == "attachment"
                and c.parent_id == container.id
                and c.status in statuses
                and (filename is None or c.title == filename)
                and (media_type is None or c.media_type == media_type)
            ),
        )
        items = self.sorted_by(request, items, ("created-date", "modified-date"))
        page, nxt = v2_page(request, self.call(request), self.state, items, default=50)
        with self.state.lock:
            return v2_list([self.v2.attachment(c) for c in page], nxt, self.site.endpoint)

    async def attachment(self, request: web.Request) -> web.Response:
        with self.state.lock:
            c = self.visible_v2(request, request.match_info["id"], ("attachment",))
            out = self.v2.attachment(c)
            out["_links"]["base"] = self.site.endpoint
        return json_response(out)

    async def labels(self, request: web.Request) -> web.Response:
        kinds = ("attachment",) if request.path.rstrip("/").split("/")[-3] == "attachments" else ("page", "blogpost")
        with self.state.lock:
            c = self.visible_v2(request, request.match_info["id"], kinds)
            prefix = request.query.get("prefix")
            names = sorted(c.labels) if prefix in (None, "global") else []
        page, nxt = v2_page(request, self.call(request), self.state, names)
        return v2_list([self.v2.label(n) for n in page], nxt, self.site.endpoint)

    # -- comments ------------------------------------------------------------------------------------------
    def _comments(self, request: web.Request, location: str) -> web.Response:
        fmt = self.body_format(request)
        statuses = self.v2_statuses(request)
        resolution = set(_values(request, "resolution-status"))
        with self.state.lock:
            container = self._container(request)
        items = self.listing(
            request,
            lambda c: (
                c.type == "comment"
                and c.parent_id == container.id
                and c.reply_to is None
                and c.location == location
                and c.status in statuses
                and (not resolution or c.resolution in resolution)
            ),
        )
        items = self.sorted_by(request, items, ("created-date", "modified-date"))
        page, nxt = v2_page(request, self.call(request), self.state, items)
        with self.state.lock:
            return v2_list([self.v2.comment(c, fmt) for c in page], nxt, self.site.endpoint)

    async def footer(self, request: web.Request) -> web.Response:
        return self._comments(request, "footer")

    async def inline(self, request: web.Request) -> web.Response:
        return self._comments(request, "inline")

    def _comment(self, request: web.Request) -> Content:
        location = "inline" if "/inline-comments/" in request.path else "footer"
        c = self.visible_v2(request, request.match_info["id"], ("comment",))
        if c.location != location:
            raise Reply(v2_error(404))
        return c

    async def comment(self, request: web.Request) -> web.Response:
        fmt = self.body_format(request)
        with self.state.lock:
            c = self._comment(request)
            out = self.v2.comment(c, fmt)
            out["_links"]["base"] = self.site.endpoint
        return json_response(out)

    async def replies(self, request: web.Request) -> web.Response:
        fmt = self.body_format(request)
        with self.state.lock:
            parent = self._comment(request)
        items = self.listing(
            request, lambda c: c.type == "comment" and c.reply_to == parent.id and c.status == "current"
        )
        items = self.sorted_by(request, items, ("created-date", "modified-date"))
        page, nxt = v2_page(request, self.call(request), self.state, items)
        with self.state.lock:
            return v2_list([self.v2.comment(c, fmt, as_child=True) for c in page], nxt, self.site.endpoint)
