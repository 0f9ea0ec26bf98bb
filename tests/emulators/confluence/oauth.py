"""``auth.atlassian.com`` and the gateway's resource discovery.

``POST /oauth/token`` takes a JSON body (as Atlassian documents) or a form body (RFC 6749):

- ``grant_type=client_credentials`` with a service account's ``client_id``/``client_secret``: an access token
  valid ``expires_in`` seconds (60 minutes by default), no refresh token.
- ``grant_type=refresh_token`` (3LO): rotating refresh tokens; the one presented is spent, and an unknown or
  spent one answers 403 ``{"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}``.

``GET https://api.atlassian.com/oauth/token/accessible-resources`` (Bearer) lists the sites a token reaches, with
the ``id`` used as cloudId in gateway URLs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from .credentials import AccessToken, OAuthClient
from .replies import json_response, oauth_error
from .state import ConfluenceState


async def _fields(request: web.Request) -> dict[str, str]:
    raw = await request.read()
    if request.content_type == "application/json":
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    form = await request.post()
    return {k: str(v) for k, v in form.items()}


class TokenEndpoint:
    def __init__(self, state: ConfluenceState, site_url: Callable[[], str]) -> None:
        self.state = state
        self.site_url = site_url

    def _answer(self, client: OAuthClient, refresh: bool) -> web.Response:
        now: datetime = self.state.now()
        token, renewal = self.state.credentials.issue(client, now, refresh)
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.state.credentials.access_ttl_s,
            "token_type": "Bearer",
            "scope": " ".join(sorted(client.scopes)),
        }
        if renewal is not None:
            body["refresh_token"] = renewal
        return json_response(body)

    async def token(self, request: web.Request) -> web.Response:
        fields = await _fields(request)
        grant = fields.get("grant_type", "")
        with self.state.lock:
            client = self.state.credentials.client(fields.get("client_id", ""), fields.get("client_secret", ""))
            if grant not in ("client_credentials", "refresh_token"):
                return oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant or 'none'}")
            if client is None:
                return oauth_error(401, "access_denied", "Unauthorized")
            if grant == "client_credentials":
                return self._answer(client, refresh=False)
            renewed = self.state.credentials.redeem(client, fields.get("refresh_token", ""))
            if renewed is None:
                return oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
            return self._answer(renewed, refresh=True)

    async def accessible_resources(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        with self.state.lock:
            token = (
                self.state.credentials.bearer(credential.strip(), self.state.now())
                if scheme.lower() == "bearer"
                else None
            )
            if not isinstance(token, AccessToken):
                return json_response({"code": 401, "message": "Unauthorized"}, status=401)
            site = {
                "id": self.state.cloud_id,
                "url": self.site_url(),
                "name": "emulated-site",
                "scopes": sorted(token.scopes),
                "avatarUrl": "",
            }
        return json_response([site])
