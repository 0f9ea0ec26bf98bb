"""REST v1 spaces, content restrictions, users and groups.

``/space`` and ``/space/{key}`` are CHANGE-864 reads (410 through the gateway); on Cloud ``expand=permissions``
lists each grant's subjects and flags anonymous grants with ``anonymousAccess``. Restrictions name Cloud users by
``accountId`` and groups by name and id; Data Center names users by ``username``/``userKey`` and groups by name.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from . import routing as scopes
from .api_base import Api
from .model import JSON, Content, Group, Space, User
from .paging import v1_link, v1_list, window
from .replies import Reply, int_param, json_response, parse_expand, v1_error
from .routing import Route


class V1People(Api):
    def routes(self) -> list[Route]:
        out = [
            Route("GET", "/space", self.spaces, "v1.space", scopes.SPACE_READ_V1, deprecated=True),
            Route("GET", "/space/{key}", self.space, "v1.space.item", scopes.SPACE_READ_V1, deprecated=True),
            Route("GET", "/content/{id}/restriction", self.restrictions, "v1.restriction", scopes.RESTRICTIONS),
            Route(
                "GET",
                "/content/{id}/restriction/byOperation",
                self.by_operation,
                "v1.restriction.ops",
                scopes.RESTRICTIONS,
            ),
            Route(
                "GET",
                "/content/{id}/restriction/byOperation/{op}",
                self.for_operation,
                "v1.restriction.op",
                scopes.RESTRICTIONS,
            ),
            Route("GET", "/user", self.user, "v1.user", scopes.USERS),
            Route("GET", "/user/current", self.current_user, "v1.user.current", scopes.USERS),
            Route("GET", "/user/memberof", self.member_of, "v1.user.memberof", scopes.USERS),
            Route("GET", "/group", self.groups, "v1.group", scopes.GROUPS),
            Route("GET", "/group/{name}/member", self.members, "v1.group.member", scopes.GROUPS),
        ]
        if self.cloud:
            out += [
                Route("GET", "/group/member", self.members, "v1.group.member.q", scopes.GROUPS),
                Route("GET", "/group/{groupId}/membersByGroupId", self.members, "v1.group.member.id", scopes.GROUPS),
            ]
        else:
            out.append(Route("GET", "/user/list", self.user_list, "v1.user.list", scopes.USERS))
        return out

    def _page(self, request: web.Request, items: list[JSON]) -> web.Response:
        start = int_param(request, "start", 0)
        limit = max(1, min(int_param(request, "limit", 200), 1000))
        page = items[start : start + limit]
        call = self.call(request)
        link = v1_link(request, call, start=start + limit, limit=limit) if start + limit < len(items) else None
        body = v1_list(request, call, self.site.endpoint, self.site.context, page, start, limit, link)
        return json_response(body)

    # -- spaces --------------------------------------------------------------------------------------------
    async def spaces(self, request: web.Request) -> web.Response:
        keys = set(request.query.getall("spaceKey", []))
        kind = request.query.get("type")
        exp = parse_expand(request)
        with self.state.lock:
            spaces = [
                s
                for s in sorted(self.state.spaces.values(), key=lambda s: s.key)
                if (not keys or s.key in keys) and (not kind or s.type == kind) and self.space_visible(request, s)
            ]
            cap = self.state.cloud_cap if self.cloud else self.state.dc_plain_cap
            items = [self.render.space(s, exp) for s in spaces]
        limit = max(1, min(int_param(request, "limit", 25), cap))
        start = int_param(request, "start", 0)
        page, nxt = window(self.state, self.cloud, items, start, limit)
        call = self.call(request)
        link = None if nxt is None else v1_link(request, call, limit=limit, start=nxt)
        return json_response(v1_list(request, call, self.site.endpoint, self.site.context, page, start, limit, link))

    def _space(self, request: web.Request, key: str) -> Space:
        space = self.state.spaces.get(key)
        if space is None or not self.space_visible(request, space):
            raise Reply(v1_error(404, f"No space found with key : {key}"))
        return space

    async def space(self, request: web.Request) -> web.Response:
        with self.state.lock:
            space = self._space(request, request.match_info["key"])
            return json_response(self.render.space(space, parse_expand(request)))

    # -- restrictions --------------------------------------------------------------------------------------
    def _restricted(self, request: web.Request) -> Content:
        return self.visible(request, request.match_info["id"])

    async def by_operation(self, request: web.Request) -> web.Response:
        with self.state.lock:
            content = self._restricted(request)
            body: JSON = {op: self.render.restriction(content, op) for op in ("read", "update")}
        body["_links"] = {"base": self.site.endpoint, "context": self.site.context}
        return json_response(body)

    async def for_operation(self, request: web.Request) -> web.Response:
        op = request.match_info["op"]
        if op not in ("read", "update"):
            raise Reply(v1_error(400, f"Invalid operation: {op}"))
        start = int_param(request, "start", 0)
        limit = int_param(request, "limit", 100)
        with self.state.lock:
            content = self._restricted(request)
            return json_response(self.render.restriction(content, op, start, limit))

    async def restrictions(self, request: web.Request) -> web.Response:
        with self.state.lock:
            content = self._restricted(request)
            results = [self.render.restriction(content, op) for op in ("read", "update")]
            signature = repr(sorted((op, sorted(r.users), sorted(r.groups)) for op, r in content.restrictions.items()))
        body = {
            "results": results,
            "start": 0,
            "limit": 100,
            "size": len(results),
            "restrictionsHash": hashlib.sha1(signature.encode()).hexdigest(),
            "_links": {"base": self.site.endpoint, "context": self.site.context},
        }
        return json_response(body)

    # -- users and groups ----------------------------------------------------------------------------------
    def _lookup(self, request: web.Request) -> User:
        q = request.query
        state = self.state
        found: User | None = None
        if self.cloud and "accountId" in q:
            found = state.users.get(q["accountId"])
        elif not self.cloud and "username" in q:
            found = state.user_by_username(q["username"])
        elif not self.cloud and "key" in q:
            found = state.user_by_key(q["key"])
        else:
            raise Reply(v1_error(400, "accountId is required" if self.cloud else "username or key is required"))
        if found is None:
            raise Reply(v1_error(404, "No user found"))
        return found

    async def user(self, request: web.Request) -> web.Response:
        with self.state.lock:
            return json_response(self.render.user(self._lookup(request)))

    async def current_user(self, request: web.Request) -> web.Response:
        user = self.call(request).user
        if user is None:
            anonymous: JSON = {"type": "anonymous", "displayName": "Anonymous", "_links": {}}
            return json_response(anonymous)
        return json_response(self.render.user(user))

    async def member_of(self, request: web.Request) -> web.Response:
        with self.state.lock:
            user = self._lookup(request)
            groups = [self.render.group(self.state.groups[n]) for n in sorted(self.state.groups_of(user))]
        return self._page(request, groups)

    async def groups(self, request: web.Request) -> web.Response:
        with self.state.lock:
            groups = [self.render.group(g) for g in sorted(self.state.groups.values(), key=lambda g: g.name)]
        return self._page(request, groups)

    def _group(self, request: web.Request) -> Group:
        state = self.state
        if "groupId" in request.match_info:
            found = state.group_by_id(request.match_info["groupId"])
        else:
            found = state.groups.get(request.match_info.get("name") or request.query.get("name", ""))
        if found is None:
            raise Reply(v1_error(404, "No group found"))
        return found

    async def members(self, request: web.Request) -> web.Response:
        with self.state.lock:
            group = self._group(request)
            ids = sorted(self.state.members.get(group.name, set()))
            users = [self.render.user(self.state.users[a]) for a in ids if a in self.state.users]
        return self._page(request, users)

    async def user_list(self, request: web.Request) -> web.Response:
        with self.state.lock:
            users = [self.render.user(u) for u in sorted(self.state.users.values(), key=lambda u: u.username)]
        return self._page(request, users)
