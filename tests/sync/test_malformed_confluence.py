"""Whole runs against a Confluence that answers JSON of the wrong shape (tests/hostile/server.py): a result without
`id`, an id that is an object, a version that is text, results that are not a list. Each fails the run with reason
MalformedResponse naming what is wrong, quickly, and deletes nothing that was indexed before."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.sync import SyncRequest, run_sync
from tests.hostile.server import HostileServer
from tests.sync.conftest import MeiliServer, settings_for, site_page

DS = "ns/malformed"


Bend = Callable[[list[dict[str, Any]]], Any]  # the listing's results -> what the server answers as `results`


def serve(wiki: HostileServer, bend: Bend | None = None) -> None:
    async def search(request: web.Request) -> web.Response:
        cql = request.query["cql"]
        if cql.startswith("id in ("):
            results: Any = [site_page(cid) for cid in ("1", "2", "3") if f'"{cid}"' in cql]
        else:
            results = [{"id": cid, "type": "page", "status": "current"} for cid in ("1", "2", "3")]
        return web.json_response({"results": bend(results) if bend else results, "_links": {}})

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"totalSize": 3, "results": []})

    async def space(_: web.Request) -> web.Response:
        return web.json_response({"key": "DOCS", "name": "Docs"})

    wiki.route("/rest/api/content/search", search)
    wiki.route("/rest/api/search", count)
    wiki.route("/rest/api/space/DOCS", space)


@pytest.fixture
def wiki() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


def _request(wiki: HostileServer, index: str) -> SyncRequest:
    config = {"endpoint": wiki.url, "tokenSecretRef": {"name": "t"}, "space": "DOCS"}
    # The fake site serves listings only, not the space permissions of spec.permissions.
    body = {"name": "Malformed", "connector": {"id": "confluence", "config": config}, "permissions": {"mode": "none"}}
    spec = DatasourceSpec.model_validate(body)
    return SyncRequest(datasource_id=DS, spec=spec, token="dc-pat", index=index)


def _without_id(results: list[dict[str, Any]]) -> Any:
    return [*results[:1], {"type": "page", "status": "current"}, *results[1:]]


def _object_id(results: list[dict[str, Any]]) -> Any:
    return [{**r, "id": {"$gt": ""}} if i == 1 else r for i, r in enumerate(results)]


def _text_version(results: list[dict[str, Any]]) -> Any:
    return [{**r, "version": "1"} for r in results]


def _number_in_version(results: list[dict[str, Any]]) -> Any:
    return [{**r, "version": {"number": "seven"}} for r in results]


def _not_a_list(results: list[dict[str, Any]]) -> Any:
    return {str(i): r for i, r in enumerate(results)}


def _null_result(results: list[dict[str, Any]]) -> Any:
    return [*results, None]


@pytest.mark.parametrize(
    ("bend", "says"),
    [
        (_without_id, "result 2 of its page: no id"),
        (_object_id, "an id that is an object"),
        (_text_version, "has version as a string"),
        (_number_in_version, "has version.number as a string"),
        (_not_a_list, "`results` that are not a list"),
        (_null_result, "a null where an object belongs"),
    ],
)
async def test_a_malformed_listing_fails_with_a_reason_and_deletes_nothing(
    wiki: HostileServer, meili_server: MeiliServer, index: str, bend: Bend, says: str
) -> None:
    serve(wiki)
    first = await run_sync(_request(wiki, index), settings_for(meili_server))
    assert first.succeeded, first.error
    assert len(meili_server.docs(index, DS)) == 3
    serve(wiki, bend)
    started = time.monotonic()
    result = await run_sync(_request(wiki, index), settings_for(meili_server))  # a full run: it would prune
    elapsed = time.monotonic() - started
    assert result.error is not None and result.error.reason == "MalformedResponse", result.error
    assert says in result.error.message and wiki.url.removeprefix("http://") in result.error.message
    assert "before indexing or deleting anything" in result.error.message
    assert len(meili_server.docs(index, DS)) == 3  # nothing deleted
    assert elapsed < 5  # one try: no retry storm
    print(f"\n[hostile] malformed listing ({says}): {elapsed:.2f}s, {result.requests} requests, MalformedResponse")
