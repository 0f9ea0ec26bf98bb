"""Listings that end early or never end, and rate-limit headers, over real HTTP: a run never deletes on the word of
a listing it cannot prove complete (issue 13 point 5), never loops, and paces itself as the site asks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.confluence.client import ConfluenceClient
from coco_operator.sync import SyncRequest, SyncResult, run_sync
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState
from tests.hostile.conftest import loopback_policy
from tests.hostile.server import HostileServer
from tests.sync.conftest import CLOUD_EMAIL, CLOUD_TOKEN, DC_PAT, MeiliServer, make_spec, settings_for, site_page, sync

pytestmark = pytest.mark.meili

DS = "ns/quirks"
TOTAL = 25
PAGE = 10


class FakeSite:
    """A Confluence with 25 pages whose listing misbehaves as asked (`quirk`), on the hostile test server.

    Data Center (offset paging) unless `cloud` (cursor paging under /wiki, spaces from REST v2).
    """

    def __init__(self, server: HostileServer, *, cloud: bool = False) -> None:
        self.server, self.cloud = server, cloud
        self.quirk: str | None = None
        self.prefix = "/wiki" if cloud else ""
        server.route(f"{self.prefix}/rest/api/content/search", self.search)
        server.route(f"{self.prefix}/rest/api/search", self.count)
        server.route("/rest/api/space/DOCS", self.space)
        server.route("/wiki/api/v2/spaces", self.spaces)

    @property
    def endpoint(self) -> str:
        return self.server.url + self.prefix

    async def space(self, _: web.Request) -> web.Response:
        return web.json_response({"key": "DOCS", "name": "Docs", "status": "current"})

    async def spaces(self, _: web.Request) -> web.Response:
        return web.json_response({"results": [{"id": "9", "key": "DOCS", "name": "Docs", "status": "current"}]})

    async def count(self, _: web.Request) -> web.Response:
        return web.json_response({"totalSize": TOTAL, "results": [], "_links": {}})

    async def search(self, request: web.Request) -> web.Response:
        cql = request.query["cql"]
        if cql.startswith("id in ("):
            ids = [int(part.strip(' "')) for part in cql[len("id in (") : cql.index(")")].split(",")]
            return web.json_response({"results": [site_page(str(i)) for i in ids], "_links": {}})
        if self.quirk == "order_refused" and "order by" in cql:
            return web.json_response({"statusCode": 400, "message": f"Could not parse cql : {cql}"}, status=400)
        start = self._position(request)
        items = [site_page(str(i)) for i in range(1, TOTAL + 1)][start : start + PAGE]
        nxt: int | None = start + PAGE if start + PAGE < TOTAL else None
        if start == PAGE and self.quirk == "empty_page":
            items = []  # an empty page in the middle, still linking onwards
        elif start == PAGE and self.quirk == "backwards":
            nxt = 5
        elif start == PAGE and self.quirk == "repeated":
            nxt = PAGE  # links to itself
        elif start == PAGE and self.quirk == "short":
            nxt = None  # claims to be the end after 20 of 25
        return web.json_response({"results": items, "_links": self._links(request, start, nxt)})

    def _position(self, request: web.Request) -> int:
        if self.cloud:
            return int(request.query.get("cursor", "p0")[1:])
        return int(request.query.get("start", "0"))

    def _links(self, request: web.Request, start: int, nxt: int | None) -> dict[str, str]:
        links = {"base": "https://elsewhere.example/wiki"}
        if nxt is not None:
            kept = {k: v for k, v in request.query.items() if k not in ("start", "cursor")}
            kept.update({"cursor": f"p{nxt}"} if self.cloud else {"start": str(nxt)})
            links["next"] = "/rest/api/content/search?" + urlencode(kept)
        return links


@pytest.fixture
def server() -> Iterator[HostileServer]:
    s = HostileServer().start()
    yield s
    s.stop()


def spec_for(site: FakeSite) -> DatasourceSpec:
    config: dict[str, Any] = {"endpoint": site.endpoint, "tokenSecretRef": {"name": "t"}, "space": "DOCS"}
    if site.cloud:
        config["username"] = CLOUD_EMAIL
    # The fake site serves listings only, not the space permissions of spec.permissions.
    body = {"name": "Quirks", "connector": {"id": "confluence", "config": config}, "permissions": {"mode": "none"}}
    return DatasourceSpec.model_validate(body)


async def full_run(site: FakeSite, meili: MeiliServer, index: str) -> SyncResult:
    request = SyncRequest(datasource_id=DS, spec=spec_for(site), token="tok-123456", index=index)
    return await run_sync(request, settings_for(meili))


@pytest.mark.parametrize(
    ("cloud", "quirk", "said"),
    [
        (False, "empty_page", "it returned 10 distinct items where Confluence counts 25"),
        (False, "short", "it returned 20 distinct items where Confluence counts 25"),
        (False, "backwards", "a next link that goes backwards"),
        (True, "repeated", "a next link it had already followed"),
    ],
)
async def test_a_listing_that_ends_early_deletes_nothing_and_is_retried(
    server: HostileServer, meili_server: MeiliServer, index: str, cloud: bool, quirk: str, said: str
) -> None:
    site = FakeSite(server, cloud=cloud)
    first = await full_run(site, meili_server, index)
    assert first.succeeded, first.error
    assert len(meili_server.docs(index, DS)) == TOTAL
    site.quirk = quirk
    again = await full_run(site, meili_server, index)  # a full run lists every id and would prune what it missed
    assert again.error is not None and again.error.reason == "ListingIncomplete" and again.error.retryable
    assert said in again.error.message and "othing was deleted" in again.error.message
    assert len(meili_server.docs(index, DS)) == TOTAL
    if quirk == "short":  # a shortfall is counted again before the run gives up
        counts = [p for p in server.paths() if p.startswith("/rest/api/search")]
        assert len(counts) == 3  # first run 1, this run 2


async def test_a_site_refusing_the_order_clause_is_listed_without_it(
    server: HostileServer, meili_server: MeiliServer, index: str
) -> None:
    site = FakeSite(server)
    site.quirk = "order_refused"
    result = await full_run(site, meili_server, index)
    assert result.succeeded, result.error
    assert len(meili_server.docs(index, DS)) == TOTAL
    listings = [p for p in server.paths() if p.startswith("/rest/api/content/search") and "id+in" not in p]
    assert "order+by" in listings[0] and not any("order+by" in p for p in listings[1:])


@pytest.fixture
def dc_site() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState()
    state.add_pat(DC_PAT)
    with ConfluenceEmulator(state, edition="dc") as emu:
        yield emu


async def test_data_center_past_the_end_and_miscounted_start_never_loop(
    dc_site: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    """CONFSERVER-95396 (records and a next link past the end) with Onyx #4129 (next's start under-counts a capped
    page): every page listed once, and the listing stops at the first page that brings nothing new."""
    state = dc_site.state
    state.add_space("PAST", "Past the end")
    ids = [state.add_page("PAST", f"Page {i}", f"<p>body {i}</p>") for i in range(60)]
    state.dc_past_end, state.dc_past_end_threshold = True, 20
    state.dc_miscount_start = True
    state.dc_plain_cap = state.dc_expand_cap = 17
    result = await sync(dc_site, meili_server, index, make_spec(dc_site, "PAST"))
    assert result.succeeded, result.error
    assert sorted(d["metadata"]["content_id"] for d in meili_server.docs(index, "ns/wiki")) == sorted(ids)
    listings = [r for r in state.requests if r.route == "v1.content.search" and "expand" not in r.query]
    starts = [int(r.query.get("start", "0")) for r in listings]
    # 60 items at 17 a page: 0, 17, 34, 51 (the tail), then one page of repeats past the end, and stop.
    assert starts == [0, 17, 34, 51, 68], starts


async def test_retry_after_missing_waits_for_x_ratelimit_reset(meili_server: MeiliServer, index: str) -> None:
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    state.add_space("RL", "Rate limited")
    state.add_page("RL", "Only", "<p>x</p>")
    state.rate_limit_style = "reset_only"  # 429 with X-RateLimit-Reset and no Retry-After
    state.retry_after = "3"
    state.rate_limit_next = 1
    waits: list[float] = []
    with ConfluenceEmulator(state, edition="cloud") as emu:
        request = SyncRequest(datasource_id=DS, spec=make_spec(emu, "RL"), token=CLOUD_TOKEN, index=index)
        result = await run_sync(request, settings_for(meili_server), on_wait=waits.append)
    assert result.succeeded, result.error
    # The reset is the request time + 3 s truncated to the minute: never earlier than the first backoff (1 s).
    assert len(waits) == 1 and 1.0 <= waits[0] <= 3.5, waits


async def test_an_absurd_retry_after_fails_fast_instead_of_waiting_forever(
    meili_server: MeiliServer, index: str
) -> None:
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    state.add_space("RL", "Rate limited")
    state.retry_after = "9223372036854775807"
    state.rate_limit_next = 10
    with ConfluenceEmulator(state, edition="cloud") as emu:
        request = SyncRequest(datasource_id=DS, spec=make_spec(emu, "RL"), token=CLOUD_TOKEN, index=index)
        started = time.monotonic()
        result = await run_sync(request, settings_for(meili_server))
    assert time.monotonic() - started < 5
    assert result.error is not None and result.error.reason == "ConfluenceUnavailable" and result.error.retryable
    assert "asked to wait 120s" in result.error.message


async def test_near_limit_halves_the_requests_in_flight_and_pauses() -> None:
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    state.add_space("NL", "Near the limit")
    for i in range(40):
        state.add_page("NL", f"Page {i}", "<p>x</p>")
    state.cloud_cap = 5
    state.near_limit_next = 2
    with ConfluenceEmulator(state, edition="cloud") as emu:
        async with ConfluenceClient(
            emu.endpoint, CLOUD_TOKEN, username=CLOUD_EMAIL, concurrency=8, egress=loopback_policy()
        ) as client:
            started = time.monotonic()
            ids = [i["id"] async for i in client.paginate("/content/search", {"cql": "space = NL", "limit": 5})]
            elapsed = time.monotonic() - started
    assert len(ids) == 40
    assert client.throttle.pace.limit == 2  # 8, halved twice
    assert elapsed >= 2 * 0.9  # a pause of 1 s after each warning


async def test_data_center_interval_header_is_the_wait(server: HostileServer) -> None:
    answers = iter([429, 200])

    async def space(_: web.Request) -> web.Response:
        if next(answers) == 429:
            headers = {"X-RateLimit-Interval-Seconds": "2", "X-RateLimit-FillRate": "1"}
            return web.json_response({"message": "Rate limit exceeded"}, status=429, headers=headers)
        return web.json_response({"key": "DOCS", "name": "Docs", "status": "current"})

    server.route("/rest/api/space/DOCS", space)
    waits: list[float] = []
    async with ConfluenceClient(server.url, "pat-123456", egress=loopback_policy(), on_wait=waits.append) as client:
        assert (await client.get_space("DOCS"))["key"] == "DOCS"
    assert waits == [2.0] and client.throttle.pace.limit == 2  # the 429 also halved the pace (4 -> 2)
