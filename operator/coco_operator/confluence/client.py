"""HTTP client for Confluence REST v1 (Cloud and Data Center): auth, paging, retries, rate limits."""

from __future__ import annotations

import asyncio
import base64
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

from coco_operator.confluence.answers import Answer, is_rate_limited, raise_for_status
from coco_operator.egress import EgressPolicy, LinkKind
from coco_operator.egress_http import ACCEPT_ENCODING, GuardedTransport, parse_json, read_bounded
from coco_operator.errors import (
    ConfigurationError,
    ConfluenceUnavailableError,
    ResponseTooLargeError,
    SecretError,
    SyncError,
)
from coco_operator.reasons import Reason
from coco_operator.secret_values import clean_secret_value, transport_problem

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
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
ERROR_BODY_BYTES = 64 * 1024  # an error answer only feeds a message
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_DEADLINE_S = 120.0


def display_url(url: str | httpx.URL) -> str:
    """A URL for messages and logs: without query and fragment, which may carry tokens (media links do)."""
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


class ConfluenceClient:
    """Requests to one Confluence site under the egress policy (docs/security.md).

    Redirects are followed here, one checked hop at a time, and credentials go only to the endpoint's own origin.
    Every attempt has a total deadline and every answer a cap on decoded bytes. Without `egress` (a caller not
    given the operator's settings) origins are enforced but addresses are not checked.
    """

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
        egress: EgressPolicy | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.site = normalize_endpoint(endpoint)
        self.username = username
        self.egress = egress or EgressPolicy("Confluence", addresses=None)
        self.home = self.egress.check_start(self.site.base)
        token = clean_secret_value(token, secret="named by connector.config.tokenSecretRef", key=None)
        self._secrets = (token,)
        self._authorization = _authorization(token, username)
        verify = _ssl_context(ca_pem) if ca_pem else _default_ssl_context()
        self._http = httpx.AsyncClient(
            headers={"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,  # followed in `_follow`, each hop checked
            transport=transport or GuardedTransport(self.egress, ssl_context=verify, max_connections=4 * concurrency),
            # Proxies and SSL_CERT_FILE come from the environment; a CA bundle from a Secret adds to the
            # system trust store. Verification is never turned off.
            trust_env=True,
            verify=verify,
        )
        self._limit = asyncio.Semaphore(concurrency)
        self._max_retry_s = max_retry_s
        self._deadline_s = deadline_s
        self._max_response_bytes = max_response_bytes
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
        """An API path (`/space/KEY`) under `{base}/rest/api`; absolute URLs pass through (and are checked)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.site.api}{path}"

    def site_url(self, path: str) -> str:
        """A path relative to the site base, as in `_links.webui` and `_links.download`."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.site.base}{path if path.startswith('/') else '/' + path}"

    async def _follow(
        self, url: str, params: dict[str, Any] | None, kind: LinkKind, limit: int, body: bytes | None = None
    ) -> Answer:
        """One attempt: the request and its redirects, each hop checked, the final body read within `limit`.

        With a `body` the request is a JSON POST (Data Center's JSON-RPC reads); GET otherwise."""
        current = httpx.URL(url)
        if params:
            current = current.copy_merge_params(params)
        seen: set[httpx.URL] = set()
        for _ in range(MAX_REDIRECTS + 1):
            origin = self.egress.check_link(current, self.home, kind)
            headers = {"Authorization": self._authorization} if self.egress.sends_credentials(origin, self.home) else {}
            if body is not None:
                headers["Content-Type"] = "application/json"
            request = self._http.build_request(
                "GET" if body is None else "POST", current, headers=headers, content=body
            )
            response = await self._http.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECTS and location:
                    # Read the (small) body so the connection can be reused: a TLS handshake per download otherwise.
                    await read_bounded(response, ERROR_BODY_BYTES, what="a redirect", truncate=True)
                    seen.add(current)
                    current = current.join(location)
                    if current in seen:
                        raise ConfluenceUnavailableError(
                            f"Confluence at {self.site.base} redirects {display_url(url)} in a loop; check the "
                            "site's base URL and proxy settings",
                            reason=Reason.REDIRECT_LOOP,
                        )
                    continue
                failed = response.status_code >= 400
                what = f"the answer for {display_url(current)}"
                body = await read_bounded(response, ERROR_BODY_BYTES if failed else limit, what=what, truncate=failed)
                return Answer(response.status_code, response.headers, body, current)
            finally:
                await response.aclose()
        raise ConfluenceUnavailableError(
            f"Confluence at {self.site.base} redirected {display_url(url)} more than {MAX_REDIRECTS} times",
            reason=Reason.REDIRECT_LOOP,
        )

    async def _send(
        self,
        url: str,
        params: dict[str, Any] | None,
        fail_fast: frozenset[int] = frozenset(),
        *,
        kind: LinkKind = "api",
        limit: int | None = None,
        body: bytes | None = None,
    ) -> Answer:
        """One request with retries on 429/5xx/timeouts, within a total time budget.

        Each attempt must end within the deadline (a server trickling bytes cannot hold a run). Statuses in
        `fail_fast` come back at once so the caller can adapt (e.g. a smaller page after a 504).
        """
        deadline = time.monotonic() + self._max_retry_s
        attempt = 0
        while True:
            attempt += 1
            wait: float | None
            try:
                async with self._limit:
                    self.requests += 1
                    async with asyncio.timeout(self._deadline_s):
                        answer = await self._follow(url, params, kind, limit or self._max_response_bytes, body)
                if self._on_response:
                    self._on_response("GET", answer.status_code)
                if answer.status_code in fail_fast:
                    return answer
                if not is_rate_limited(answer) and answer.status_code not in RETRYABLE_STATUS:
                    return answer
                wait = parse_retry_after(answer.headers.get("Retry-After"))
                if wait is None and is_rate_limited(answer):
                    # Data Center's token bucket says how long until it refills.
                    wait = parse_retry_after(answer.headers.get("X-RateLimit-Interval-Seconds"))
                problem = f"HTTP {answer.status_code}"
            except (httpx.TransportError, TimeoutError) as exc:
                if self._on_response:
                    self._on_response("GET", 0)
                wait = None
                # Never the exception's text: it can quote a header value.
                problem = (
                    f"no complete answer within {self._deadline_s:g}s"
                    if isinstance(exc, TimeoutError)
                    else transport_problem(exc)
                )
            if wait is None:
                wait = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S) * (0.5 + random.random() / 2)
            if time.monotonic() + wait > deadline:
                raise ConfluenceUnavailableError(
                    f"Confluence at {self.site.base} kept failing ({problem}) for {self._max_retry_s:.0f}s "
                    f"after {attempt} attempts; the run will be retried. Check the site's status and rate limits."
                )
            log.info("Confluence %s answered %s; retrying in %.1fs", display_url(url), problem, wait)
            if self._on_wait:
                self._on_wait(wait)
            await asyncio.sleep(wait)

    async def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, fail_fast: frozenset[int] = frozenset()
    ) -> dict[str, Any]:
        data = await self.json_value(path, params, fail_fast=fail_fast)
        if not isinstance(data, dict):
            raise ConfluenceUnavailableError(f"Confluence returned unexpected JSON for {display_url(self.url(path))}")
        return data

    async def json_value(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        body: bytes | None = None,
        fail_fast: frozenset[int] = frozenset(),
    ) -> Any:
        """Any JSON answer: an object, or an array as some Data Center endpoints answer. A `body` makes it a POST."""
        url = self.url(path)
        malformed_retries = 1
        while True:
            answer = await self._send(url, params, fail_fast, body=body)
            raise_for_status(answer, self.site, self._secrets)
            what = f"Confluence's answer for {answer.url.path}"
            try:
                return parse_json(answer.content, what=what)  # orjson: a run decodes tens of MB, ~3x faster
            except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                if malformed_retries > 0:
                    malformed_retries -= 1
                    continue
                raise ConfluenceUnavailableError(
                    f"Confluence at {self.site.base} returned malformed JSON for {answer.url.path}: {exc}"
                ) from exc

    async def get_bytes(self, url: str, max_bytes: int | None = None) -> bytes:
        """A download (attachment): same origin or an administrator-listed link host, at most `max_bytes` decoded."""
        try:
            answer = await self._send(url, None, kind="download", limit=max_bytes)
        except ResponseTooLargeError:
            raise SyncError(
                f"download of {display_url(url)} exceeds {max_bytes} bytes", reason=Reason.ATTACHMENT_TOO_LARGE
            ) from None
        raise_for_status(answer, self.site, self._secrets)
        return answer.content

    async def paginate(
        self, path: str, params: dict[str, Any], *, fail_fast: frozenset[int] = frozenset()
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every result, following `_links.next` until it is absent.

        A relative `next` is resolved against the configured endpoint, never `_links.base` (a server may name any
        host there); an absolute one must stay on the endpoint's origin. Never trusts the requested page size
        (servers cap it silently) and stops on an empty page even when it still carries a `next` link, which Data
        Center sometimes does.
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
            nxt = links.get("next") if isinstance(links, dict) else None
            if not nxt or not results:
                return
            if not isinstance(nxt, str):
                raise ConfluenceUnavailableError(
                    f"Confluence at {self.site.base} answered a next link that is not text"
                )
            url = self.site_url(nxt)
            if url in seen_urls:  # a server repeating a next link would otherwise loop forever
                return
            seen_urls.add(url)
            query = None

    async def get_space(self, key: str) -> dict[str, Any]:
        return await self.get_json(f"/space/{key}")


def _authorization(token: str, username: str | None) -> str:
    if not token.isascii():  # HTTP headers are ASCII; httpx would fail building the request
        raise SecretError(
            "the Confluence token in the Secret named by connector.config.tokenSecretRef contains non-ASCII "
            "characters; API tokens and personal access tokens are ASCII: copy the token again",
            reason=Reason.SECRET_VALUE_INVALID,
            retryable=False,
        )
    if username:
        return "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
    return f"Bearer {token}"


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
