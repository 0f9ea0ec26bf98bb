"""Rate limits: how long to wait after an answer says so, and how fast to go while the site warns.

The rules (docs/confluence-api.md, section 11):

- **Retry-After** (seconds or an HTTP date; on 429 and some 503s) is the wait, clamped to 1..120 s: absurd values
  such as 9223372036854775807 become 120 s, and a wait beyond the request's retry budget fails the request at once
  (retryable: the next run comes after the dispatcher's backoff).
- **X-RateLimit-Reset** without Retry-After (Atlassian: the request time plus the Retry-After period, written
  `yyyy-MM-ddTHH:mmZ`, i.e. truncated to the minute and so up to 59 s early): wait until then, but at least the
  exponential backoff of the attempt (1, 2, 4 ... 30 s), clamped like Retry-After.
- **X-RateLimit-Interval-Seconds** (Data Center's token bucket) without either: wait one interval.
- Nothing said: exponential backoff with jitter.
- A rate-limited answer pauses **every** request of the run for its wait (not only the one retried), and halves
  the number of requests in flight.
- **X-RateLimit-NearLimit: true** on any answer: halve the requests in flight (at least 1) and start nothing new
  for 1 s. After 25 answers in a row without a warning, one more request may be in flight again, up to the
  configured concurrency (additive increase, multiplicative decrease).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

RETRY_AFTER_MIN_S = 1.0
RETRY_AFTER_MAX_S = 120.0
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
NEAR_LIMIT_PAUSE_S = 1.0
RECOVER_AFTER = 25  # calm answers before one more request may be in flight


def _clamp(seconds: float) -> float:
    return min(max(seconds, RETRY_AFTER_MIN_S), RETRY_AFTER_MAX_S)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is seconds or an HTTP date; clamped so that a bad header can neither spin nor stall a run."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (now if now is not None else time.time())
    if math.isnan(seconds):
        return None
    return _clamp(seconds)


def parse_reset(value: str | None, now: float) -> float | None:
    """Seconds from `now` (epoch) until an `X-RateLimit-Reset` time (`2026-03-02T10:15Z` or full ISO 8601);
    negative when it lies in the past. None when absent or unreadable."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


def backoff(attempt: int) -> float:
    """The exponential backoff of the `attempt`-th try (1-based), without jitter."""
    return min(BACKOFF_BASE_S * 2.0 ** max(0, attempt - 1), BACKOFF_MAX_S)


def retry_wait(headers: Mapping[str, str], *, rate_limited: bool, attempt: int, now: float) -> float | None:
    """How long to wait before retrying, from the answer's headers; None: the caller's jittered backoff."""
    after = parse_retry_after(headers.get("Retry-After"), now)
    if after is not None or not rate_limited:
        return after
    reset = parse_reset(headers.get("X-RateLimit-Reset"), now)
    if reset is not None:
        return _clamp(max(reset, backoff(attempt)))
    interval = headers.get("X-RateLimit-Interval-Seconds")
    if interval:
        try:
            seconds = float(interval)
        except ValueError:
            return None
        return None if math.isnan(seconds) else _clamp(seconds)
    return None


def near_limit(headers: Mapping[str, str]) -> bool:
    return headers.get("X-RateLimit-NearLimit", "").strip().lower() == "true"


@dataclass
class Pace:
    """How many requests may be in flight and when new ones may start (the rules above). Pure: time is given."""

    ceiling: int
    limit: int = 0
    resume_at: float = 0.0  # monotonic time before which no request starts
    calm: int = 0  # answers in a row without a warning

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.limit = self.limit or self.ceiling

    def slow_down(self, now: float, pause: float) -> None:
        self.limit = max(1, self.limit // 2)
        self.resume_at = max(self.resume_at, now + pause)
        self.calm = 0

    def calm_answer(self) -> None:
        self.calm += 1
        if self.calm >= RECOVER_AFTER and self.limit < self.ceiling:
            self.limit += 1
            self.calm = 0

    def delay(self, now: float) -> float:
        return max(0.0, self.resume_at - now)


class Throttle:
    """The client's gate: at most `pace.limit` requests in flight, none before `pace.resume_at`."""

    def __init__(self, concurrency: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.pace = Pace(concurrency)
        self._clock = clock
        self._active = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            while True:
                delay = self.pace.delay(self._clock())
                if delay <= 0 and self._active < self.pace.limit:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=delay if delay > 0 else None)
            self._active += 1
        try:
            yield
        finally:
            async with self._changed:
                self._active -= 1
                self._changed.notify_all()

    def observe(self, headers: Mapping[str, str], *, limited: bool = False, wait: float | None = None) -> bool:
        """Adapt to one answer (`limited`: it was a rate limit, `wait`: how long it asked for). True when the site
        asked to slow down."""
        if limited:
            self.pace.slow_down(self._clock(), wait if wait is not None else backoff(1))
            return True
        if near_limit(headers):
            self.pace.slow_down(self._clock(), NEAR_LIMIT_PAUSE_S)
            return True
        self.pace.calm_answer()
        return False
