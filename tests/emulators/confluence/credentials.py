"""Credentials the emulated site and its API gateway accept: API tokens, PATs, passwords and OAuth 2.0 grants.

Classic API tokens work on the site URL only; scoped tokens (what Atlassian issues now, and all a service account
has) and OAuth access tokens work through ``api.atlassian.com`` only. Access tokens expire against the state's
clock, so a test moves ``ConfluenceState.set_now`` forward instead of sleeping.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

# Every scope a token granted "all scopes" carries. Classic and granular names as the OpenAPI documents list them.
ALL_SCOPES = frozenset(
    {
        "search:confluence",
        "read:confluence-content.all",
        "read:confluence-content.summary",
        "read:confluence-space.summary",
        "read:confluence-content.permission",
        "read:confluence-user",
        "read:confluence-groups",
        "readonly:content.attachment:confluence",
        "read:content-details:confluence",
        "read:content.metadata:confluence",
        "read:content.restriction:confluence",
        "read:space-details:confluence",
        "read:page:confluence",
        "read:blogpost:confluence",
        "read:space:confluence",
        "read:space.permission:confluence",
        "read:attachment:confluence",
        "read:comment:confluence",
        "read:label:confluence",
        "read:folder:confluence",
        "read:whiteboard:confluence",
        "read:database:confluence",
        "read:embed:confluence",
        "read:hierarchical-content:confluence",
        "read:user:confluence",
        "read:group:confluence",
        "offline_access",
    }
)


@dataclass
class OAuthClient:
    client_id: str
    secret: str
    account_id: str  # the service account (client credentials) or the app's consenting user (3LO)
    scopes: frozenset[str]


@dataclass
class AccessToken:
    client_id: str
    account_id: str
    scopes: frozenset[str]
    expires: datetime


def _same(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected, given)


class Credentials:
    """Token stores. Not thread-safe on its own: ``ConfluenceState.lock`` guards every call."""

    def __init__(self) -> None:
        self.classic: dict[str, str] = {}  # email -> API token (site URL only)
        self.scoped: dict[str, tuple[str, frozenset[str]]] = {}  # email -> (token, scopes) (gateway only)
        self.pats: dict[str, str] = {}  # DC personal access token -> username
        self.passwords: dict[str, str] = {}  # DC username -> password
        self.clients: dict[str, OAuthClient] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, OAuthClient] = {}  # live refresh token -> the grant it renews
        self.access_ttl_s = 3600  # Atlassian: access tokens are valid for 60 minutes

    # -- API tokens ------------------------------------------------------------------------------------------
    def classic_ok(self, email: str, token: str) -> bool:
        return _same(self.classic.get(email), token)

    def scoped_ok(self, email: str, token: str) -> frozenset[str] | None:
        entry = self.scoped.get(email)
        return entry[1] if entry is not None and _same(entry[0], token) else None

    def is_scoped_token(self, token: str) -> bool:
        return any(_same(t, token) for t, _ in self.scoped.values())

    def pat_user(self, token: str) -> str | None:
        return next((u for t, u in self.pats.items() if _same(t, token)), None)

    def password_ok(self, username: str, password: str) -> bool:
        return _same(self.passwords.get(username), password)

    # -- OAuth 2.0 -------------------------------------------------------------------------------------------
    def client(self, client_id: str, secret: str) -> OAuthClient | None:
        found = self.clients.get(client_id)
        return found if found is not None and _same(found.secret, secret) else None

    def issue(self, client: OAuthClient, now: datetime, refresh: bool) -> tuple[str, str | None]:
        token = "at-" + secrets.token_urlsafe(24)
        self.access[token] = AccessToken(
            client.client_id, client.account_id, client.scopes, now + timedelta(seconds=self.access_ttl_s)
        )
        if not refresh:
            return token, None
        renewal = "rt-" + secrets.token_urlsafe(24)
        self.refresh[renewal] = client
        return token, renewal

    def redeem(self, client: OAuthClient, refresh_token: str) -> OAuthClient | None:
        """Rotating refresh tokens: the one presented is spent whether or not the exchange succeeds."""
        grant = self.refresh.pop(refresh_token, None)
        if grant is None or grant.client_id != client.client_id:
            return None
        return grant

    def bearer(self, token: str, now: datetime) -> AccessToken | str | None:
        """The live access token, ``"expired"`` for a known but expired one, or None."""
        found = self.access.get(token)
        if found is None:
            return None
        return found if found.expires > now else "expired"
