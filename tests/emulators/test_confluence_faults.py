"""Injected faults of the Confluence emulator: rate limits, errors, malformed bodies, timeouts, latency."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from .confluence import ConfluenceEmulator, ConfluenceState
from .confluence_support import (
    cloud,
    dc,
    follow,
    ids_of,
    make_space,
    search,
    site,
)

__all__ = ["cloud", "dc", "site"]  # fixtures used by name

# -- faults --------------------------------------------------------------------------------------------------


def test_rate_limit_headers(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    url = emu.endpoint + "/rest/api/space"
    state.rate_limit_next = 2
    state.retry_after = "7"
    # Auth is checked first and a rejected request does not consume the counter.
    assert httpx.get(url).status_code == 401 and state.rate_limit_next == 2
    limited = client.get(url)
    assert limited.status_code == 429
    headers = limited.headers
    assert headers["Retry-After"] == "7" and headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Limit" in headers
    # Atlassian: an ISO 8601 timestamp in the format yyyy-MM-ddTHH:mmZ, request time plus Retry-After.
    reset = datetime.strptime(headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    assert timedelta(seconds=-55) < reset - datetime.now(UTC) < timedelta(seconds=9)
    if emu.edition == "cloud":
        assert headers["X-RateLimit-NearLimit"] == "true"
    else:
        assert headers["X-RateLimit-Interval-Seconds"] and headers["X-RateLimit-FillRate"]
    assert client.get(url).status_code == 429
    assert client.get(url).status_code == 200


def test_dc_rate_limit_as_403(dc: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = dc
    state.dc_rate_limit_as_403 = True
    state.rate_limit_next = 1
    response = client.get(emu.endpoint + "/rest/api/space")
    assert response.status_code == 403 and "Rate limit exceeded" in response.text
    assert client.get(emu.endpoint + "/rest/api/space").status_code == 200


def test_fail_next_and_malformed(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    url = emu.endpoint + "/rest/api/space"
    state.fail_next = [500, 503, 504]
    state.retry_after = "Wed, 21 Oct 2037 07:28:00 GMT"
    answers = [client.get(url) for _ in range(4)]
    assert [a.status_code for a in answers] == [500, 503, 504, 200]
    assert [a.json()["statusCode"] for a in answers[:3]] == [500, 503, 504]
    assert answers[1].headers["Retry-After"] == state.retry_after
    assert "Retry-After" not in answers[0].headers
    state.malformed_next = 1
    broken = client.get(url)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    assert client.get(url).json()["size"] == 0
    assert [r.status for r in state.requests] == [500, 503, 504, 200, 200, 200]
    state.fail_next = [502]
    state.reset_counters()
    assert client.get(url).status_code == 200


def test_timeout_for_large_body_pages(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    make_space(state, "T", 30)
    state.timeout_body_pages_over = 20
    url = emu.endpoint + "/rest/api/content"
    big = client.get(url, params={"spaceKey": "T", "expand": "body.storage", "limit": 25})
    assert big.status_code == 504 and big.headers["content-type"].startswith("text/html")
    small = follow(client, url, {"spaceKey": "T", "expand": "body.storage", "limit": 20})
    assert len(ids_of(small)) == 30
    assert client.get(url, params={"spaceKey": "T", "limit": 25}).status_code == 200
    searched = search(client, emu, "space = T", expand="body.view")
    assert searched.status_code == 504


def test_latency(cloud: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = cloud
    state.latency_s = 0.2
    with pytest.raises(httpx.ReadTimeout):
        client.get(emu.endpoint + "/rest/api/space", timeout=0.05)
