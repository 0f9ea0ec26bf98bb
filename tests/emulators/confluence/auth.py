"""Who is calling: credentials checked as the site, the API gateway or a Data Center server checks them.

- Cloud site (``SITE.atlassian.net/wiki``): Basic ``email:classic-token``. A scoped token answers 401 there, a
  wrong token 403; without credentials 401, unless the site allows anonymous access.
- API gateway (``api.atlassian.com/ex/confluence/{cloudId}/wiki``): Basic ``email:scoped-token`` or an OAuth 2.0
  access token as ``Authorization: Bearer``. A scoped API token sent as Bearer answers 404, an expired access
  token 401; a token lacking the operation's scopes gets 401 "Unauthorized; scope does not match".
- Data Center: ``Authorization: Bearer <PAT>`` or Basic ``username:password``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from aiohttp import web

from .credentials import AccessToken
from .model import Channel, Edition, User
from .permissions import Viewer
from .replies import gateway_error, v1_error
from .state import ConfluenceState


@dataclass
class Call:
    """An authenticated request: where it came in, as whom, and with which scopes (None: unscoped)."""

    channel: Channel
    prefix: str  # the path before /rest/api or /api/v2: "/wiki", a DC context path, "/ex/confluence/<id>/wiki"
    user: User | None
    scopes: frozenset[str] | None
    kind: str  # classic, scoped, oauth, pat, password, anonymous
    viewer: Viewer


# Where the pipeline leaves the authenticated call for the handlers.
CALL: web.RequestKey[Call] = web.RequestKey("call", Call)


def _credentials(request: web.Request) -> tuple[str, str | None, str | None, str]:
    """(scheme, basic user, basic secret, raw credential) of the Authorization header."""
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    user: str | None = None
    secret: str | None = None
    if scheme.lower() == "basic":
        try:
            user, _, secret = base64.b64decode(credential.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = None
    return scheme.lower(), user, secret, credential.strip()


def _call(
    state: ConfluenceState, channel: Channel, prefix: str, user: User | None, kind: str, scopes: frozenset[str] | None
) -> Call:
    return Call(channel, prefix, user, scopes, kind, Viewer.of(state, user))


def authenticate(
    state: ConfluenceState, request: web.Request, edition: Edition, channel: Channel, prefix: str, endpoint: str
) -> Call | web.Response:
    scheme, user, secret, credential = _credentials(request)
    with state.lock:
        if channel == "gateway":
            return _gateway(state, prefix, scheme, user, secret, credential)
        if edition == "cloud":
            return _cloud_site(state, request, prefix, endpoint, user, secret)
        return _dc(state, request, prefix, scheme, user, secret, credential)


def _anonymous(state: ConfluenceState, channel: Channel, prefix: str) -> Call | None:
    return _call(state, channel, prefix, None, "anonymous", None) if state.anonymous_access else None


def _cloud_site(
    state: ConfluenceState, request: web.Request, prefix: str, endpoint: str, user: str | None, secret: str | None
) -> Call | web.Response:
    if "Authorization" not in request.headers:
        anonymous = _anonymous(state, "site", prefix)
        if anonymous is not None:
            return anonymous
    if user is None or secret is None:
        return v1_error(401, "Unauthorized", {"WWW-Authenticate": f'Basic realm="{endpoint}"'})
    if state.credentials.classic_ok(user, secret):
        found = state.user_by_email(user)
        if found is not None:
            return _call(state, "site", prefix, found, "classic", None)
    if state.credentials.scoped_ok(user, secret) is not None:
        # Scoped tokens work only through api.atlassian.com; the site refuses them.
        return v1_error(401, "Unauthorized", {"WWW-Authenticate": f'Basic realm="{endpoint}"'})
    # Real Cloud answers a wrong API token with 403, not 401.
    return v1_error(403, "Current user not permitted to use Confluence")


def _gateway(
    state: ConfluenceState, prefix: str, scheme: str, user: str | None, secret: str | None, credential: str
) -> Call | web.Response:
    if scheme == "basic" and user is not None and secret is not None:
        scopes = state.credentials.scoped_ok(user, secret)
        found = state.user_by_email(user)
        if scopes is not None and found is not None:
            return _call(state, "gateway", prefix, found, "scoped", scopes)
        return gateway_error(401, "Unauthorized")
    if scheme == "bearer" and credential:
        if state.credentials.is_scoped_token(credential):
            return gateway_error(404, "Not Found")
        token = state.credentials.bearer(credential, state.now())
        if not isinstance(token, AccessToken):  # unknown or expired
            return gateway_error(401, "Unauthorized")
        found = state.users.get(token.account_id)
        if found is not None:
            return _call(state, "gateway", prefix, found, "oauth", token.scopes)
    return gateway_error(401, "Unauthorized")


def _dc(
    state: ConfluenceState,
    request: web.Request,
    prefix: str,
    scheme: str,
    user: str | None,
    secret: str | None,
    credential: str,
) -> Call | web.Response:
    header = "Authorization" in request.headers
    if not header:
        anonymous = _anonymous(state, "site", prefix)
        if anonymous is not None:
            return anonymous
    if scheme == "bearer":
        username = state.credentials.pat_user(credential)
        found = state.user_by_username(username) if username is not None else None
        if found is not None:
            return _call(state, "site", prefix, found, "pat", None)
    if user is not None and secret is not None and state.credentials.password_ok(user, secret):
        found = state.user_by_username(user)
        if found is not None:
            return _call(state, "site", prefix, found, "password", None)
    reason = "AUTHENTICATED_FAILED" if header else "AUTHENTICATION_DENIED"
    return v1_error(
        401,
        "Authentication failed" if header else "This request requires authentication",
        {"WWW-Authenticate": 'Basic realm="Confluence"', "X-Seraph-LoginReason": reason},
    )


def scope_refusal() -> web.Response:
    # kovetskiy/mark #917: what the gateway answers a scoped token calling an operation outside its scopes.
    return gateway_error(
        401, "Unauthorized; scope does not match", {"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"}
    )
