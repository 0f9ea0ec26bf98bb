"""Pure decisions of the Confluence client: rate-limit headers -> waits and pace; how a listing moves on and ends."""

from __future__ import annotations

import asyncio
import email.utils
from datetime import UTC, datetime

import pytest

from coco_operator.confluence.paging import (
    EMPTY_PAGE,
    NO_NEW_IDS,
    Loop,
    Next,
    Stop,
    completeness_problem,
    next_step,
)
from coco_operator.confluence.ratelimit import (
    NEAR_LIMIT_PAUSE_S,
    RECOVER_AFTER,
    Pace,
    Throttle,
    parse_reset,
    parse_retry_after,
    retry_wait,
)
from coco_operator.confluence.site import Site, gateway_cloud_id, normalize_endpoint

NOW = datetime(2026, 3, 2, 10, 15, 20, tzinfo=UTC).timestamp()


def test_retry_after_is_clamped() -> None:
    assert parse_retry_after("7", NOW) == 7
    assert parse_retry_after("0", NOW) == 1
    assert parse_retry_after("9223372036854775807", NOW) == 120  # seen in the wild
    assert parse_retry_after("inf", NOW) == 120 and parse_retry_after("nan", NOW) is None
    assert parse_retry_after(email.utils.formatdate(NOW + 30, usegmt=True), NOW) == pytest.approx(30)
    assert parse_retry_after("Mon, 99 Foo", NOW) is None and parse_retry_after(None) is None


def test_reset_is_atlassians_minute_format_or_iso() -> None:
    assert parse_reset("2026-03-02T10:16Z", NOW) == pytest.approx(40)
    assert parse_reset("2026-03-02T10:15Z", NOW) == pytest.approx(-20)  # truncated to the minute: in the past
    assert parse_reset("2026-03-02T10:15:50.000+00:00", NOW) == pytest.approx(30)
    assert parse_reset("soon", NOW) is None and parse_reset(None, NOW) is None


@pytest.mark.parametrize(
    ("headers", "limited", "attempt", "wait"),
    [
        ({"Retry-After": "7", "X-RateLimit-Reset": "2026-03-02T10:20Z"}, True, 1, 7),  # Retry-After wins
        ({"X-RateLimit-Reset": "2026-03-02T10:16Z"}, True, 1, 40),  # until the reset
        ({"X-RateLimit-Reset": "2026-03-02T10:15Z"}, True, 3, 4),  # in the past: the attempt's backoff
        ({"X-RateLimit-Reset": "2030-01-01T00:00Z"}, True, 1, 120),  # clamped
        ({"X-RateLimit-Interval-Seconds": "5", "X-RateLimit-FillRate": "1"}, True, 1, 5),  # Data Center
        ({}, True, 1, None),  # nothing said: jittered backoff
        ({"X-RateLimit-Reset": "2026-03-02T10:16Z"}, False, 1, None),  # a 503 with only a reset: backoff
        ({"Retry-After": "3"}, False, 1, 3),  # a 503 with Retry-After
    ],
)
def test_retry_wait(headers: dict[str, str], limited: bool, attempt: int, wait: float | None) -> None:
    got = retry_wait(headers, rate_limited=limited, attempt=attempt, now=NOW)
    assert got == (pytest.approx(wait) if wait is not None else None)


def test_pace_halves_on_warnings_and_recovers_one_at_a_time() -> None:
    pace = Pace(8)
    pace.slow_down(now=100, pause=NEAR_LIMIT_PAUSE_S)
    assert pace.limit == 4 and pace.delay(100) == NEAR_LIMIT_PAUSE_S and pace.delay(101.5) == 0
    for _ in range(5):
        pace.slow_down(now=100, pause=1)
    assert pace.limit == 1
    for _ in range(RECOVER_AFTER - 1):
        pace.calm_answer()
    assert pace.limit == 1
    pace.calm_answer()
    assert pace.limit == 2
    for _ in range(RECOVER_AFTER * 20):
        pace.calm_answer()
    assert pace.limit == 8  # never above the configured concurrency


async def test_throttle_keeps_requests_in_flight_within_the_pace() -> None:
    throttle = Throttle(4)
    in_flight = peak = 0

    async def request() -> None:
        nonlocal in_flight, peak
        async with throttle.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*(request() for _ in range(12)))
    assert peak == 4
    assert throttle.observe({"X-RateLimit-NearLimit": "true"}) and throttle.pace.limit == 2
    loop = asyncio.get_running_loop()
    started = loop.time()
    peak = 0
    await asyncio.gather(*(request() for _ in range(6)))
    assert peak == 2 and loop.time() - started >= NEAR_LIMIT_PAUSE_S * 0.9  # paused, then two at a time
    assert not throttle.observe({})
    assert throttle.observe({}, limited=True) and throttle.pace.limit == 1  # a bare 429 slows down too


CURSOR = {"mode": "cursor", "start": 0}


def test_a_listing_ends_where_the_server_says_or_unproven() -> None:
    base = {"resolved": "https://x/wiki/rest/api/content/search?cursor=b", "followed": {"https://x/a"}}
    assert next_step(**CURSOR, received=5, new=5, link=None, **base) == Stop()  # type: ignore[arg-type]
    assert next_step(**CURSOR, received=0, new=0, link="/n", **base) == Stop(EMPTY_PAGE)  # type: ignore[arg-type]
    assert next_step(**CURSOR, received=5, new=0, link="/n", **base) == Stop(NO_NEW_IDS)  # type: ignore[arg-type]
    step = next_step(**CURSOR, received=5, new=2, link="/n", **base)  # type: ignore[arg-type]
    assert step == Next(url=base["resolved"])
    again = next_step(**CURSOR, received=5, new=5, link="/a", resolved="https://x/a", followed={"https://x/a"})  # type: ignore[arg-type]
    assert isinstance(again, Loop) and "already followed" in again.why


def test_offset_paging_computes_start_from_what_arrived() -> None:
    # Data Center capped the page at 17 and under-counts start in next (Onyx #4129): start comes from the results.
    step = next_step(
        mode="offset", received=17, new=17, link="/rest/api/x?start=13", resolved=None, start=0, followed=set()
    )
    assert step == Next(start=17)
    backwards = next_step(
        mode="offset", received=17, new=17, link="/rest/api/x?start=10", resolved=None, start=34, followed=set()
    )
    assert isinstance(backwards, Loop) and "goes backwards" in backwards.why
    # CONFSERVER-95396: past the end, full pages of records already returned, and a next link, forever.
    assert next_step(
        mode="offset", received=50, new=0, link="/rest/api/x?start=300", resolved=None, start=250, followed=set()
    ) == Stop(NO_NEW_IDS)


def test_completeness_is_proven_by_the_count() -> None:
    assert completeness_problem(25, 25, []) is None
    assert completeness_problem(26, 25, [EMPTY_PAGE]) is None  # an unproven end that the count confirms
    assert completeness_problem(25, None, []) is None  # no count: the server's own end is taken
    short = completeness_problem(15, 25, [EMPTY_PAGE])
    assert short is not None and "15 distinct items where Confluence counts 25" in short and EMPTY_PAGE in short
    unknown = completeness_problem(15, None, [NO_NEW_IDS])
    assert unknown is not None and "does not say how many" in unknown


def test_links_resolve_against_the_base_called_never_links_base() -> None:
    site = normalize_endpoint("https://acme.atlassian.net/wiki")
    gw = site.via("https://api.atlassian.com/ex/confluence/c1/wiki")
    assert gw.link("/rest/api/content/search?cursor=x") == gw.api_base + "/rest/api/content/search?cursor=x"
    assert gw.link("/wiki/api/v2/spaces?cursor=y") == gw.api_base + "/api/v2/spaces?cursor=y"  # v2: host-relative
    assert gw.web("/spaces/D/pages/1") == "https://acme.atlassian.net/wiki/spaces/D/pages/1"  # links open the site
    dc = Site("https://dc.example.com/confluence", cloud=False)
    assert (
        dc.link("/rest/api/content/search?start=5")
        == "https://dc.example.com/confluence/rest/api/content/search?start=5"
    )
    assert dc.link("/confluence/rest/api/x") == "https://dc.example.com/confluence/rest/api/x"
    assert gateway_cloud_id("https://api.atlassian.com/ex/confluence/c1/wiki/", "https://api.atlassian.com") == "c1"
    assert gateway_cloud_id("https://api.atlassian.com/ex/confluence/c1", "https://api.atlassian.com") == "c1"
    assert gateway_cloud_id("https://acme.atlassian.net/wiki", "https://api.atlassian.com") is None
    assert gateway_cloud_id("https://evil.example/ex/confluence/c1/wiki", "https://api.atlassian.com") is None


def test_reset_format_matches_what_the_emulator_sends() -> None:
    from tests.emulators.confluence.faults import reset_time

    sent = reset_time("90", datetime.fromtimestamp(NOW, UTC)).strftime("%Y-%m-%dT%H:%MZ")
    # 10:15:20 + 90 s = 10:16:50, sent as 10:16: the minute's truncation makes it 50 s early.
    assert sent == "2026-03-02T10:16Z" and parse_reset(sent, NOW) == pytest.approx(40)
