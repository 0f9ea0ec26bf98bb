"""Each phase of a run on its own, against the Confluence emulator and Meilisearch over real HTTP: what it reads,
what it decides and what it leaves in the run state for the next phase."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.confluence.client import ConfluenceClient
from coco_operator.documents import document_id
from coco_operator.sync import Listing, SyncRequest, SyncResult
from coco_operator.sync.attachments import index_attachments
from coco_operator.sync.index import index_content
from coco_operator.sync.prune import prune_index
from coco_operator.sync.run import new_run
from coco_operator.sync.state import Run
from coco_operator.sync.survey import plan_run
from tests.emulators.confluence import ConfluenceEmulator
from tests.sync.conftest import MeiliServer, make_spec, settings_for, sync, token_for

pytestmark = pytest.mark.meili

DS = "ns/wiki"


@contextlib.asynccontextmanager
async def run_of(
    emu: ConfluenceEmulator,
    meili: MeiliServer,
    index: str,
    spec: DatasourceSpec,
    previous: SyncResult | None = None,
    **settings: Any,
) -> AsyncIterator[Run]:
    """A run's state as `run_sync` builds it, for calling phases one by one."""
    request = SyncRequest(
        DS,
        spec,
        token_for(emu),
        index,
        watermark=previous.watermark if previous else None,
        listing=previous.listing if previous else Listing(),
    )
    config = spec.connector.config
    client = ConfluenceClient(config.endpoint, request.token, username=config.username, timeout_s=5, max_retry_s=10)
    async with client:
        run = new_run(request, settings_for(meili, **settings), client)
        try:
            yield run
        finally:
            if run.full is not None:
                await run.full.aclose()
            await run.workers.close()


def _fill(emu: ConfluenceEmulator, key: str, pages: int) -> list[str]:
    emu.state.add_space(key, f"Space {key}")
    return [emu.state.add_page(key, f"Page {i}", f"<p>body {i}</p>") for i in range(pages)]


async def test_plan_of_a_full_run_lists_and_fetches_everything(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(cloud, "PLF", 12)
    async with run_of(cloud, meili_server, index, make_spec(cloud, "PLF")) as run:
        await plan_run(run)
        planned = run.planned
        assert not planned.plan.incremental and planned.plan.prune_reason == "full sync"
        assert planned.survey.total == 12 and planned.survey.indexed == {} and "PLF" in planned.survey.spaces
        fetched = [item["id"] for batch in [b async for b in planned.bodies] for item in batch]
        assert sorted(fetched) == sorted(ids)
        assert planned.current is not None and set(planned.current) == set(ids)  # complete once bodies are in


async def test_plan_of_an_unchanged_incremental_run_fetches_nothing(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    _fill(cloud, "PLI", 8)
    spec = make_spec(cloud, "PLI")
    full = await sync(cloud, meili_server, index, spec, ds_id=DS)
    assert full.succeeded
    async with run_of(cloud, meili_server, index, spec, full) as run:
        await plan_run(run)
        planned = run.planned
        assert planned.plan.incremental and planned.plan.prune_reason is None and planned.current is None
        assert len(planned.survey.indexed) == 8 and planned.survey.changed  # the overlap re-reads the window
        assert [b async for b in planned.bodies] == []
        # space, count, changed window; the space's permissions (2) and the restrictions sweep (1)
        assert run.client.requests == 3 + 3


async def test_index_writes_the_documents_the_plan_lined_up(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(cloud, "IDX", 6)
    async with run_of(cloud, meili_server, index, make_spec(cloud, "IDX")) as run:
        await plan_run(run)
        await index_content(run)
        await run.writer.flush()
        await run.sink.flush()
        assert run.tally.pages == 6 and run.tally.items == 6 and run.tally.attachments == 0
    docs = meili_server.docs(index, DS)
    assert sorted(d["metadata"]["content_id"] for d in docs) == sorted(ids)
    assert {d["category"] for d in docs} == {"Space IDX"}


async def test_attachments_are_indexed_and_unreadable_ones_counted(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    (page,) = _fill(cloud, "ATT", 1)
    cloud.state.add_attachment(page, "notes.txt", b"runbook for the narwhal service", "text/plain")
    cloud.state.add_attachment(page, "huge.txt", b"x" * 5000, "text/plain")
    spec = make_spec(cloud, "ATT", enable_attachments=True)
    async with run_of(cloud, meili_server, index, spec, attachment_max_bytes=1000) as run:
        await plan_run(run)
        await index_content(run)
        await index_attachments(run)
        await run.writer.flush()
        await run.sink.flush()
        assert run.tally.attachments == 2 and run.tally.skipped == 1 and len(run.tally.attachment_ids) == 2
        assert run.tally.skipped_items and run.tally.skipped_items[0].startswith("huge.txt: ")
    texts = {d["title"]: d["content"] for d in meili_server.docs(index, DS) if d["type"] == "attachment"}
    assert "narwhal" in texts["notes.txt"] and texts["huge.txt"] == ""


async def test_prune_deletes_what_left_the_scope_once_everything_is_written(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(cloud, "PRN", 5)
    spec = make_spec(cloud, "PRN")
    full = await sync(cloud, meili_server, index, spec, ds_id=DS)
    cloud.state.purge(ids[0])
    cloud.state.add_page("PRN", "Fresh", "<p>fresh</p>")  # one in, one out: the count alone cannot tell
    async with run_of(cloud, meili_server, index, spec, full, prune_interval_seconds=0) as run:
        await plan_run(run)
        assert run.planned.plan.lists_every_id and run.planned.current is not None
        await index_content(run)
        await index_attachments(run)
        assert document_id(DS, ids[0]) in {d["id"] for d in meili_server.docs(index, DS)}  # still there
        await prune_index(run)
        assert run.tally.deleted == 1 and run.tally.pages == 1
    remaining = {d["metadata"]["content_id"] for d in meili_server.docs(index, DS)}
    assert ids[0] not in remaining and len(remaining) == 5
