"""Credentials on Confluence requests, as `httpx.Auth` flows: a fixed header (API tokens, personal access tokens,
passwords) or OAuth 2.0 client credentials, whose access tokens the operator gets and renews itself.

OAuth rule: an access token is used until half of its lifetime has passed (Atlassian issues them for 60 minutes;
Onyx renews at half-life too), then a new one is fetched before the next request. A 401 with a token renews it
once and repeats the request, so a token that expired early (clock skew, revocation) costs one request, not the run.
Tokens are kept per process for the same client credentials, so runs every few minutes do not each ask for one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass, field

import httpx

from coco_operator.errors import SecretError
from coco_operator.reasons import Reason
from coco_operator.secret_values import clean_secret_value

TOKEN_CACHE_SIZE = 256


class ConfluenceAuth(httpx.Auth):
    """Credentials of one Datasource: the flow, what to advise when they are refused, and the values to redact."""

    hint: str = ""
    secrets: tuple[str, ...] = ()

    async def renew(self, refused: str | None) -> bool:
        """Renew credentials the server refused (`refused`: the Authorization header sent). False: they cannot be
        renewed, the refusal stands."""
        return False


class HeaderAuth(ConfluenceAuth):
    """A fixed Authorization header: HTTP Basic `user:secret` or a Bearer token."""

    def __init__(self, header: str, *, hint: str, secrets: tuple[str, ...]) -> None:
        self._header = header
        self.hint = hint
        self.secrets = secrets

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def _ascii(value: str, what: str) -> str:
    if not value.isascii():  # HTTP headers are ASCII; httpx would fail building the request
        raise SecretError(
            f"the {what} contains non-ASCII characters; API tokens, personal access tokens and OAuth client "
            "credentials are ASCII: copy the value again",
            reason=Reason.SECRET_VALUE_INVALID,
            retryable=False,
        )
    return value


def basic_auth(username: str, secret: str, *, hint: str, what: str) -> HeaderAuth:
    """`what` names where the secret comes from, e.g. "named by connector.config.tokenSecretRef"."""
    secret = _ascii(clean_secret_value(secret, secret=what, key=None), f"value of the Secret {what}")
    header = "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")
    return HeaderAuth(header, hint=hint, secrets=(secret,))


def bearer_auth(token: str, *, hint: str, what: str) -> HeaderAuth:
    token = _ascii(clean_secret_value(token, secret=what, key=None), f"value of the Secret {what}")
    return HeaderAuth(f"Bearer {token}", hint=hint, secrets=(token,))


@dataclass(frozen=True)
class OAuthClient:
    """A Cloud service account's OAuth 2.0 client credentials, as read from connector.config.oauthSecretRef."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: float  # seconds, as the token endpoint said
    issued_at: float  # monotonic

    def fresh(self, now: float) -> bool:
        """Usable for the next request: less than half of its lifetime has passed."""
        return now < self.issued_at + self.expires_in / 2


@dataclass(frozen=True)
class ClientCredentials:
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """Cache key: the secret only as a digest."""
        return (self.token_url, self.client_id, hashlib.sha256(self.client_secret.encode()).hexdigest())


# client credentials -> the last token issued for them, in this process
_ISSUED: dict[tuple[str, str, str], IssuedToken] = {}

TokenFetcher = Callable[[ClientCredentials], Awaitable[tuple[str, float]]]  # -> (access token, lifetime in s)


class OAuthClientCredentials(ConfluenceAuth):
    """OAuth 2.0 client credentials (a Cloud service account): Bearer access tokens, fetched and renewed."""

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        hint: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        ref = "named by connector.config.oauthSecretRef"
        self.credentials = ClientCredentials(
            credentials.token_url,
            _ascii(clean_secret_value(credentials.client_id, secret=ref, key="client_id"), f"client id {ref}"),
            _ascii(
                clean_secret_value(credentials.client_secret, secret=ref, key="client_secret"), f"client secret {ref}"
            ),
        )
        self.hint = hint
        self.secrets = (self.credentials.client_secret,)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._fetch: TokenFetcher | None = None
        self.fetched = 0  # tokens this flow asked the token endpoint for

    def bind(self, fetch: TokenFetcher) -> None:
        """How to ask the token endpoint (the client's, so the request passes the egress policy and its limits)."""
        self._fetch = fetch

    async def access_token(self, stale: str | None = None) -> str:
        """A fresh access token; a new one when `stale` (a token just refused) is the one at hand."""
        async with self._lock:
            key = self.credentials.key
            issued = _ISSUED.get(key)
            if issued is None or issued.access_token == stale or not issued.fresh(self._clock()):
                if self._fetch is None:
                    raise RuntimeError("OAuthClientCredentials is not bound to a client")
                token, lifetime = await self._fetch(self.credentials)
                issued = IssuedToken(token, lifetime, self._clock())
                self.fetched += 1
                if len(_ISSUED) >= TOKEN_CACHE_SIZE:
                    _ISSUED.pop(next(iter(_ISSUED)))
                _ISSUED[key] = issued
            return issued.access_token

    async def renew(self, refused: str | None) -> bool:
        if not refused or not refused.startswith("Bearer "):
            return False
        await self.access_token(stale=refused.removeprefix("Bearer "))
        return True

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # A 401 is renewed by the client (`renew`), which reads the refusal within its bounds; httpx would read
        # the whole body of an answer a flow retries.
        request.headers["Authorization"] = f"Bearer {await self.access_token()}"
        yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth client credentials need the async client")
        yield request  # pragma: no cover


def forget_tokens() -> None:
    """Drop every cached access token (tests)."""
    _ISSUED.clear()
