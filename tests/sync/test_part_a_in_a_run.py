"""Part A of issue 13 is active in a real run, not only in its own unit tests: the run's Confluence client carries the
egress policy, the total deadline and the cap on decoded bytes from the operator's settings; the webhook processor
the operator's webhook policy; attachments are extracted and pages converted in worker processes within the limits
the settings give. Real HTTP to the emulators and to a hostile server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.sync import SyncRequest, SyncResult, run_sync
from tests.emulators.confluence import ConfluenceEmulator
from tests.hostile.pdf import cpu_bomb_pdf, text_pdf
from tests.hostile.server import HostileServer, json_answer, trickle
from tests.sync.conftest import MeiliServer, make_spec, settings_for, token_for

DS = "ns/wiki"


@pytest.fixture
def wiki() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


async def _run(emu: ConfluenceEmulator, meili: MeiliServer, index: str, spec: DatasourceSpec, **kw: Any) -> SyncResult:
    request = SyncRequest(datasource_id=DS, spec=spec, token=token_for(emu), index=index)
    return await run_sync(request, settings_for(meili, **kw))


def _hostile_spec(server: HostileServer, endpoint: str | None = None) -> DatasourceSpec:
    config = {"endpoint": endpoint or server.url, "tokenSecretRef": {"name": "t"}, "space": "DOCS"}
    return DatasourceSpec.model_validate({"name": "Hostile", "connector": {"id": "confluence", "config": config}})


async def _hostile_run(server: HostileServer, meili: MeiliServer, index: str, **kw: Any) -> SyncResult:
    request = SyncRequest(
        datasource_id=DS, spec=_hostile_spec(server, kw.pop("endpoint", None)), token="pat", index=index
    )
    return await run_sync(request, settings_for(meili, **kw))


# --- the Confluence client of a run ------------------------------------------------------------------------------


async def test_the_run_refuses_a_private_endpoint_before_sending_anything(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    cloud.state.add_space("A", "A")
    asked = len(cloud.state.requests)
    result = await _run(cloud, meili_server, index, make_spec(cloud, "A"), allow_private_networks=False)
    assert result.error is not None and result.error.reason == "EndpointNotAllowed"
    assert "it is a loopback address" in result.error.message and "COCO_ALLOW_PRIVATE_NETWORKS" in result.error.message
    assert len(cloud.state.requests) == asked and result.requests == 0


async def test_the_run_checks_the_address_a_name_resolves_to_when_connecting(
    wiki: HostileServer, meili_server: MeiliServer, index: str
) -> None:
    """`localhost` passes the URL checks; only the transport of the run's client, resolving the name itself, can see
    that it is loopback: proof that the client carries the operator's policy, not the unchecked default."""
    endpoint = wiki.url.replace("127.0.0.1", "localhost")
    result = await _hostile_run(wiki, meili_server, index, endpoint=endpoint, allow_private_networks=False)
    assert result.error is not None and result.error.reason == "EgressDenied"
    assert "it resolves to a loopback address" in result.error.message and wiki.hits == []


async def test_the_total_deadline_of_the_settings_ends_a_trickling_answer(
    wiki: HostileServer, meili_server: MeiliServer, index: str
) -> None:
    wiki.route("/rest/api/space/DOCS", trickle(b'{"key": "DOCS", ', every_s=0.2))
    started = time.monotonic()
    result = await _hostile_run(
        wiki, meili_server, index, http_request_deadline_seconds=1, confluence_max_retry_seconds=1.5
    )
    took = time.monotonic() - started
    print(f"\n[hostile] trickling answer in a run: {took:.1f}s, {len(wiki.hits)} requests")
    assert result.error is not None and "no complete answer within 1s" in result.error.message
    assert took < 8  # a per-read timeout of 5 s would never end: every read gets a byte


async def test_the_cap_on_decoded_bytes_of_the_settings_applies(
    wiki: HostileServer, meili_server: MeiliServer, index: str
) -> None:
    wiki.route("/rest/api/space/DOCS", json_answer({"key": "DOCS", "name": "x" * (3 * 1024 * 1024)}))
    result = await _hostile_run(wiki, meili_server, index, confluence_max_response_bytes=1024 * 1024)
    assert result.error is not None and result.error.reason == "ResponseTooLarge", result.error


# --- the webhook processor of a run -----------------------------------------------------------------------------


async def test_the_webhook_of_a_run_gets_the_operators_webhook_policy(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str, wiki: HostileServer
) -> None:
    cloud.state.add_space("W", "W")
    cloud.state.add_page("W", "Home", "<p>hello</p>")
    raw = make_spec(cloud, "W").model_dump(mode="json", exclude_none=True)
    hook = {"type": "webhook", "webhook": {"url": f"{wiki.url}/enrich", "onFailure": "Skip"}}
    spec = DatasourceSpec.model_validate({**raw, "enrichment": [hook]})
    result = await _run(cloud, meili_server, index, spec, webhook_allowed_hosts=["hooks.example.com"])
    assert result.error is not None and result.error.reason == "EgressDenied"  # whatever onFailure says
    assert "COCO_WEBHOOK_ALLOWED_HOSTS" in result.error.message and wiki.hits == []


# --- extraction and conversion in worker processes ----------------------------------------------------------------


async def test_attachments_are_extracted_in_worker_processes_within_the_settings_limits(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    cloud.state.add_space("X", "X")
    page = cloud.state.add_page("X", "Home", "<p>hello</p>")
    cloud.state.add_attachment(page, "fine.pdf", text_pdf("quarterly numbers"), "application/pdf")
    cloud.state.add_attachment(page, "bomb.pdf", cpu_bomb_pdf(), "application/pdf")
    spec = make_spec(cloud, "X", enable_attachments=True)
    started = time.monotonic()
    result = await _run(cloud, meili_server, index, spec, extraction_timeout_seconds=3)
    took = time.monotonic() - started
    print(f"\n[hostile] CPU-bomb PDF in a run: {took:.1f}s, skipped {result.skipped_items}")
    assert result.succeeded, result.error
    assert result.counts.attachments == 2 and result.counts.skipped == 1
    (skipped,) = result.skipped_items
    assert skipped.startswith("bomb.pdf: text extraction") and "and was stopped" in skipped
    texts = {d["title"]: d.get("content", "") for d in meili_server.docs(index, DS)}
    assert "quarterly numbers" in texts["fine.pdf"]
    assert took < 15


async def test_a_page_that_exceeds_the_text_workers_limits_is_skipped_and_reported(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    """The 1.1 MB nested body that stalled the loop 22 s: converted in a worker within the settings' limits, the
    page indexed by title only and named in the run's skipped items."""
    cloud.state.add_space("N", "N")
    cloud.state.add_page("N", "Fine", "<p>fine</p>")
    cloud.state.add_page("N", "Nested", "<div>" * 110_000 + "deep" + "</div>" * 110_000)
    started = time.monotonic()
    result = await _run(cloud, meili_server, index, make_spec(cloud, "N"), text_conversion_timeout_seconds=1.5)
    took = time.monotonic() - started
    print(f"\n[hostile] 1.1 MB nested body in a run: {took:.1f}s, skipped {result.skipped_items}")
    assert result.succeeded, result.error
    assert result.counts.pages == 2 and result.counts.skipped == 1
    (skipped,) = result.skipped_items
    assert skipped.startswith("Nested: converting it to text") and "indexed by title and metadata only" in skipped
    assert took < 15


@pytest.fixture(autouse=True)
def _no_extraction_in_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared thread pool must never run extraction: a call of the in-process extractor from a thread fails."""
    import asyncio

    from coco_operator.confluence import extract

    real = asyncio.to_thread

    async def guarded(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        assert fn is not extract.extract_text, "attachment text extraction ran in the shared thread pool"
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", guarded)
