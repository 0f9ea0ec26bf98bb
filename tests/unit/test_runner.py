"""The control loop through the `Kube` protocol and an injected sync: what a Worker decides and writes.

No API server and no Confluence: `FakeKube` keeps objects in memory and applies status merge patches as the API
server does; `FakeSync` stands in for the sync run. The clock is injected where a test needs time to pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coco_operator.api.datasource import SyncCounts
from coco_operator.dispatcher.runner import SYNC_REQUEST_ANNOTATION, Dispatcher, JobPrep, Worker
from coco_operator.errors import AuthenticationError, SearchBackendError, SyncError
from coco_operator.settings import Settings
from coco_operator.sync import Listing, Progress, SyncRequest, SyncResult
from tests.unit.fake_kube import FakeKube, datasource_body

KEY = ("docs", "wiki")


class FakeSync:
    """Records each request; answers with a successful result unless told to fail, hold or report progress."""

    def __init__(self) -> None:
        self.requests: list[SyncRequest] = []
        self.errors: list[SyncError] = []  # raised by the next runs, in order
        self.hold: asyncio.Event | None = None  # a run waits for it
        self.reports: list[tuple[str, int]] = []
        self.linger_s = 0.0  # after reporting, before returning
        self.called = asyncio.Event()
        self.cancelled = False

    async def __call__(self, request: SyncRequest, settings: Settings, progress: Progress) -> SyncResult:
        self.requests.append(request)
        self.called.set()
        started = datetime.now(UTC)
        for phase, items in self.reports:
            progress(phase, items)
        try:
            if self.hold is not None:
                await self.hold.wait()
            await asyncio.sleep(self.linger_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.errors:
            return SyncResult.failed(started, self.errors.pop(0))
        return SyncResult(
            started=started,
            finished=datetime.now(UTC),
            counts=SyncCounts(pages=3),
            documents=3,
            incremental=request.watermark is not None,
            watermark=started,
            listing=Listing(last_prune=started, total=3),
        )


class Clock:
    """Real time, shifted by what a test lets pass."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"retry_delay_in_ms": 1000, "retry_max_delay_seconds": 4, "progress_interval_seconds": 0.5}
    return Settings(**{**base, **overrides})


def kube_with(body: dict[str, Any] | None = None, *, secret: bool = True, connector: bool = True) -> FakeKube:
    kube = FakeKube()
    kube.add_datasource(body or datasource_body())
    if secret:
        kube.add_secret("docs", "confluence-token", {"token": "tok"})
    if connector:
        kube.add_connector()
    return kube


@contextlib.asynccontextmanager
async def worker_for(
    kube: FakeKube,
    sync: FakeSync,
    clock: Callable[[], datetime] | None = None,
    *,
    job_prep: JobPrep | None = None,
    **overrides: Any,
) -> AsyncIterator[Worker]:
    dispatcher = Dispatcher(settings(**overrides), kube, sync, clock=clock or Clock(), job_prep=job_prep)
    worker = Worker(dispatcher, KEY, kube.datasources[KEY])
    try:
        yield worker
    finally:
        await worker.stop()
        await dispatcher.shutdown()


def condition(kube: FakeKube, type_: str) -> dict[str, Any] | None:
    return next((c for c in kube.status(*KEY).get("conditions", []) if c["type"] == type_), None)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_first_step_runs_a_full_sync_and_reports_it() -> None:
    kube, sync = kube_with(), FakeSync()
    async with worker_for(kube, sync) as worker:
        assert await worker.step() == 0.0
    (request,) = sync.requests
    assert request.watermark is None and request.token == "tok" and request.index == "coco_documents"
    assert request.datasource_id == "docs/wiki" and dict(request.labels) == {"team": "docs"}
    status = kube.status(*KEY)
    ready = condition(kube, "Ready")
    assert ready and ready["status"] == "True" and ready["reason"] == "Succeeded" and "3 indexed" in ready["message"]
    assert condition(kube, "Reconciling") is None and status["observedGeneration"] == 1
    assert status["lastSync"]["pages"] == 3 and status["documents"] == 3 and len(status["history"]) == 1
    assert _at(status["nextSyncTime"]) - _at(status["lastSyncTime"]) >= timedelta(minutes=5)
    assert kube.reasons() == ["SyncStarted", "SyncSucceeded"]
    assert "Started a full sync of space DOCS into index coco_documents" in kube.events[0][2]


async def test_not_due_waits_and_due_runs_incrementally_from_the_watermark() -> None:
    kube, sync, clock = kube_with(), FakeSync(), Clock()
    async with worker_for(kube, sync, clock) as worker:
        await worker.step()
        delay = await worker.step()
        assert delay is not None and 290 < delay <= 5 * 60 * 1.05 and len(sync.requests) == 1
        clock.advance(minutes=6)
        assert await worker.step() == 0.0
    first = kube.status(*KEY)
    second = sync.requests[1]
    assert second.watermark is not None and second.watermark == _at(first["watermark"])
    assert second.listing == Listing(last_prune=_at(first["lastPruneTime"]), total=3)
    assert "Started an incremental sync" not in kube.events[2][2] and "incremental" in kube.events[2][2]


async def test_a_retryable_failure_backs_off_and_retries() -> None:
    kube, sync, clock = kube_with(), FakeSync(), Clock()
    sync.errors = [SearchBackendError("Meilisearch is down"), SearchBackendError("still down")]
    async with worker_for(kube, sync, clock) as worker:
        await worker.step()
        status = kube.status(*KEY)
        assert status["consecutiveFailures"] == 1 and status["lastSyncResult"] == "Failed"
        assert _at(status["nextSyncTime"]) - _at(status["lastSyncTime"]) <= timedelta(seconds=2)
        retrying = condition(kube, "Reconciling")
        assert retrying and retrying["reason"] == "ProgressingWithRetry" and condition(kube, "Stalled") is None
        assert kube.events[-1][:2] == ("Warning", "SearchBackendUnavailable")
        clock.advance(seconds=3)
        await worker.step()
        assert kube.status(*KEY)["consecutiveFailures"] == 2 and len(sync.requests) == 2
        clock.advance(seconds=5)
        await worker.step()
    status = kube.status(*KEY)
    assert status["consecutiveFailures"] == 0 and "lastError" not in status and len(status["history"]) == 3


async def test_a_failure_that_needs_a_fix_is_stalled() -> None:
    kube, sync = kube_with(), FakeSync()
    sync.errors = [AuthenticationError("Confluence refused the token")]
    async with worker_for(kube, sync) as worker:
        await worker.step()
    stalled = condition(kube, "Stalled")
    assert stalled and stalled["reason"] == "AuthenticationFailed" and condition(kube, "Reconciling") is None


@pytest.mark.parametrize(
    ("secret", "connector", "reason"),
    [(False, True, "SecretNotFound"), (True, False, "ConnectorNotFound")],
)
async def test_what_a_run_needs_missing_fails_it_with_the_reason(secret: bool, connector: bool, reason: str) -> None:
    kube, sync = kube_with(secret=secret, connector=connector), FakeSync()
    async with worker_for(kube, sync) as worker:
        await worker.step()
    ready = condition(kube, "Ready")
    assert ready and ready["status"] == "False" and ready["reason"] == reason
    assert not sync.requests and kube.events[-1][:2] == ("Warning", reason)


async def test_a_connector_with_another_processor_is_not_ready() -> None:
    kube, sync = kube_with(connector=False), FakeSync()
    kube.add_connector(processor="sharepoint")
    async with worker_for(kube, sync) as worker:
        await worker.step()
    ready = condition(kube, "Ready")
    assert ready and ready["reason"] == "ConnectorNotReady" and "sharepoint" in ready["message"]


async def test_pause_then_resume_without_a_run() -> None:
    kube, sync = kube_with(), FakeSync()
    async with worker_for(kube, sync) as worker:
        await worker.step()
        kube.add_connector(enabled=False)
        assert await worker.step() is None
        ready = condition(kube, "Ready")
        assert ready and ready["reason"] == "ConnectorDisabled" and "nextSyncTime" not in kube.status(*KEY)
        kube.add_connector(enabled=True)
        delay = await worker.step()
        assert delay is not None and delay > 0 and len(sync.requests) == 1
    ready = condition(kube, "Ready")
    assert ready and ready["status"] == "True" and ready["message"] == "Resumed; the last sync succeeded"
    assert "nextSyncTime" in kube.status(*KEY)


async def test_suspended_and_invalid_specs_pause() -> None:
    kube, sync = kube_with(datasource_body(sync={"enabled": False, "interval": "5m"})), FakeSync()
    async with worker_for(kube, sync) as worker:
        assert await worker.step() is None
        assert (ready := condition(kube, "Ready")) and ready["reason"] == "Suspended"
        worker.update(datasource_body(generation=2, sync={"interval": "soon"}))
        assert await worker.step() is None
    ready = condition(kube, "Ready")
    assert ready and ready["reason"] == "InvalidSpec" and "interval" in ready["message"] and not sync.requests


async def test_queued_while_every_slot_is_taken() -> None:
    kube, sync = kube_with(), FakeSync()
    async with worker_for(kube, sync, max_concurrent_runs=1) as worker:
        dispatcher = worker.d
        await dispatcher.slots.acquire("other")  # another namespace's run
        step = asyncio.create_task(worker.step())
        await asyncio.sleep(0.05)
        queued = condition(kube, "Reconciling")
        assert queued and queued["reason"] == "Queued" and "1 runs in progress, limit 1" in queued["message"]
        assert not sync.requests
        dispatcher.slots.release("other")
        await asyncio.wait_for(step, 5)
    assert len(sync.requests) == 1 and condition(kube, "Reconciling") is None


async def test_a_spec_change_cancels_the_run_in_progress() -> None:
    kube, sync = kube_with(), FakeSync()
    sync.hold = asyncio.Event()
    async with worker_for(kube, sync) as worker:
        step = asyncio.create_task(worker.step())
        await asyncio.wait_for(sync.called.wait(), 5)
        assert (running := condition(kube, "Reconciling")) and running["reason"] == "Progressing"
        worker.update(datasource_body(generation=2))
        assert await asyncio.wait_for(step, 5) == 0.0
        assert sync.cancelled and condition(kube, "Reconciling") is None and "lastSyncTime" not in kube.status(*KEY)
        sync.hold = None
        await worker.step()
    assert kube.status(*KEY)["observedGeneration"] == 2 and len(sync.requests) == 2


async def test_progress_is_written_while_running_and_cleared_at_the_end() -> None:
    kube, sync = kube_with(), FakeSync()
    sync.reports = [("Listing", 0), ("Indexing", 7)]
    sync.linger_s = 0.8
    async with worker_for(kube, sync) as worker:
        await worker.step()
    written = [patch["progress"] for _, patch in kube.patches if patch.get("progress")]
    assert written and written[0]["phase"] == "Indexing" and written[0]["items"] == 7 and written[0]["updated"]
    assert "progress" not in kube.status(*KEY)


async def test_a_sync_request_runs_now_and_is_recorded() -> None:
    kube, sync = kube_with(), FakeSync()
    async with worker_for(kube, sync) as worker:
        await worker.step()
        body = datasource_body(annotations={SYNC_REQUEST_ANNOTATION: "2026-11-27T07:00:00.1Z"})
        worker.update(body)
        assert worker.wake.is_set()
        assert await worker.step() == 0.0
    assert len(sync.requests) == 2 and kube.status(*KEY)["lastHandledSyncRequest"] == "2026-11-27T07:00:00.1Z"


async def test_dispatcher_runs_what_it_observes_and_forgets() -> None:
    kube, sync = kube_with(), FakeSync()
    dispatcher = Dispatcher(settings(), kube, sync)
    try:
        dispatcher.observe(kube.datasources[KEY])
        await asyncio.wait_for(sync.called.wait(), 5)
        deleting = datasource_body(name="gone")
        deleting["metadata"]["deletionTimestamp"] = "2026-11-27T07:00:00Z"
        dispatcher.observe(deleting)
        assert set(dispatcher.workers) == {KEY}
        worker = dispatcher.workers[KEY]
        dispatcher.connector_changed("other")
        assert not worker.wake.is_set()
        for _ in range(100):
            if kube.reasons()[-1:] == ["SyncSucceeded"]:
                break
            await asyncio.sleep(0.01)
        dispatcher.connector_changed("confluence")
        assert worker.wake.is_set() or worker.task is not None
        await dispatcher.forget(KEY)
        assert not dispatcher.workers and worker.task is not None and worker.task.done()
    finally:
        await dispatcher.shutdown()


async def test_an_unexpected_exception_in_a_run_is_an_internal_error_with_backoff() -> None:
    """A bug in a run (here a TypeError) becomes reason InternalError, its text stays out of status, and the next
    run waits for the backoff like any failed run."""
    kube, clock = kube_with(), Clock()
    calls: list[SyncRequest] = []

    async def broken(request: SyncRequest, settings: Settings, progress: Progress) -> SyncResult:
        calls.append(request)
        raise TypeError("'NoneType' object is not subscriptable: tok")

    dispatcher = Dispatcher(settings(), kube, broken, clock=clock)
    worker = Worker(dispatcher, KEY, kube.datasources[KEY])
    try:
        assert await worker.step() == 0.0
        ready = condition(kube, "Ready")
        assert ready and ready["reason"] == "InternalError" and "unexpected TypeError" in ready["message"]
        assert "NoneType" not in ready["message"] and "tok" not in kube.status(*KEY)["lastError"]
        delays = []
        for _ in range(3):
            delay = await worker.step()  # not due yet: the worker sleeps for the backoff
            assert delay is not None and delay > 0 and len(calls) == len(delays) + 1
            delays.append(delay)
            clock.advance(seconds=delay)
            assert await worker.step() == 0.0
        assert delays[0] < delays[1] < delays[2]  # 1 s, 2 s, 4 s
    finally:
        await worker.stop()
        await dispatcher.shutdown()
    assert kube.status(*KEY)["consecutiveFailures"] == 4


class FailingKube(FakeKube):
    """An API server that fails every Connector read (an outage, a bug in a handler)."""

    reads = 0

    async def get_connector(self, name: str) -> dict[str, Any] | None:
        self.reads += 1
        raise RuntimeError("the API server is gone")


async def test_a_worker_whose_steps_keep_failing_backs_off_instead_of_spinning() -> None:
    kube = FailingKube()
    kube.add_datasource(datasource_body())
    dispatcher = Dispatcher(settings(retry_delay_in_ms=100, retry_max_delay_seconds=4), kube, FakeSync())
    worker = Worker(dispatcher, KEY, kube.datasources[KEY])
    worker.start()
    await asyncio.sleep(1.0)
    await worker.stop()
    await dispatcher.shutdown()
    # 0.1 + 0.2 + 0.4 s of backoff fit in a second, a fixed retry delay of 0.1 s would give ten attempts.
    assert 2 <= kube.reads <= 5 and worker.errors == kube.reads
