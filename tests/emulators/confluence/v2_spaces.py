"""REST v2 spaces, space permissions, ancestors and the Cloud tree types (Cloud only).

- ``GET /spaces?keys=K`` resolves keys to ids (``status`` is ``current`` or ``archived``; ``homepageId``).
- ``GET /spaces/{id}/permissions`` lists assignments ``{id, principal: {type, id}, operation: {key,
  targetType}}`` for users and groups; grants to anonymous users have no documented principal there and are
  not listed (the v1 ``expand=permissions`` flags them with ``anonymousAccess``).
- ``GET /{pages|folders|whiteboards|databases|embeds}/{id}/ancestors`` answers ``{id, type}`` root first, up to
  ``limit`` (default 25, max 250) with no cursor: the next call starts from the highest ancestor returned.
"""

from __future__ import annotations

from aiohttp import web

from . import routing as scopes
from .api_base import Api
from .model import Space
from .paging import v2_list, v2_page
from .render_v2 import V2Renderer
from .replies import Reply, int_param, json_response, v2_error
from .routing import Route

_TREE = {"folders": "folder", "whiteboards": "whiteboard", "databases": "database", "embeds": "embed", "pages": "page"}
_TREE_SCOPES = {
    "folders": scopes.FOLDER,
    "whiteboards": scopes.WHITEBOARD,
    "databases": scopes.DATABASE,
    "embeds": scopes.EMBED,
}


class V2Spaces(Api):
    @property
    def v2(self) -> V2Renderer:
        return V2Renderer(self.state)

    def routes(self) -> list[Route]:
        out = [
            Route("GET", "/spaces", self.spaces, "v2.spaces", scopes.SPACE),
            Route("GET", "/spaces/{id}", self.space, "v2.space", scopes.SPACE),
            Route("GET", "/spaces/{id}/permissions", self.permissions, "v2.space.permissions", scopes.SPACE),
        ]
        for plural in _TREE:
            out.append(
                Route("GET", f"/{plural}/{{id}}/ancestors", self.ancestors, f"v2.{plural}.ancestors", scopes.METADATA)
            )
        for plural, scope in _TREE_SCOPES.items():
            out.append(Route("GET", f"/{plural}/{{id}}", self.tree_item, f"v2.{plural}.item", scope))
        return out

    def _visible_space(self, request: web.Request) -> Space:
        space = self.state.space_by_id(request.match_info["id"])
        if space is None or not self.space_visible(request, space):
            raise Reply(v2_error(404))
        return space

    async def spaces(self, request: web.Request) -> web.Response:
        keys = {k for v in request.query.getall("keys", []) for k in v.split(",") if k}
        ids = {k for v in request.query.getall("ids", []) for k in v.split(",") if k}
        kind = request.query.get("type")
        status = request.query.get("status")
        sort = request.query.get("sort", "id")
        if sort.lstrip("-") not in ("id", "key", "name"):
            raise Reply(v2_error(400, f"sort {sort} is not supported"))
        with self.state.lock:
            spaces = [
                s
                for s in self.state.spaces.values()
                if (not keys or s.key in keys)
                and (not ids or str(s.id) in ids)
                and (kind is None or s.type == kind)
                and (status is None or s.status == status)
                and self.space_visible(request, s)
            ]
        field = sort.lstrip("-")
        spaces.sort(key=lambda s: s.id if field == "id" else getattr(s, field).lower(), reverse=sort.startswith("-"))
        page, nxt = v2_page(request, self.call(request), self.state, spaces)
        with self.state.lock:
            return v2_list([self.v2.space(s) for s in page], nxt, self.site.endpoint)

    async def space(self, request: web.Request) -> web.Response:
        with self.state.lock:
            out = self.v2.space(self._visible_space(request))
        out["_links"]["base"] = self.site.endpoint
        return json_response(out)

    async def permissions(self, request: web.Request) -> web.Response:
        with self.state.lock:
            space = self._visible_space(request)
            grants = [g for g in self.state.space_grants(space.key) if g.principal != "anonymous"]
        page, nxt = v2_page(request, self.call(request), self.state, grants)
        with self.state.lock:
            return v2_list([self.v2.permission(g) for g in page], nxt, self.site.endpoint)

    async def ancestors(self, request: web.Request) -> web.Response:
        plural = request.path.rstrip("/").split("/")[-3]
        limit = int_param(request, "limit", 25, v2=True)
        if limit < 1 or limit > self.state.v2_cap:
            raise Reply(v2_error(400, f"limit must be between 1 and {self.state.v2_cap}"))
        with self.state.lock:
            c = self.visible_v2(request, request.match_info["id"], (_TREE[plural],))
            chain = self.state.ancestors(c)[-limit:]
            results = [{"id": a.id, "type": a.type} for a in chain]
        body: dict[str, object] = {"results": results}
        if plural == "pages":
            body["_links"] = {"base": self.site.endpoint}
        return json_response(body)

    async def tree_item(self, request: web.Request) -> web.Response:
        plural = request.path.rstrip("/").split("/")[-2]
        with self.state.lock:
            c = self.visible_v2(request, request.match_info["id"], (_TREE[plural],))
            out = self.v2.tree_item(c)
        out["_links"]["base"] = self.site.endpoint
        return json_response(out)
