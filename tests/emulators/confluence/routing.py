"""Route declarations: path, handler, the OAuth scopes Atlassian documents for the operation, and whether CHANGE-864
removed it from the API gateway.

Scopes come from each operation's ``x-atlassian-oauth2-scopes`` in Atlassian's OpenAPI documents: a token passes
if it holds every scope of one alternative (the "Current" classic set or the "Beta"/granular set).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .model import Handler

Scopes = tuple[frozenset[str], ...]


def _any(*alternatives: str) -> Scopes:
    return tuple(frozenset(a.split()) for a in alternatives)


SEARCH = _any("search:confluence", "read:content-details:confluence")
CONTENT_READ = _any("read:confluence-content.all", "read:confluence-content.summary", "read:content-details:confluence")
SPACE_READ_V1 = _any("read:confluence-space.summary", "read:space-details:confluence")
RESTRICTIONS = _any("read:confluence-content.all", "read:content-details:confluence")
DOWNLOAD = _any("readonly:content.attachment:confluence", "read:attachment:confluence")
GROUPS = _any("read:confluence-groups", "read:group:confluence")
USERS = _any("read:confluence-user", "read:user:confluence")
PAGE = _any("read:page:confluence")
SPACE = _any("read:space:confluence")
ATTACHMENT = _any("read:attachment:confluence")
COMMENT = _any("read:comment:confluence")
METADATA = _any("read:content.metadata:confluence")
FOLDER = _any("read:folder:confluence")
WHITEBOARD = _any("read:whiteboard:confluence")
DATABASE = _any("read:database:confluence")
EMBED = _any("read:embed:confluence")
NONE: Scopes = ()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # below the API root, e.g. "/content/{id}" (v1) or "/pages/{id}" (v2)
    handler: Handler
    name: str
    scopes: Scopes = NONE
    # CHANGE-864: answers 410 through the gateway; on the site it answers with a Warning: 299 header.
    deprecated: bool = False


@dataclass(frozen=True)
class RouteInfo:
    scopes: Scopes
    deprecated: bool
    v2: bool


def register(app: web.Application, root: str, routes: list[Route], table: dict[str, RouteInfo], v2: bool) -> None:
    for r in routes:
        app.router.add_route(r.method, root + r.path, r.handler, name=r.name)
        table[r.name] = RouteInfo(r.scopes, r.deprecated, v2)


def scopes_ok(held: frozenset[str], needed: Scopes) -> bool:
    return not needed or any(alt <= held for alt in needed)
