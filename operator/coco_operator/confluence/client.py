"""HTTP client for Confluence REST (v1 on both editions, v2 on Cloud): auth, the API gateway, paging, retries,
rate limits."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from coco_operator.confluence.answers import Answer, is_rate_limited, raise_for_status
from coco_operator.confluence.auth import (
    ClientCredentials,
    ConfluenceAuth,
    OAuthClientCredentials,
    basic_auth,
    bearer_auth,
)
from coco_operator.confluence.gateway import Gateway, issue_token, resolve_cloud_id
from coco_operator.confluence.listing import paginate
from coco_operator.confluence.paging import Trail
from coco_operator.confluence.ratelimit import RETRY_AFTER_MAX_S, Throttle, backoff, parse_retry_after, retry_wait
from coco_operator.confluence.site import Site, gateway_base, normalize_endpoint
from coco_operator.egress import EgressPolicy, Origin
from coco_operator.egress_http import ACCEPT_ENCODING, GuardedTransport, parse_json, read_bounded
from coco_operator.errors import (
    ConfigurationError,
    ConfluenceUnavailableError,
    ResponseTooLargeError,
    SyncError,
)
from coco_operator.reasons import Reason
from coco_operator.secret_values import transport_problem

__all__ = ["ConfluenceClient", "Gateway", "RequestHook", "cql_quote", "normalize_endpoint", "parse_retry_after"]

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RequestHook = Callable[[str, int], None]
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
ERROR_BODY_BYTES = 64 * 1024  # an error answer only feeds a message
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_DEADLINE_S = 120.0
DEFAULT_HINT_CLOUD = "username must be the account's email and the Secret must hold an API token"
DEFAULT_HINT_DC = "the Secret must hold a valid personal access token (or set username for Basic auth)"
# "api": the API and its links (credentials to the API origin only); "download": may also reach a link host;
# "open": an unauthenticated request to a URL checked by the caller (tenant_info, the OAuth token endpoint).
Kind = Literal["api", "download", "open"]


def cql_quote(value: str) -> str:
    """Quote a CQL value so that user input can never change the query."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def display_url(url: str | httpx.URL) -> str:
    """A URL for messages and logs: without query and fragment, which may carry tokens (media links do)."""
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


@dataclass(frozen=True)
class Call:
    url: str
    params: dict[str, Any] | None = None
    kind: Kind = "api"
    limit: int | None = None
    method: str = "GET"
    body: dict[str, Any] | None = None


class ConfluenceClient:
    """Requests to one Confluence site under the egress policy (docs/security.md).

    Redirects are followed here, one checked hop at a time, and credentials go only to the API's own origin: the
    site, or Atlassian's API gateway when `gateway` is given (its cloudId read from the site's tenant_info when
    the client starts, unless known). Every attempt has a total deadline and every answer a cap on decoded bytes.
    Without `egress` (a caller not given the operator's settings) origins are enforced but addresses are not
    checked. `auth` defaults to HTTP Basic with `username`, else the token as Bearer.
    """

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        *,
        username: str | None = None,
        auth: ConfluenceAuth | None = None,
        site: Site | None = None,
        gateway: Gateway | None = None,
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
        self.site = site or normalize_endpoint(endpoint)
        self.username = username
        self.egress = egress or EgressPolicy("Confluence", addresses=None)
        # The site is the tenant's choice: the administrator's host list applies. The gateway is the operator's.
        self.site_origin = self.egress.check_start(self.site.base)
        self.gateway = gateway
        if gateway is not None and gateway.cloud_id:
            self.site = self.site.via(gateway_base(gateway.url, gateway.cloud_id))
        self.home = self._api_origin()
        self.auth = auth or _default_auth(token, username, self.site.cloud)
        if isinstance(self.auth, OAuthClientCredentials):
            self.egress.check_url(self.auth.credentials.token_url)  # the operator's setting, still address-checked
            self.auth.bind(self._issue_token)
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
        self.throttle = Throttle(concurrency)
        self._max_retry_s = max_retry_s
        self._deadline_s = deadline_s
        self._max_response_bytes = max_response_bytes
        self._on_response = on_response
        self._on_wait = on_wait
        self._started = asyncio.Lock()
        self.requests = 0

    def _api_origin(self) -> Origin:
        if self.site.through_gateway:
            return self.egress.check_url(self.site.api_base)
        return self.site_origin

    async def __aenter__(self) -> ConfluenceClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def start(self) -> None:
        """Route requests through the gateway once its cloudId is known (one unauthenticated request to the site
        the first time a process meets it)."""
        if self.gateway is None or self.site.through_gateway:
            return
        async with self._started:
            if self.site.through_gateway:
                return
            cloud_id = await resolve_cloud_id(self.site, self._open_json)
            self.site = self.site.via(gateway_base(self.gateway.url, cloud_id))
            self.home = self._api_origin()

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.auth.secrets

    def url(self, path: str) -> str:
        """An API path (`/space/KEY`) under `{api base}/rest/api`; absolute URLs pass through (and are checked)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.site.api}{path}"

    def v2_url(self, path: str) -> str:
        """A REST v2 path (`/spaces`) under `{api base}/api/v2` (Cloud only)."""
        return f"{self.site.v2}{path}"

    def site_url(self, path: str) -> str:
        """A path relative to the site, as in `_links.webui` and `_links.download`."""
        return self.site.web(path)

    async def _follow(self, call: Call) -> Answer:
        """One attempt: the request and its redirects, each hop checked, the final body read within its limit."""
        current = httpx.URL(call.url)
        if call.params:
            current = current.copy_merge_params(call.params)
        seen: set[httpx.URL] = set()
        limit = call.limit or self._max_response_bytes
        for _ in range(MAX_REDIRECTS + 1):
            auth: ConfluenceAuth | None = None
            if call.kind == "open":
                self.egress.check_url(current)
            else:
                origin = self.egress.check_link(current, self.home, call.kind)
                auth = self.auth if self.egress.sends_credentials(origin, self.home) else None
            request = self._http.build_request(call.method, current, json=call.body)
            response = await self._http.send(request, stream=True, auth=auth)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECTS and location and call.kind != "open":
                    # Read the (small) body so the connection can be reused: a TLS handshake per download otherwise.
                    await read_bounded(response, ERROR_BODY_BYTES, what="a redirect", truncate=True)
                    seen.add(current)
                    current = current.join(location)
                    if current in seen:
                        raise ConfluenceUnavailableError(
                            f"Confluence at {self.site.base} redirects {display_url(call.url)} in a loop; check the "
                            "site's base URL and proxy settings",
                            reason=Reason.REDIRECT_LOOP,
                        )
                    continue
                failed = response.status_code >= 400
                what = f"the answer for {display_url(current)}"
                body = await read_bounded(response, ERROR_BODY_BYTES if failed else limit, what=what, truncate=failed)
                sent = response.request.headers.get("Authorization") if auth is not None else None
                return Answer(response.status_code, response.headers, body, current, sent)
            finally:
                await response.aclose()
        raise ConfluenceUnavailableError(
            f"Confluence at {self.site.base} redirected {display_url(call.url)} more than {MAX_REDIRECTS} times",
            reason=Reason.REDIRECT_LOOP,
        )

    async def _attempt(self, call: Call, attempt: int) -> tuple[Answer, float | None]:
        """One attempt within its deadline, paced by the throttle (unauthenticated side requests are not: they may
        run while a request holds its slot). Returns the answer and, when it asks for one, the wait."""
        self.requests += 1
        if call.kind == "open":
            async with asyncio.timeout(self._deadline_s):
                answer = await self._follow(call)
            return answer, _wait_for(answer, attempt)
        async with self.throttle.slot():
            async with asyncio.timeout(self._deadline_s):
                answer = await self._follow(call)
            wait = _wait_for(answer, attempt)
            if self.throttle.observe(answer.headers, limited=is_rate_limited(answer), wait=wait):
                log.info(
                    "Confluence at %s asks to slow down: %d requests in flight at most now",
                    self.site.base,
                    self.throttle.pace.limit,
                )
        return answer, wait

    async def _send(self, call: Call, fail_fast: frozenset[int] = frozenset()) -> Answer:
        """One request with retries on 429/5xx/timeouts, within a total time budget.

        Each attempt must end within the deadline (a server trickling bytes cannot hold a run). Statuses in
        `fail_fast` come back at once so the caller can adapt (e.g. a smaller page after a 504). A 401 to renewable
        credentials (OAuth) renews them once and repeats the request.
        """
        if call.kind != "open":  # side requests are what starting may need
            await self.start()
        deadline = time.monotonic() + self._max_retry_s
        attempt, renewed = 0, False
        while True:
            attempt += 1
            wait: float | None
            try:
                answer, wait = await self._attempt(call, attempt)
                if self._on_response:
                    self._on_response(call.method, answer.status_code)
                if answer.status_code == 401 and not renewed and await self.auth.renew(answer.authorization):
                    renewed = True
                    continue
                retryable = is_rate_limited(answer) or answer.status_code in RETRYABLE_STATUS
                if answer.status_code in fail_fast or not retryable:
                    return answer
                problem = f"HTTP {answer.status_code}"
            except (httpx.TransportError, TimeoutError) as exc:
                if self._on_response:
                    self._on_response(call.method, 0)
                wait = None
                # Never the exception's text: it can quote a header value.
                problem = (
                    f"no complete answer within {self._deadline_s:g}s"
                    if isinstance(exc, TimeoutError)
                    else transport_problem(exc)
                )
            if wait is None:
                wait = backoff(attempt) * (0.5 + random.random() / 2)
            if time.monotonic() + wait > deadline:
                raise ConfluenceUnavailableError(
                    f"Confluence at {self.site.base} kept failing ({problem}) for {self._max_retry_s:.0f}s "
                    f"after {attempt} attempts{_asked(wait)}; the run will be retried. Check the site's status "
                    "and rate limits."
                )
            log.info("Confluence %s answered %s; retrying in %.1fs", display_url(call.url), problem, wait)
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
        body: dict[str, Any] | None = None,
        fail_fast: frozenset[int] = frozenset(),
    ) -> Any:
        """Any JSON answer: an object, or an array as some Data Center endpoints answer. A `body` makes it a JSON
        POST (Data Center's JSON-RPC reads)."""
        call = Call(self.url(path), params, method="GET" if body is None else "POST", body=body)
        return await self._json(call, fail_fast)

    async def _open_json(self, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """An unauthenticated side request (tenant_info; the OAuth token endpoint when `body` is given): the status
        and the JSON object of the answer ({} when it is not one). Retried like any request."""
        answer = await self._send(Call(url, kind="open", method="POST" if body else "GET", body=body))
        try:
            data = parse_json(answer.content, what=f"the answer of {display_url(url)}")
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            data = None
        return answer.status_code, data if isinstance(data, dict) else {}

    async def _issue_token(self, credentials: ClientCredentials) -> tuple[str, float]:
        return await issue_token(self._open_json, credentials)

    async def _json(self, call: Call, fail_fast: frozenset[int]) -> Any:
        malformed_retries = 1
        while True:
            answer = await self._send(call, fail_fast)
            raise_for_status(answer, self.site, self.auth)
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
            answer = await self._send(Call(url, kind="download", limit=max_bytes))
        except ResponseTooLargeError:
            raise SyncError(
                f"download of {display_url(url)} exceeds {max_bytes} bytes", reason=Reason.ATTACHMENT_TOO_LARGE
            ) from None
        raise_for_status(answer, self.site, self.auth)
        return answer.content

    def paginate(
        self,
        path: str,
        params: dict[str, Any],
        *,
        fail_fast: frozenset[int] = frozenset(),
        trail: Trail | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every result of a listing, page by page (`listing.paginate`); `trail` records its ids and its end."""
        return paginate(self, path, params, fail_fast=fail_fast, trail=trail)

    async def get_space(self, key: str) -> dict[str, Any]:
        """A space by key through REST v1 (`/space/{key}`): Data Center's way; on Cloud a CHANGE-864 read (410
        through the gateway), so the source uses v2 there."""
        return await self.get_json(f"/space/{key}")


def _wait_for(answer: Answer, attempt: int) -> float | None:
    if not (is_rate_limited(answer) or answer.status_code in RETRYABLE_STATUS):
        return None
    return retry_wait(answer.headers, rate_limited=is_rate_limited(answer), attempt=attempt, now=time.time())


def _asked(wait: float) -> str:
    return f" (the site asked to wait {wait:.0f}s)" if wait >= RETRY_AFTER_MAX_S else ""


def _default_auth(token: str | None, username: str | None, cloud: bool) -> ConfluenceAuth:
    what = "named by connector.config.tokenSecretRef"
    if token is None:
        raise ConfigurationError("no Confluence credentials: connector.config.tokenSecretRef names none")
    if username:
        return basic_auth(username, token, hint=DEFAULT_HINT_CLOUD if cloud else DEFAULT_HINT_DC, what=what)
    return bearer_auth(token, hint=DEFAULT_HINT_CLOUD if cloud else DEFAULT_HINT_DC, what=what)


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
