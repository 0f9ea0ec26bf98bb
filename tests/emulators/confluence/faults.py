"""Injected faults: rate limits with the headers each edition sends, server errors, malformed bodies, and the
"near the limit" warning on successful answers.

Cloud 429s carry ``Retry-After`` (seconds or an HTTP date; absurd values such as 9223372036854775807 have been
seen) and ``X-RateLimit-Reset``, an ISO 8601 timestamp ``yyyy-MM-ddTHH:mmZ`` equal to the request time plus the
Retry-After period; some 429s carry ``X-RateLimit-Reset`` without ``Retry-After`` (``rate_limit_style =
"reset_only"``). Successful answers may carry ``X-RateLimit-NearLimit: true``. Data Center adds
``X-RateLimit-Interval-Seconds`` and ``X-RateLimit-FillRate``, and some proxies answer 403 "Rate limit exceeded".
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

from aiohttp import web

from .replies import v1_error
from .state import ConfluenceState

_MAX_WAIT = timedelta(days=3650)


def reset_time(value: str, now: datetime) -> datetime:
    """When a Retry-After of ``value`` (seconds or an HTTP date) ends; absurd values are clamped."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            return email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return now + timedelta(seconds=1)
    return now + min(timedelta(seconds=max(0.0, min(seconds, _MAX_WAIT.total_seconds()))), _MAX_WAIT)


class Faults:
    def __init__(self, state: ConfluenceState, cloud: bool) -> None:
        self.state = state
        self.cloud = cloud

    def take(self) -> web.Response | None:
        state = self.state
        with state.lock:
            if state.rate_limit_next > 0:
                state.rate_limit_next -= 1
                return self.rate_limited()
            if state.fail_next:
                status = state.fail_next.pop(0)
                headers = {"Retry-After": state.retry_after} if status == 503 else None
                return v1_error(status, "Injected failure", headers)
        return None

    def rate_limited(self) -> web.Response:
        state = self.state
        if not self.cloud and state.dc_rate_limit_as_403:
            return web.Response(status=403, text="Rate limit exceeded", content_type="text/plain")
        reset = reset_time(state.retry_after, datetime.now(UTC)).astimezone(UTC)
        headers = {
            "X-RateLimit-Limit": "100" if self.cloud else "20",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
        }
        if state.rate_limit_style != "reset_only":
            headers["Retry-After"] = state.retry_after
        if self.cloud:
            headers["X-RateLimit-NearLimit"] = "true"
        else:
            headers["X-RateLimit-Interval-Seconds"] = "1"
            headers["X-RateLimit-FillRate"] = "1"
        return v1_error(429, "Rate limit exceeded", headers)

    def after(self, response: web.StreamResponse) -> None:
        """Decorate a handler's answer: the near-limit warning, or a malformed body when injected."""
        if not isinstance(response, web.Response) or response.status != 200:
            return
        state = self.state
        with state.lock:
            near = state.near_limit_next > 0
            if near:
                state.near_limit_next -= 1
            malformed = state.malformed_next > 0 and response.content_type == "application/json"
            if malformed:
                state.malformed_next -= 1
        if near:
            response.headers["X-RateLimit-NearLimit"] = "true"
        if malformed and isinstance(response.body, bytes):
            # Cutting the document in half always leaves an unbalanced, unparseable JSON text.
            response.body = response.body[: max(1, len(response.body) // 2)]
