"""The one run path (`host`), its status writers and the outcome every run mode writes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus, SyncCounts
from coco_operator.dispatcher.host import Target, run_datasource
from coco_operator.dispatcher.jobenv import EnvSecrets
from coco_operator.dispatcher.outcome import Event, finished_status, reported_event
from coco_operator.dispatcher.writers import ApiStatusWriter, FileStatusWriter, MemoryStatusWriter
from coco_operator.errors import SpaceNotFoundError
from coco_operator.reasons import ConditionType
from coco_operator.settings import Settings
from coco_operator.sync import Listing, Progress, SyncRequest, SyncResult, config_fingerprint
from tests.unit.fake_kube import FakeKube, datasource_body
from tests.unit.test_runner import FakeSync, settings

T0 = datetime(2026, 11, 27, 7, 0, 0, 654321, tzinfo=UTC)
SPEC = DatasourceSpec.model_validate(datasource_body()["spec"])


def _succeeded(started: datetime = T0) -> SyncResult:
    return SyncResult(
        started=started,
        finished=started + timedelta(seconds=3),
        counts=SyncCounts(pages=2, deleted=1),
        documents=5,
        watermark=started,
        listing=Listing(last_prune=started, total=5),
    )


def test_finished_status_of_a_success() -> None:
    new, event = finished_status(
        DatasourceStatus(),
        key="docs/wiki",
        spec=SPEC,
        result=_succeeded(),
        generation=4,
        index="docs",
        request_token="t1",
        settings=Settings(),
    )
    assert event.type == "Normal" and event.reason == "SyncSucceeded" and "2 indexed, 1 deleted" in event.message
    assert new.watermarkConfig == config_fingerprint(SPEC, "docs") and new.sourceItems == 5
    assert new.lastHandledSyncRequest == "t1" and new.observedGeneration == 4
    assert (
        new.history and new.history[0].reason == "Succeeded" and new.history[0].counts == SyncCounts(pages=2, deleted=1)
    )
    wire = st.dump(new)
    assert wire["watermark"] == "2026-11-27T07:00:00Z" and wire["lastSyncTime"] == "2026-11-27T07:00:03Z"
    assert reported_event(new) == event


def test_finished_status_of_a_failure() -> None:
    failed = SyncResult.failed(T0, SpaceNotFoundError("space 'X' does not exist"))
    new, event = finished_status(
        DatasourceStatus(consecutiveFailures=2),
        key="docs/wiki",
        spec=SPEC,
        result=failed,
        generation=1,
        index="docs",
        request_token=None,
        settings=Settings(),
    )
    assert event == Event("Warning", "SpaceNotFound", "space 'X' does not exist")
    assert new.consecutiveFailures == 3 and new.history and new.history[0].counts is None
    assert (stalled := st.get_condition(new, ConditionType.STALLED)) and stalled.reason == "SpaceNotFound"
    reported = reported_event(new)  # a Job's run: the Event comes from Ready, which also says when it retries
    assert reported[:2] == event[:2] and reported.message.startswith(event.message)


async def test_api_writer_patches_only_what_changed() -> None:
    kube = FakeKube()
    kube.add_datasource(datasource_body())
    writer = ApiStatusWriter(kube, "docs", "wiki", DatasourceStatus())
    await writer.write(st.with_progress(writer.current, "Indexing", 3, T0))
    await writer.write(st.with_progress(writer.current, "Indexing", 3, T0 + timedelta(microseconds=5)))
    await writer.write(st.with_progress(writer.current, "Indexing", 4, T0))
    assert [p for _, p in kube.patches] == [
        {"progress": {"phase": "Indexing", "items": 3, "updated": "2026-11-27T07:00:00Z"}},
        {"progress": {"items": 4}},
    ]
    assert writer.current.progress and writer.current.progress.updated == T0.replace(microsecond=0)


async def test_file_writer_keeps_status_between_runs(tmp_path: Path) -> None:
    path = tmp_path / "state" / "wiki.json"
    first = FileStatusWriter.load(path)
    assert first.current == DatasourceStatus() and not path.exists()
    new, _ = finished_status(
        first.current,
        key="docs/wiki",
        spec=SPEC,
        result=_succeeded(),
        generation=None,
        index="docs",
        request_token=None,
        settings=Settings(),
    )
    await first.write(new)
    saved = json.loads(path.read_text())
    assert saved["watermark"] == "2026-11-27T07:00:00Z" and saved["lastSync"]["pages"] == 2
    again = FileStatusWriter.load(path)
    assert again.current == first.current and again.current.watermark == T0.replace(microsecond=0)
    before = path.stat().st_mtime_ns
    await again.write(again.current)
    assert path.stat().st_mtime_ns == before  # nothing changed, nothing written
    path.write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        FileStatusWriter.load(path)


async def test_run_datasource_builds_on_prior_status() -> None:
    writer, sync = MemoryStatusWriter(), FakeSync()
    target = Target.of(datasource_body(), SPEC, settings())
    first = await run_datasource(
        target, secrets=EnvSecrets({"CONFLUENCE_TOKEN": "tok"}), writer=writer, settings=settings(), sync=sync
    )
    second = await run_datasource(
        target, secrets=EnvSecrets({}, token="tok"), writer=writer, settings=settings(), sync=sync
    )
    assert first.result.succeeded and second.result.succeeded
    assert sync.requests[0].watermark is None
    assert sync.requests[1].watermark == first.result.started.replace(microsecond=0)
    assert writer.current.history and len(writer.current.history) == 2


async def test_run_datasource_times_out_and_observes_progress() -> None:
    seen: list[tuple[str, int]] = []

    async def slow(request: SyncRequest, settings: Settings, progress: Progress) -> SyncResult:
        progress("Listing", 1)
        await asyncio.sleep(5)
        raise AssertionError("not cancelled")

    finished = await run_datasource(
        Target.of(datasource_body(), SPEC, settings()),
        secrets=EnvSecrets({"CONFLUENCE_TOKEN": "tok"}),
        writer=MemoryStatusWriter(),
        settings=settings(),
        sync=slow,
        observe=lambda phase, items: seen.append((phase, items)),
        timeout_s=0.05,
    )
    assert finished.result.error is not None and finished.result.error.reason == "SyncTimeout"
    assert seen == [("Listing", 1)] and finished.event.type == "Warning"
