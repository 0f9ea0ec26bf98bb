"""Whole sync runs with `spec.enrichment`: what the pipeline leaves in the index, deletions of newly excluded pages,
and webhook failures (Fail vs Skip) as the run reports them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.sync import SyncRequest, SyncResult, run_sync
from coco_operator.sync.plan import Listing
from tests.emulators.confluence import ConfluenceEmulator
from tests.sync.conftest import MeiliServer, make_spec, settings_for, token_for

pytestmark = pytest.mark.meili

DS = "ns/wiki"
LABELS = {"app.kubernetes.io/part-of": "search", "coco.rs/team": "platform"}


def _with_enrichment(spec: DatasourceSpec, enrichment: list[dict[str, Any]]) -> DatasourceSpec:
    raw = spec.model_dump(mode="json", exclude_none=True)
    return DatasourceSpec.model_validate({**raw, "enrichment": enrichment})


async def _sync(
    emu: ConfluenceEmulator,
    meili: MeiliServer,
    index: str,
    spec: DatasourceSpec,
    *,
    previous: SyncResult | None = None,
    tokens: dict[int, str] | None = None,
) -> SyncResult:
    request = SyncRequest(
        datasource_id=DS,
        spec=spec,
        token=token_for(emu),
        index=index,
        watermark=previous.watermark if previous and previous.succeeded else None,
        listing=previous.listing if previous and previous.succeeded else Listing(),
        labels=LABELS,
        enrichment_tokens=tokens or {},
    )
    return await run_sync(request, settings_for(meili))


def _fill(emu: ConfluenceEmulator) -> dict[str, str]:
    state = emu.state
    state.add_space("ENR", "Enrichment")
    home = state.add_page("ENR", "Home", "<p>Welcome to the space.</p>")
    ids = {"home": home}
    ids["runbook"] = state.add_page("ENR", "Deploy runbook", "<p>Run the deploy.</p>", parent_id=home)
    ids["hidden"] = state.add_page("ENR", "Secret plans", "<p>Hush.</p>", parent_id=home, labels=["no-index"])
    ids["archive"] = state.add_page("ENR", "Archive", "<p>Old things.</p>", parent_id=home)
    ids["old"] = state.add_page("ENR", "2019 rota", "<p>Rota.</p>", parent_id=ids["archive"])
    long_body = "".join(f"<p>Section {i}. " + "The cluster scales out under load. " * 30 + "</p>" for i in range(20))
    ids["long"] = state.add_page("ENR", "Capacity plan", long_body, parent_id=home)
    return ids


PIPELINE: list[dict[str, Any]] = [
    {"type": "exclude", "name": "hidden", "exclude": {"labels": ["no-index"], "ancestors": ["Archive"]}},
    {
        "type": "set",
        "set": {"fields": {"visibility": "internal"}, "tags": ["eng"], "fromLabels": {"team": "coco.rs/team"}},
    },
    {"type": "chunk", "chunk": {"size": 1000, "overlap": 100}},
]


async def test_pipeline_shapes_what_is_indexed(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(confluence)
    spec = _with_enrichment(make_spec(confluence, "ENR"), PIPELINE)
    result = await _sync(confluence, meili_server, index, spec)
    assert result.succeeded, result.error
    docs = {d["metadata"]["content_id"]: d for d in meili_server.docs(index, DS)}
    assert set(docs) == {ids["home"], ids["runbook"], ids["long"]}
    for doc in docs.values():
        assert doc["visibility"] == "internal" and doc["team"] == "platform" and "eng" in doc["tags"]
        assert doc["document_chunk"][0]["range"]["start"] == 0
    assert len(docs[ids["long"]]["document_chunk"]) > 5
    counts = result.counts
    assert (counts.dropped, counts.enriched, counts.chunked) == (3, 3, 1)


async def test_newly_excluded_pages_leave_the_index(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(confluence)
    plain = make_spec(confluence, "ENR")
    first = await _sync(confluence, meili_server, index, plain)
    assert first.succeeded and first.documents == 6
    # Labelling a page no-index (and turning on the pipeline) removes it and the archive on the next run. A changed
    # pipeline changes the config fingerprint, so that run is a full one (no watermark).
    confluence.state.update_page(ids["runbook"], labels=["no-index"])
    spec = _with_enrichment(plain, PIPELINE)
    second = await _sync(confluence, meili_server, index, spec)
    assert not second.incremental
    assert second.succeeded, second.error
    remaining = {d["metadata"]["content_id"] for d in meili_server.docs(index, DS)}
    assert remaining == {ids["home"], ids["long"]}
    assert second.counts.deleted == 4 and second.documents == 2


@pytest.fixture
async def broken_hook() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=500, text="enricher is down")

    app = web.Application()
    app.router.add_post("/enrich", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/enrich"))
    await server.close()


async def test_failing_webhook_fails_the_run_and_is_named(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str, broken_hook: str
) -> None:
    _fill(confluence)
    hook = {"type": "webhook", "name": "summaries", "webhook": {"url": broken_hook, "retries": 0}}
    spec = _with_enrichment(make_spec(confluence, "ENR"), [hook])
    result = await _sync(confluence, meili_server, index, spec)
    assert result.error is not None and result.error.reason == "EnrichmentFailed"
    assert result.error.message.startswith(f'processor #1 (webhook "summaries" {broken_hook}) failed')
    assert meili_server.docs(index, DS) == []


async def test_skipped_webhook_indexes_unenriched_and_says_so(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str, broken_hook: str
) -> None:
    _fill(confluence)
    hook = {"type": "webhook", "webhook": {"url": broken_hook, "retries": 0, "onFailure": "Skip"}}
    spec = _with_enrichment(make_spec(confluence, "ENR"), [hook])
    result = await _sync(confluence, meili_server, index, spec)
    assert result.succeeded, result.error
    assert len(meili_server.docs(index, DS)) == 6
    [warning] = result.enrichment_warnings
    assert warning.startswith("processor #1 (webhook") and "6 documents" in warning


@pytest.fixture
async def slow_hook() -> AsyncIterator[str]:
    """A webhook that answers only after the processor's timeout."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def enrich(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response(await request.json())

    app = web.Application()
    app.router.add_post("/enrich", enrich)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/enrich"))
    await server.close()


async def test_webhook_timeout_fails_the_run_within_bounds(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str, slow_hook: str
) -> None:
    _fill(confluence)
    hook = {"type": "webhook", "webhook": {"url": slow_hook, "timeoutSeconds": 1, "retries": 1}}
    spec = _with_enrichment(make_spec(confluence, "ENR"), [hook])
    started = asyncio.get_running_loop().time()
    result = await _sync(confluence, meili_server, index, spec)
    assert result.error is not None and result.error.reason == "EnrichmentFailed"
    assert "no answer within 1s (2 attempts)" in result.error.message
    assert asyncio.get_running_loop().time() - started < 15  # two attempts of 1 s and a short backoff
    assert meili_server.docs(index, DS) == []
