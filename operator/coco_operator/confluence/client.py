"""HTTP client for Confluence REST v1 (Cloud and Data Center): auth, paging, retries, rate limits."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from coco_operator.errors import (
    AuthenticationError,
    ConfigurationError,
    ConfluenceUnavailableError,
    SpaceNotFoundError,
    SyncError,
)
from coco_operator.reasons import Reason

log = logging.getLogger(__name__)

RETRY_AFTER_MIN_S = 1.0
RETRY_AFTER_MAX_S = 120.0
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Site:
    """Where a Confluence site lives: `base` is what `_links.base` reports and what web links start with."""

    base: str
    cloud: bool

    @property
    def api(self) -> str:
        return f"{self.base}/rest/api"


def normalize_endpoint(endpoint: str) -> Site:
    """Accept an endpoint as users write it: trailing slashes, a pasted `/rest/api`, Cloud without `/wiki`."""
    parts = urlsplit(endpoint.strip())
    path = parts.path.rstrip("/")
    for suffix in ("/rest/api", "/api/v2"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    host = (parts.hostname or "").lower()
    cloud = host.endswith(".atlassian.net") or host.endswith(".jira.com")
    if cloud and not path.endswith("/wiki"):
        path = f"{path}/wiki"
    # Our emulator and reverse proxies may serve Cloud-style /wiki on other hosts.
    cloud = cloud or path.endswith("/wiki")
    return Site(base=urlunsplit((parts.scheme, parts.netloc, path, "", "")), cloud=cloud)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is seconds or an HTTP date; clamp to a sane range so a bad header can't stall a run."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (now if now is not None else time.time())
    return min(max(seconds, RETRY_AFTER_MIN_S), RETRY_AFTER_MAX_S)


def cql_quote(value: str) -> str:
    """Quote a CQL value so that user input can never change the query."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


RequestHook = Callable[[str, int], None]


class ConfluenceClient:
    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        username: str | None = None,
        timeout_s: float = 30.0,
        concurrency: int = 4,
        max_retry_s: float = 300.0,
        on_response: RequestHook | None = None,
        on_wait: Callable[[float], None] | None = None,
        ca_pem: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.site = normalize_endpoint(endpoint)
        self.username = username
        auth: httpx.Auth | None = httpx.BasicAuth(username, token) if username else None
        headers = {"Accept": "application/json"}
        if not username:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            transport=transport,
            # Proxies and SSL_CERT_FILE come from the environment; a CA bundle from a Secret adds to the
            # system trust store. Verification is never turned off.
            trust_env=True,
            verify=_ssl_context(ca_pem) if ca_pem else _default_ssl_context(),
        )
        self._limit = asyncio.Semaphore(concurrency)
        self._max_retry_s = max_retry_s
        self._on_response = on_response
        self._on_wait = on_wait
        self.requests = 0

    async def __aenter__(self) -> ConfluenceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def url(self, path: str) -> str:
        """An API path (`/space/KEY`) under `{base}/rest/api`; absolute URLs pass through."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.site.api}{path}"

    def site_url(self, path: str) -> str:
        """A path relative to the site base, as in `_links.webui` and `_links.download`."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.site.base}{path}"

    async def _send(
        self, url: str, params: dict[str, Any] | None, fail_fast: frozenset[int] = frozenset()
    ) -> httpx.Response:
        """One request with retries on 429/5xx/timeouts, within a total time budget.

        Statuses in `fail_fast` come back at once so the caller can adapt (e.g. a smaller page after a 504).
        """
        deadline = time.monotonic() + self._max_retry_s
        attempt = 0
        while True:
            attempt += 1
            wait: float | None
            try:
                async with self._limit:
                    self.requests += 1
                    response = await self._http.get(url, params=params)
                if self._on_response:
                    self._on_response("GET", response.status_code)
                if response.status_code in fail_fast:
                    return response
                if not _is_rate_limited(response) and response.status_code not in RETRYABLE_STATUS:
                    return response
                wait = parse_retry_after(response.headers.get("Retry-After"))
                if wait is None and _is_rate_limited(response):
                    # Data Center's token bucket says how long until it refills.
                    wait = parse_retry_after(response.headers.get("X-RateLimit-Interval-Seconds"))
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                if self._on_response:
                    self._on_response("GET", 0)
                wait = None
                problem = f"{type(exc).__name__}: {exc}"
            if wait is None:
                wait = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S) * (0.5 + random.random() / 2)
            if time.monotonic() + wait > deadline:
                raise ConfluenceUnavailableError(
                    f"Confluence at {self.site.base} kept failing ({problem}) for {self._max_retry_s:.0f}s "
                    f"after {attempt} attempts; the run will be retried. Check the site's status and rate limits."
                )
            log.info("Confluence %s answered %s; retrying in %.1fs", url, problem, wait)
            if self._on_wait:
                self._on_wait(wait)
            await asyncio.sleep(wait)

    async def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, fail_fast: frozenset[int] = frozenset()
    ) -> dict[str, Any]:
        url = self.url(path)
        malformed_retries = 1
        while True:
            response = await self._send(url, params, fail_fast)
            _raise_for_status(response, self.site)
            try:
                data = orjson.loads(response.content)  # a run decodes tens of MB: orjson is ~3x faster
            except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                if malformed_retries > 0:
                    malformed_retries -= 1
                    continue
                raise ConfluenceUnavailableError(
                    f"Confluence at {self.site.base} returned malformed JSON for {response.url}: {exc}"
                ) from exc
            if not isinstance(data, dict):
                raise ConfluenceUnavailableError(f"Confluence returned unexpected JSON for {response.url}")
            return data

    async def get_bytes(self, url: str, max_bytes: int | None = None) -> bytes:
        response = await self._send(url, None)
        _raise_for_status(response, self.site)
        if max_bytes is not None and len(response.content) > max_bytes:
            raise SyncError(f"download of {url} exceeds {max_bytes} bytes", reason=Reason.ATTACHMENT_TOO_LARGE)
        return response.content

    async def paginate(
        self, path: str, params: dict[str, Any], *, fail_fast: frozenset[int] = frozenset()
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every result, following `_links.next` (relative to `_links.base`) until it is absent.

        Never trusts the requested page size (servers cap it silently) and stops on an empty page even when it
        still carries a `next` link, which Data Center sometimes does.
        """
        url: str = self.url(path)
        query: dict[str, Any] | None = dict(params)
        seen_urls: set[str] = set()
        while True:
            page = await self.get_json(url, query, fail_fast=fail_fast)
            results = page.get("results") or []
            for item in results:
                yield item
            links = page.get("_links") or {}
            nxt = links.get("next")
            if not nxt or not results:
                return
            base = links.get("base") or self.site.base
            url = nxt if nxt.startswith(("http://", "https://")) else f"{base.rstrip('/')}{nxt}"
            if url in seen_urls:  # a server repeating a next link would otherwise loop forever
                return
            seen_urls.add(url)
            query = None

    async def get_space(self, key: str) -> dict[str, Any]:
        return await self.get_json(f"/space/{key}")


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """The default trust store (and SSL_CERT_FILE/SSL_CERT_DIR), loaded once: about 25 ms for each run otherwise."""
    return httpx.create_ssl_context(trust_env=True)


@functools.lru_cache(maxsize=32)
def _ssl_context(ca_pem: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    try:
        ctx.load_verify_locations(cadata=ca_pem)
    except ssl.SSLError as exc:
        raise ConfigurationError(f"the CA bundle in caBundleSecretRef is not valid PEM: {exc}") from exc
    return ctx


def _is_rate_limited(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    # Some Data Center setups answer 403 with a plain "Rate limit exceeded" body instead of 429.
    return response.status_code == 403 and "rate limit" in response.text[:200].lower()


def _raise_for_status(response: httpx.Response, site: Site) -> None:
    code = response.status_code
    if code < 400:
        return
    detail = _error_message(response)
    if code in (401, 403):
        how = (
            "username must be the account's email and the Secret must hold an API token"
            if site.cloud
            else "the Secret must hold a valid personal access token (or set username for Basic auth)"
        )
        raise AuthenticationError(
            f"Confluence at {site.base} refused the credentials (HTTP {code}{': ' + detail if detail else ''}); "
            f"{how}. Update the Secret named in tokenSecretRef."
        )
    if code == 404:
        raise SpaceNotFoundError(f"Confluence at {site.base} answered 404 for {response.url.path}: {detail}")
    error = ConfluenceUnavailableError(
        f"Confluence at {site.base} answered HTTP {code} for {response.url.path}: {detail or 'no details'}"
    )
    error.status_code = code
    raise error


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        if "message" in body:
            return str(body["message"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return str(errors[0].get("title") or errors[0])
    return ""
