"""Data Center space permissions, by version.

- DC 9.1+ (CONFSERVER-78176): ``GET /rest/api/space/{key}/permissions`` answers a flat list of
  ``{operation: {operationKey, targetType}, subject: {type, userKey | name}, spaceKey, spaceId}``; anonymous
  grants are not in it but in ``GET /rest/api/space/{key}/permissions/anonymous``. A caller without Confluence-
  or space-admin rights gets HTTP 500, not 403 (CONFSERVER-99908). Older builds answer 404.
- Every version: JSON-RPC ``getSpacePermissionSets`` at ``/rpc/json-rpc/confluenceservice-v2``, grouped by legacy
  permission type (``VIEWSPACE`` ...), anonymous entries with neither ``userName`` nor ``groupName``; HTTP 401
  while the Remote API is disabled.
"""

from __future__ import annotations

import json

from aiohttp import web

from .api_base import Api
from .model import JSON, Grant, Space
from .replies import Reply, json_response, v1_error
from .routing import Route

# v2 operation/target -> the legacy permission type JSON-RPC names.
LEGACY_TYPES = {
    ("read", "space"): "VIEWSPACE",
    ("create", "page"): "EDITSPACE",
    ("create", "blogpost"): "EDITBLOG",
    ("create", "comment"): "COMMENT",
    ("create", "attachment"): "CREATEATTACHMENT",
    ("delete", "page"): "REMOVEPAGE",
    ("delete", "blogpost"): "REMOVEBLOG",
    ("delete", "comment"): "REMOVECOMMENT",
    ("delete", "attachment"): "REMOVEATTACHMENT",
    ("delete", "space"): "REMOVEOWNCONTENT",
    ("export", "space"): "EXPORTSPACE",
    ("administer", "space"): "SETSPACEPERMISSIONS",
    ("restrict_content", "space"): "SETPAGEPERMISSIONS",
}


class DcPermissions(Api):
    def routes(self) -> list[Route]:
        return [
            Route("GET", "/space/{key}/permissions", self.permissions, "dc.space.permissions"),
            Route("GET", "/space/{key}/permissions/anonymous", self.anonymous, "dc.space.permissions.anonymous"),
        ]

    def _space(self, request: web.Request) -> Space:
        if self.state.dc_version < (9, 1, 0):
            raise Reply(web.Response(status=404, text="Not Found"))
        key = request.match_info["key"]
        space = self.state.spaces.get(key)
        if space is None or not self.space_visible(request, space):
            raise Reply(v1_error(404, f"No space found with key : {key}"))
        if not self.state.is_space_admin(self.call(request).user, key):
            # CONFSERVER-99908: missing admin rights surface as a server error.
            raise Reply(v1_error(500, "java.lang.NullPointerException"))
        return space

    @staticmethod
    def _operation(g: Grant) -> JSON:
        return {"operationKey": g.operation, "targetType": g.target}

    async def permissions(self, request: web.Request) -> web.Response:
        state = self.state
        with state.lock:
            space = self._space(request)
            out: list[JSON] = []
            for g in state.space_grants(space.key):
                if g.principal == "anonymous":
                    continue
                if g.principal == "user":
                    user = state.users.get(g.principal_id)
                    subject: JSON = {"type": "user", "userKey": user.user_key if user else None}
                else:
                    subject = {"type": "group", "name": g.principal_id}
                out.append(
                    {"operation": self._operation(g), "subject": subject, "spaceKey": space.key, "spaceId": space.id}
                )
        return json_response(out)

    async def anonymous(self, request: web.Request) -> web.Response:
        with self.state.lock:
            space = self._space(request)
            out = [
                {"operation": self._operation(g)}
                for g in self.state.space_grants(space.key)
                if g.principal == "anonymous"
            ]
        return json_response(out)

    async def json_rpc(self, request: web.Request) -> web.Response:
        state = self.state
        if not state.dc_remote_api:
            return web.Response(status=401, text="Remote API is disabled")
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
        rid = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or payload.get("method") != "getSpacePermissionSets":
            return json_response(
                {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}}
            )
        params = payload.get("params") or []
        key = params[0] if params and isinstance(params[0], str) else ""
        with state.lock:
            caller = self.call(request).user
            if key not in state.spaces or not state.is_space_admin(caller, key):
                message = f"com.atlassian.confluence.rpc.NotPermittedException: Not permitted to view space {key}"
                return json_response({"jsonrpc": "2.0", "id": rid, "error": {"code": 0, "message": message}})
            sets: dict[str, list[JSON]] = {}
            for g in state.space_grants(key):
                legacy = LEGACY_TYPES.get((g.operation, g.target))
                if legacy is None:
                    continue
                user = state.users.get(g.principal_id) if g.principal == "user" else None
                sets.setdefault(legacy, []).append(
                    {
                        "type": legacy,
                        "userName": user.username if user else None,
                        "groupName": g.principal_id if g.principal == "group" else None,
                    }
                )
        result = [{"type": t, "spacePermissions": entries} for t, entries in sets.items()]
        return json_response({"jsonrpc": "2.0", "id": rid, "result": result})
