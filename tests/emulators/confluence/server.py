"""The emulator's HTTP side: the site, and on Cloud optionally the API gateway and auth.atlassian.com.

- Site: ``http://127.0.0.1:P/wiki`` (Cloud) or ``http://127.0.0.1:P[/context]`` (DC) — REST v1, v2 (Cloud),
  ``/_edge/tenant_info`` (Cloud, unauthenticated), attachment downloads.
- Gateway (``gateway=True``): ``http://127.0.0.1:G/ex/confluence/{cloudId}/wiki/rest/api|api/v2/...`` serving the
  same site; ``/oauth/token/accessible-resources``.
- Auth (``gateway=True``): ``http://127.0.0.1:A/oauth/token``.

Every request passes one pipeline: latency, authentication, scopes, CHANGE-864 removal (410 on the gateway,
``Warning: 299`` on the site), injected faults and rate limits, then the handler.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from .api_base import Api
from .auth import authenticate
from .dc_permissions import DcPermissions
from .faults import Faults
from .model import Channel, Edition, Handler, RequestRecord
from .oauth import TokenEndpoint
from .pipeline import Pipeline
from .replies import json_response, v1_error
from .routing import RouteInfo, register
from .state import ConfluenceState
from .v1_content import V1Content
from .v1_people import V1People
from .v1_search import V1Search
from .v2_content import V2Content
from .v2_spaces import V2Spaces


class ConfluenceEmulator:
    def __init__(
        self,
        state: ConfluenceState | None = None,
        *,
        edition: Edition = "cloud",
        context_path: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        gateway: bool = False,
    ) -> None:
        if edition not in ("cloud", "dc"):
            raise ValueError(f"unknown edition {edition}")
        if gateway and edition != "cloud":
            raise ValueError("the API gateway exists for Cloud only")
        self.state = state or ConfluenceState()
        self.edition: Edition = edition
        ctx = context_path.strip().rstrip("/")
        if ctx and not ctx.startswith("/"):
            ctx = "/" + ctx
        # Cloud always lives under /wiki; a DC context path is whatever the admin configured.
        self.context = "/wiki" if edition == "cloud" else ctx
        self.host = host
        self._port = port
        self.with_gateway = gateway
        self._ports: dict[str, int] = {}
        self._runners: list[web.AppRunner] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.routes: dict[str, RouteInfo] = {}
        self.v1_content = V1Content(self)
        self.v1_search = V1Search(self)
        self.v1_people = V1People(self)
        self.dc_permissions = DcPermissions(self)
        self.v2_content = V2Content(self)
        self.v2_spaces = V2Spaces(self)
        self.tokens = TokenEndpoint(self.state, lambda: self.base_url)

    # -- addresses -----------------------------------------------------------------------------------------
    def _url(self, listener: str) -> str:
        if listener not in self._ports:
            raise RuntimeError(f"the {listener} listener is not started")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self._ports[listener]}"

    @property
    def port(self) -> int:
        if "site" not in self._ports:
            raise RuntimeError("emulator is not started")
        return self._ports["site"]

    @property
    def base_url(self) -> str:
        return self._url("site")

    @property
    def endpoint(self) -> str:
        return self.base_url + self.context

    @property
    def cloud(self) -> bool:
        return self.edition == "cloud"

    @property
    def cloud_id(self) -> str:
        return self.state.cloud_id

    @property
    def gateway_url(self) -> str:
        """``https://api.atlassian.com`` of this emulator."""
        return self._url("gateway")

    @property
    def gateway_endpoint(self) -> str:
        """The gateway base a client calls instead of the site: ``.../ex/confluence/{cloudId}/wiki``."""
        return f"{self.gateway_url}/ex/confluence/{self.cloud_id}/wiki"

    @property
    def auth_url(self) -> str:
        """``https://auth.atlassian.com`` of this emulator."""
        return self._url("auth")

    @property
    def token_url(self) -> str:
        return self.auth_url + "/oauth/token"

    # -- apps ----------------------------------------------------------------------------------------------
    def _register_api(self, app: web.Application, prefix: str) -> None:
        v1: list[Api] = [self.v1_content, self.v1_search, self.v1_people]
        if not self.cloud:
            v1.append(self.dc_permissions)
        for api in v1:
            register(app, prefix + "/rest/api", api.routes(), self.routes, v2=False)
        if self.cloud:
            for v2api in (self.v2_content, self.v2_spaces):
                register(app, prefix + "/api/v2", v2api.routes(), self.routes, v2=True)

    def build_app(self) -> web.Application:
        """The site."""
        app = web.Application(middlewares=[Pipeline(self, "site", self.context).middleware])
        self._register_api(app, self.context)
        app.router.add_get(self.context + "/download/attachments/{page}/{filename}", self.v1_content.legacy_download)
        if self.cloud:
            app.router.add_get("/media/{token}/{att}", self.v1_content.media, name="media")
            app.router.add_get("/_edge/tenant_info", self._tenant_info, name="tenant_info")
        else:
            app.router.add_post(self.context + "/rpc/json-rpc/confluenceservice-v2", self.dc_permissions.json_rpc)
        return app

    def build_gateway_app(self) -> web.Application:
        prefix = f"/ex/confluence/{self.cloud_id}"
        app = web.Application(middlewares=[Pipeline(self, "gateway", prefix + "/wiki").middleware])
        self._register_api(app, prefix + "/wiki")
        app.router.add_get("/oauth/token/accessible-resources", self.tokens.accessible_resources, name="open.resources")
        return app

    def build_auth_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth_log])
        app.router.add_post("/oauth/token", self.tokens.token)
        return app

    async def _tenant_info(self, request: web.Request) -> web.Response:
        return json_response({"cloudId": self.cloud_id})

    @web.middleware
    async def _auth_log(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = RequestRecord(request.method, request.path, dict(request.query), 0, True, "auth")
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = json_response({"error": "not_found", "error_description": exc.reason}, status=exc.status)
        record.status = response.status
        with self.state.lock:
            self.state.requests.append(record)
        return response

    def authenticate(self, request: web.Request, channel: Channel, prefix: str) -> Any:
        return authenticate(self.state, request, self.edition, channel, prefix, self.endpoint)

    def faults(self) -> Faults:
        return Faults(self.state, self.cloud)

    def unknown(self, status: int, reason: str) -> web.Response:
        return v1_error(status, reason)

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start_async(self) -> None:
        if self._runners:
            raise RuntimeError("emulator already started")
        apps: list[tuple[str, web.Application, int]] = [("site", self.build_app(), self._port)]
        if self.with_gateway:
            apps += [("gateway", self.build_gateway_app(), 0), ("auth", self.build_auth_app(), 0)]
        for name, app, port in apps:
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            await web.TCPSite(runner, self.host, port).start()
            self._runners.append(runner)
            self._ports[name] = int(runner.addresses[0][1])

    async def stop_async(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    def start(self) -> None:
        """Serve from a daemon thread with its own event loop; returns once the sockets listen."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="confluence-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("emulator did not start within 10 seconds")
        if failure:
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._thread = self._loop = None

    def __enter__(self) -> ConfluenceEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
