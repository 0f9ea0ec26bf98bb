"""Whole runs against a hostile Confluence (tests/hostile/server.py): links to another origin are never followed, the
attachment behind one is indexed by metadata only with the reason, and a listing sent elsewhere fails the run
without deleting anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.sync import SyncRequest, run_sync
from tests.hostile.server import HostileServer, raw_answer
from tests.sync.conftest import MeiliServer, settings_for, site_page

DS = "ns/hostile"


@pytest.fixture
def wiki() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


@pytest.fixture
def foreign() -> Iterator[HostileServer]:
    server = HostileServer().start()
    server.route(
        "/latest/meta-data/iam", raw_answer(b"AWS-SECRET-ROLE-CREDENTIALS", headers={"Content-Type": "text/plain"})
    )
    yield server
    server.stop()


def serve_space(wiki: HostileServer, foreign: HostileServer, *, foreign_next: bool = False) -> None:
    attachment = {
        "id": "att9",
        "type": "attachment",
        "status": "current",
        "title": "creds.txt",
        "space": {"key": "DOCS", "name": "Docs"},
        "version": {"number": 1, "when": "2025-01-01T00:00:00.000Z"},
        "container": {"id": "1", "title": "Page 1"},
        "extensions": {"mediaType": "text/plain", "fileSize": 27},
        "_links": {"download": f"{foreign.url}/latest/meta-data/iam"},
    }

    async def search(request: web.Request) -> web.Response:
        cql = request.query["cql"]
        links: dict[str, str] = {"base": foreign.url}  # a server may name any base: it is never used
        if "attachment" in cql:
            results: list[dict[str, Any]] = [attachment]
        elif cql.startswith("id in ("):
            results = [site_page(cid) for cid in ("1", "2") if f'"{cid}"' in cql]
        else:
            results = [
                {"id": "1", "type": "page", "status": "current"},
                {"id": "2", "type": "page", "status": "current"},
            ]
            if foreign_next:
                links["next"] = f"{foreign.url}/rest/api/content/search?start=2"
        return web.json_response({"results": results, "_links": links})

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"totalSize": 3, "results": []})

    async def space(_: web.Request) -> web.Response:
        return web.json_response({"key": "DOCS", "name": "Docs"})

    wiki.route("/rest/api/content/search", search)
    wiki.route("/rest/api/search", count)
    wiki.route("/rest/api/space/DOCS", space)


def _spec(wiki: HostileServer) -> DatasourceSpec:
    config = {"endpoint": wiki.url, "tokenSecretRef": {"name": "t"}, "space": "DOCS", "enable_attachments": True}
    # The site serves no space permissions: what is tested here is where the run fetches from.
    body = {"name": "Hostile", "connector": {"id": "confluence", "config": config}, "permissions": {"mode": "none"}}
    return DatasourceSpec.model_validate(body)


async def test_an_attachment_link_to_another_origin_is_never_fetched_nor_indexed(
    wiki: HostileServer, foreign: HostileServer, meili_server: MeiliServer, index: str
) -> None:
    serve_space(wiki, foreign)
    request = SyncRequest(datasource_id=DS, spec=_spec(wiki), token="dc-pat", index=index)
    result = await run_sync(request, settings_for(meili_server))
    assert result.succeeded, result.error
    assert foreign.hits == []
    assert result.counts.pages == 2 and result.counts.attachments == 1 and result.counts.skipped == 1
    assert result.skipped_items[0].startswith("creds.txt: the operator refused to connect to 127.0.0.1 for Confluence")
    docs = meili_server.docs(index, DS)
    assert len(docs) == 3 and not any("AWS-SECRET" in str(d) for d in docs)


async def test_a_listing_sent_to_another_origin_fails_the_run_and_deletes_nothing(
    wiki: HostileServer, foreign: HostileServer, meili_server: MeiliServer, index: str
) -> None:
    serve_space(wiki, foreign)
    request = SyncRequest(datasource_id=DS, spec=_spec(wiki), token="dc-pat", index=index)
    assert (await run_sync(request, settings_for(meili_server))).succeeded
    serve_space(wiki, foreign, foreign_next=True)
    result = await run_sync(request, settings_for(meili_server))  # a full run: lists every id, would prune
    assert result.error is not None and result.error.reason == "EgressDenied"
    assert "API links must stay on the endpoint's origin" in result.error.message
    assert foreign.hits == []
    assert len(meili_server.docs(index, DS)) == 3
