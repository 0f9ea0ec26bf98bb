"""CQL search, v1 only on both editions and not deprecated: ``/content/search`` and ``/search``.

Both return only what the caller may read. ``/content/search`` leaves out content in archived spaces and has no
``includeArchivedSpaces`` parameter (langchain-community #328); ``/search`` honours ``includeArchivedSpaces`` and
``excludeCurrentSpaces``. On Cloud, expanding ``ancestors.restrictions...`` fails the whole batch with 404 when
an ancestor of a hit cannot be read (trashed, draft), CONFCLOUD-77618 / CONFCLOUD-76424.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from . import routing as scopes
from .api_base import Api
from .cql import CqlError, parse_cql
from .model import JSON, Content, ExpandTree
from .paging import (
    cloud_search_start,
    effective_limit,
    encode_cursor,
    start_param,
    v1_link,
    v1_list,
    window,
)
from .render_content import content_json
from .replies import Reply, flag, json_response, parse_expand, v1_error
from .routing import Route


@dataclass
class Hits:
    cql: str
    page: list[Content]
    start: int
    limit: int
    total: int
    link: str | None


class V1Search(Api):
    def routes(self) -> list[Route]:
        return [
            Route("GET", "/content/search", self.content_search, "v1.content.search", scopes.SEARCH),
            Route("GET", "/search", self.search, "v1.search", scopes.SEARCH),
        ]

    def _in_scope(self, c: Content, archived_spaces: bool, current_spaces: bool) -> bool:
        space = self.state.spaces.get(c.space_key)
        archived = space is not None and space.status == "archived"
        return archived_spaces if archived else current_spaces

    def _hits(self, request: web.Request, exp: ExpandTree, archived_spaces: bool, current_spaces: bool) -> Hits:
        state = self.state
        call = self.call(request)
        cql = request.query.get("cql", "")
        if not cql.strip():
            raise Reply(v1_error(400, "The CQL query parameter is required"))
        limit = effective_limit(request, exp, state, self.cloud)
        cursor = request.query.get("cursor") if self.cloud else None
        start = cloud_search_start(state, cursor, limit, cql) if cursor else start_param(request, self.cloud)
        with state.lock:
            try:
                query = parse_cql(cql, state.tz, state.now())
            except CqlError as exc:
                bad = v1_error(400, f"Could not parse cql : {cql}")
                bad.headers["X-Emulator-Cql-Error"] = quote(str(exc))
                raise Reply(bad) from exc
            candidates = [
                c
                for c in query.candidates(state)
                if state.searchable(c) and self._in_scope(c, archived_spaces, current_spaces)
            ]
            hits = [c for c in query.run(state, candidates) if self.readable(request, c)]
            page, nxt = window(state, self.cloud, hits, start, limit)
        link = None
        if nxt is not None and self.cloud:
            link = v1_link(request, call, next="true", cursor=encode_cursor(nxt, limit, cql), limit=limit)
        elif nxt is not None:
            link = v1_link(request, call, limit=limit, start=nxt)
        return Hits(cql, page, start, limit, len(hits), link)

    def _check_ancestor_restrictions(self, exp: ExpandTree, page: list[Content]) -> None:
        wants = "restrictions" in exp.get("ancestors", {})
        if not (self.cloud and wants):
            return
        for c in page:
            for a in self.state.ancestors(c):
                if a.status not in ("current", "archived"):
                    # CONFCLOUD-77618: one unreadable ancestor fails the whole batch.
                    raise Reply(v1_error(404, "Cannot find content. Outdated version/old_draft/trashed"))

    def _prev_link(self, request: web.Request, body: JSON, hits: Hits) -> None:
        if self.cloud and hits.start > 0:
            prev = max(0, hits.start - hits.limit)
            cursor = encode_cursor(prev, hits.limit, hits.cql)
            body["_links"]["prev"] = v1_link(request, self.call(request), prev="true", cursor=cursor, limit=hits.limit)

    def _extras(self, request: web.Request, body: JSON, hits: Hits) -> None:
        body["totalSize"] = hits.total
        body["cqlQuery"] = hits.cql
        body["searchDuration"] = 1
        self._prev_link(request, body, hits)

    async def content_search(self, request: web.Request) -> web.Response:
        """Content objects. Data Center's answer also counts all hits (``totalSize``); Cloud's (a ContentArray)
        does not."""
        exp = parse_expand(request)
        hits = self._hits(request, exp, archived_spaces=False, current_spaces=True)
        with self.state.lock:
            self._check_ancestor_restrictions(exp, hits.page)
            results = [content_json(self.render, c, exp) for c in hits.page]
        body = v1_list(
            request,
            self.call(request),
            self.site.endpoint,
            self.site.context,
            results,
            hits.start,
            hits.limit,
            hits.link,
        )
        if self.cloud:
            self._prev_link(request, body, hits)
        else:
            self._extras(request, body, hits)
        return json_response(body)

    async def search(self, request: web.Request) -> web.Response:
        """Search results wrapping the content, with ``totalSize`` on both editions."""
        exp = parse_expand(request)
        content_exp = exp.get("content", {})
        archived = flag(request, "includeArchivedSpaces")
        current = not flag(request, "excludeCurrentSpaces")
        hits = self._hits(request, content_exp, archived_spaces=archived, current_spaces=current)
        render = self.render
        with self.state.lock:
            self._check_ancestor_restrictions(content_exp, hits.page)
            results = []
            for c in hits.page:
                content = content_json(render, c, content_exp)
                results.append(
                    {
                        "content": content,
                        "title": c.title,
                        "excerpt": "",
                        "url": content["_links"]["webui"],
                        "entityType": "content",
                        "lastModified": render.iso(c.when),
                        "score": 1.0,
                    }
                )
        body = v1_list(
            request,
            self.call(request),
            self.site.endpoint,
            self.site.context,
            results,
            hits.start,
            hits.limit,
            hits.link,
        )
        self._extras(request, body, hits)
        return json_response(body)
