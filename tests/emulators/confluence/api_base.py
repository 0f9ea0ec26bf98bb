"""What every route module shares: the state, the renderer, the caller of a request and what it may see."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from aiohttp import web

from .auth import CALL, Call
from .model import CONTENT_STATUSES, Content, Edition, ExpandTree, Space
from .paging import effective_limit, start_param, v1_link, v1_list, window
from .permissions import can_read, can_view_space
from .render_content import content_json
from .render_v1 import V1Renderer
from .replies import Reply, json_response, v1_error, v2_error
from .routing import Route
from .state import ConfluenceState


class Site(Protocol):
    """The parts of :class:`ConfluenceEmulator` route modules use."""

    state: ConfluenceState
    edition: Edition
    context: str

    @property
    def endpoint(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def cloud(self) -> bool: ...


class Api:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.state = site.state

    @property
    def cloud(self) -> bool:
        return self.site.cloud

    def routes(self) -> list[Route]:
        raise NotImplementedError

    @property
    def render(self) -> V1Renderer:
        return V1Renderer(self.state, self.cloud, self.site.endpoint)

    @staticmethod
    def call(request: web.Request) -> Call:
        return request[CALL]

    # -- visibility --------------------------------------------------------------------------------------------
    def readable(self, request: web.Request, content: Content) -> bool:
        return can_read(self.state, self.call(request).viewer, content)

    def space_visible(self, request: web.Request, space: Space) -> bool:
        return can_view_space(self.state, self.call(request).viewer, space.key)

    def visible(self, request: web.Request, content_id: str, statuses: Iterable[str] | None = None) -> Content:
        """The content, if it exists in an allowed status and the caller may read it; 404 otherwise."""
        wanted = (
            set(statuses)
            if statuses is not None
            else (self.statuses(request) if "status" in request.query else {"current", "archived"})
        )
        try:
            content = self.state.get(content_id)
        except KeyError:
            content = None
        if content is None or content.status not in wanted or not self.readable(request, content):
            # Confluence answers "not found" whether the content is missing or hidden from the caller.
            raise Reply(v1_error(404, f"No content found with id : ContentId{{id={content_id}}}"))
        return content

    def visible_v2(self, request: web.Request, content_id: str, types: Iterable[str]) -> Content:
        try:
            content = self.state.get(content_id)
        except KeyError:
            content = None
        if (
            content is None
            or content.type not in set(types)
            or content.status not in ("current", "archived")
            or not self.readable(request, content)
        ):
            raise Reply(v2_error(404))
        return content

    def statuses(self, request: web.Request) -> set[str]:
        raw = [s for v in request.query.getall("status", []) for s in v.split(",") if s.strip()]
        wanted = {s.strip().lower() for s in raw} or {"current"}
        if "any" in wanted:
            return set(CONTENT_STATUSES)
        unknown = wanted - set(CONTENT_STATUSES)
        if unknown:
            raise Reply(v1_error(400, f"Invalid status: {', '.join(sorted(unknown))}"))
        return wanted

    def listing(self, request: web.Request, keep: Callable[[Content], bool]) -> list[Content]:
        """Content matching ``keep`` that the caller may read, in id order."""
        with self.state.lock:
            return [
                c
                for c in sorted(self.state.contents.values(), key=lambda c: c.num)
                if keep(c) and self.readable(request, c)
            ]

    # -- v1 paging ---------------------------------------------------------------------------------------------
    def paged(self, request: web.Request, items: list[Content], exp: ExpandTree) -> web.Response:
        call = self.call(request)
        limit = effective_limit(request, exp, self.state, self.cloud)
        start = start_param(request, self.cloud)
        with self.state.lock:
            page, nxt = window(self.state, self.cloud, items, start, limit)
            link = None if nxt is None else v1_link(request, call, limit=limit, start=nxt)
            results = [content_json(self.render, c, exp) for c in page]
        body = v1_list(request, call, self.site.endpoint, self.site.context, results, start, limit, link)
        return json_response(body)
