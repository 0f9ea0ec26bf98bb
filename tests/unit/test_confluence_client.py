from __future__ import annotations

import email.utils

import httpx
import pytest

from coco_operator.confluence.client import ConfluenceClient, cql_quote, normalize_endpoint, parse_retry_after
from coco_operator.errors import AuthenticationError, ConfluenceUnavailableError, EndpointRemovedError


@pytest.mark.parametrize(
    ("endpoint", "base", "cloud"),
    [
        ("https://acme.atlassian.net/wiki", "https://acme.atlassian.net/wiki", True),
        ("https://acme.atlassian.net/wiki/", "https://acme.atlassian.net/wiki", True),
        ("https://acme.atlassian.net", "https://acme.atlassian.net/wiki", True),
        ("https://acme.atlassian.net/wiki/rest/api", "https://acme.atlassian.net/wiki", True),
        ("https://confluence.example.com", "https://confluence.example.com", False),
        ("https://example.com/confluence/", "https://example.com/confluence", False),
    ],
)
def test_normalize_endpoint(endpoint: str, base: str, cloud: bool) -> None:
    site = normalize_endpoint(endpoint)
    assert (site.base, site.cloud) == (base, cloud)
    assert site.api == base + "/rest/api"


def test_retry_after_seconds_date_and_clamp() -> None:
    assert parse_retry_after("5") == 5
    assert parse_retry_after("0") == 1
    assert parse_retry_after("100000") == 120
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(30)


def test_cql_quote_cannot_inject() -> None:
    assert cql_quote('A" OR space = "B') == '"A\\" OR space = \\"B"'
    assert cql_quote("back\\slash") == '"back\\\\slash"'


def _client(handler: httpx.MockTransport, **kw: object) -> ConfluenceClient:
    return ConfluenceClient("https://dc.example.com", "pat", transport=handler, max_retry_s=5, **kw)  # type: ignore[arg-type]


async def test_paginate_follows_next_relative_to_base_and_stops_on_empty_page() -> None:
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        assert request.headers["Authorization"] == "Bearer pat"
        start = int(request.url.params.get("start", "0"))
        results = [{"id": str(i)} for i in range(start, min(start + 2, 5))]
        links = {"base": "https://dc.example.com", "next": f"/rest/api/content/search?start={start + 2}"}
        return httpx.Response(200, json={"results": results, "_links": links})

    async with _client(httpx.MockTransport(handle)) as client:
        ids = [item["id"] async for item in client.paginate("/content/search", {"cql": "x"})]
    assert ids == ["0", "1", "2", "3", "4"]
    assert len(calls) == 4  # the 4th page is empty but still carries next: stop there


async def test_429_waits_retry_after_then_succeeds() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json={"key": "DOCS"})]

    async with _client(httpx.MockTransport(lambda r: answers.pop(0))) as client:
        assert (await client.get_json("/space/DOCS"))["key"] == "DOCS"
    assert client.requests == 2


async def test_cloud_403_is_an_auth_error_with_advice() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(403, json={"statusCode": 403, "message": "nope"}))
    client = ConfluenceClient("https://acme.atlassian.net/wiki", "tok", username="a@b.c", transport=transport)
    with pytest.raises(AuthenticationError) as err:
        await client.get_json("/space/DOCS")
    await client.aclose()
    assert "email" in err.value.message and "nope" in err.value.message


async def test_malformed_json_retried_once_then_fails() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b'{"results": ['))
    async with _client(transport) as client:
        with pytest.raises(ConfluenceUnavailableError, match="malformed JSON"):
            await client.get_json("/space/X")
        assert client.requests == 2


async def test_gives_up_after_budget() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(503, headers={"Retry-After": "3"}))
    client = ConfluenceClient("https://dc.example.com", "pat", transport=transport, max_retry_s=4)
    with pytest.raises(ConfluenceUnavailableError, match="kept failing"):
        await client.get_json("/space/X")
    await client.aclose()
    assert client.requests == 2


async def test_410_names_the_endpoint_atlassian_removed() -> None:
    gone = {"statusCode": 410, "message": "GoneException: This deprecated endpoint has been removed."}
    transport = httpx.MockTransport(lambda r: httpx.Response(410, json=gone))
    async with _client(transport) as client:
        with pytest.raises(EndpointRemovedError) as err:
            await client.get_json("/space/DOCS")
    assert err.value.reason == "EndpointRemoved" and not err.value.retryable
    assert "410 Gone for GET /rest/api/space/DOCS" in err.value.message and "removed" in err.value.message
    assert client.requests == 1  # never retried


async def test_a_scope_refusal_says_which_scopes_to_grant() -> None:
    refusal = {"code": 401, "message": "Unauthorized; scope does not match"}
    headers = {"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"}
    transport = httpx.MockTransport(lambda r: httpx.Response(401, json=refusal, headers=headers))
    async with _client(transport) as client:
        with pytest.raises(AuthenticationError) as err:
            await client.get_json("/search", {"cql": "x"})
    assert "lacks a scope" in err.value.message and "search:confluence" in err.value.message
