"""The request pipeline every listener shares: latency, authentication, scopes, CHANGE-864 removal, faults.

Order matters and follows what clients observed: credentials first (a refused request does not consume injected
faults), then scopes (a granular-scope token calling a removed v1 read gets 401 "scope does not match",
kovetskiy/mark #917), then the removal itself (410 ``GoneException`` through the gateway, atlassian-python-api
#1560; the site still answers a classic token, with ``Warning: 299`` and ``Deprecation`` headers, #1545).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiohttp import web

from .auth import CALL, Call, scope_refusal
from .faults import Faults
from .model import Channel, Handler, RequestRecord
from .replies import GONE_MESSAGE, Reply, v1_error, v2_error
from .routing import RouteInfo, scopes_ok
from .state import DEPRECATION_DATE, ConfluenceState

_OPEN = ("media", "tenant_info")


class Host(Protocol):
    state: ConfluenceState
    routes: dict[str, RouteInfo]

    @property
    def cloud(self) -> bool: ...

    def authenticate(self, request: web.Request, channel: Channel, prefix: str) -> Call | web.Response: ...

    def faults(self) -> Faults: ...


class Pipeline:
    def __init__(self, host: Host, channel: Channel, prefix: str) -> None:
        self.host = host
        self.channel = channel
        self.prefix = prefix

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        state = self.host.state
        if state.latency_s > 0:
            await asyncio.sleep(state.latency_s)
        record = RequestRecord(request.method, request.path, dict(request.query), 0, False, self.channel)
        record.route = request.match_info.route.name or ""
        try:
            response = await self._dispatch(request, handler, record)
        except Reply as reply:
            response = reply.response
        except web.HTTPException as exc:
            # Unknown paths and methods answer in the surface's JSON error shape.
            response = v2_error(exc.status) if "/api/v2/" in request.path else v1_error(exc.status, exc.reason)
        record.status = response.status
        with state.lock:
            state.requests.append(record)
        return response

    async def _dispatch(self, request: web.Request, handler: Handler, record: RequestRecord) -> web.StreamResponse:
        host = self.host
        name = request.match_info.route.name or ""
        if name in _OPEN or name.startswith("open."):
            # The media host and tenant_info need no Confluence credentials and are not rate limited here.
            record.auth_ok = True
            return await handler(request)
        call = host.authenticate(request, self.channel, self.prefix)
        if isinstance(call, web.Response):
            return call
        record.auth_ok = True
        record.principal = call.viewer.user.username if call.viewer.user and not host.cloud else call.viewer.principal
        request[CALL] = call
        info = host.routes.get(name)
        if info is not None and call.scopes is not None and not scopes_ok(call.scopes, info.scopes):
            return scope_refusal()
        if info is not None and info.deprecated and self.channel == "gateway":
            return v1_error(410, GONE_MESSAGE)
        faults = host.faults()
        fault = faults.take()
        if fault is not None:
            return fault
        response = await handler(request)
        if info is not None and info.deprecated and host.cloud and self.channel == "site":
            response.headers["Warning"] = host.state.deprecation_warning
            response.headers["Deprecation"] = DEPRECATION_DATE
        faults.after(response)
        return response
