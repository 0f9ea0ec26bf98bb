"""One run of one Datasource, the same wherever it is hosted: the operator's worker, a sync Job's pod, or
`coco-operator sync FILE [--state PATH]`.

    credentials (SecretResolver) -> SyncRequest (prior status) -> the sync, publishing progress into status
        -> finished status (outcome) -> one write (StatusWriter)

What differs between hosts comes in through small protocols: where secrets come from, where status goes, and how
the sync itself is run (injectable for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coco_operator import metrics
from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.confluence.text_workers import TextWorkers
from coco_operator.dispatcher.outcome import Event, finished_status
from coco_operator.dispatcher.secrets import SecretResolver
from coco_operator.dispatcher.writers import StatusWriter
from coco_operator.errors import ConfigurationError, SyncError, SyncTimeoutError
from coco_operator.reasons import Reason
from coco_operator.secret_values import redact
from coco_operator.settings import Settings
from coco_operator.sync import (
    Progress,
    SyncRequest,
    SyncResult,
    index_for,
    leave_previous_index,
    moved_from,
    prior_listing,
    prior_watermark,
    run_sync,
)
from coco_operator.tenancy import embedder_settings, index_problem

log = logging.getLogger(__name__)

SyncFn = Callable[[SyncRequest, Settings, Progress], Awaitable[SyncResult]]


def default_sync(
    request: SyncRequest, settings: Settings, progress: Progress, *, text_workers: TextWorkers | None = None
) -> Awaitable[SyncResult]:
    return run_sync(
        request,
        settings,
        progress=progress,
        on_response=metrics.observe_confluence_response,
        on_wait=metrics.THROTTLE_WAITS.inc,
        text_workers=text_workers,
    )


@dataclass(frozen=True)
class Target:
    """The Datasource a run is for."""

    key: str  # namespace/name
    spec: DatasourceSpec
    index: str
    generation: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, body: Mapping[str, Any], spec: DatasourceSpec, settings: Settings, *, key: str | None = None) -> Target:
        meta = body.get("metadata") or {}
        generation = meta.get("generation")
        return cls(
            key=key or f"{meta.get('namespace', 'default')}/{meta.get('name', 'datasource')}",
            spec=spec,
            index=index_for(spec, settings),
            generation=int(generation) if generation is not None else None,
            labels=dict(meta.get("labels") or {}),
        )


@dataclass(frozen=True)
class Finished:
    """A run this process ran, and the Event to post about it."""

    result: SyncResult
    event: Event


async def run_datasource(
    target: Target,
    *,
    secrets: SecretResolver,
    writer: StatusWriter,
    settings: Settings,
    sync: SyncFn,
    observe: Progress | None = None,
    timeout_s: float | None = None,
    request_token: str | None = None,
    run_id: str | None = None,
) -> Finished:
    """Run `target` once and write the outcome into its status. `observe` also sees every progress report."""
    result = await execute(
        target, secrets=secrets, writer=writer, settings=settings, sync=sync, observe=observe, timeout_s=timeout_s
    )
    return await finish(target, result, writer=writer, settings=settings, request_token=request_token, run_id=run_id)


async def execute(
    target: Target,
    *,
    secrets: SecretResolver,
    writer: StatusWriter,
    settings: Settings,
    sync: SyncFn,
    observe: Progress | None = None,
    timeout_s: float | None = None,
) -> SyncResult:
    """Resolve credentials and run the sync, progress going into status as it runs. Known failures come back in
    the result, never raised."""
    started = datetime.now(UTC)
    known: tuple[str, ...] = ()
    try:
        request, known = await build_request(target, secrets, writer, settings)
        async with publishing(writer, settings.progress_interval_seconds, observe) as report:
            result = await _within(sync(request, settings, report), timeout_s)
        if result.succeeded and request.previous_index and settings.manage_index_settings:
            await leave_previous_index(request.datasource_id, request.previous_index, settings)
        return _redacted(result, known)
    except SyncError as exc:
        return _redacted(SyncResult.failed(started, exc), known)
    except ValueError as exc:  # a value pydantic let through that a client refuses
        return _redacted(SyncResult.failed(started, ConfigurationError(str(exc))), known)
    except Exception as exc:  # a bug: a reason and the backoff, never a tight retry loop
        log.exception("run of %s failed unexpectedly", target.key)
        return SyncResult.failed(started, internal_error(target.key, exc))


def internal_error(key: str, exc: BaseException) -> SyncError:
    """An unexpected exception as a failure with a reason; its text stays in the operator's log (it may quote
    anything)."""
    return SyncError(
        f"the run of Datasource {key} failed with an unexpected {type(exc).__name__} in the operator; it is retried "
        "with backoff. This is a bug: the operator's log has the details",
        reason=Reason.INTERNAL_ERROR,
    )


def _redacted(result: SyncResult, secrets: tuple[str, ...]) -> SyncResult:
    """The error without any secret value the run knew (a server may echo a token into a message)."""
    if result.error is not None and secrets:
        result.error.message = redact(result.error.message, secrets)
    return result


async def build_request(
    target: Target, secrets: SecretResolver, writer: StatusWriter, settings: Settings
) -> tuple[SyncRequest, tuple[str, ...]]:
    """The request, and the secret values it carries. Refuses an index the namespace may not write into before any
    Secret is read."""
    problem = index_problem(target.key, target.index, settings)
    if problem is not None:
        raise problem
    embedders = None
    if settings.manage_index_settings:  # a sync Job writes documents only: the operator set up the index
        embedders = embedder_settings(target.key, target.index, target.spec.embedders, settings, os.environ)
    creds = await secrets.credentials(target.spec)
    prior = writer.current
    request = SyncRequest(
        datasource_id=target.key,
        spec=target.spec,
        token=creds.token,
        index=target.index,
        watermark=prior_watermark(prior, target.spec, target.index),
        listing=prior_listing(prior, target.spec, target.index),
        ca_pem=creds.ca_pem,
        labels=target.labels,
        enrichment_tokens=creds.webhook_tokens,
        oauth=creds.oauth,
        embedders=embedders,
        previous_index=moved_from(prior.index, target.key, target.index, settings),
    )
    return request, creds.secrets


async def _within(run: Awaitable[SyncResult], timeout_s: float | None) -> SyncResult:
    if timeout_s is None:
        return await run
    try:
        return await asyncio.wait_for(run, timeout=timeout_s)
    except TimeoutError as exc:
        raise SyncTimeoutError(
            f"the run took longer than {timeout_s:.0f}s and was cancelled; raise sync.timeout or the "
            "operator's max_running_timeout_in_seconds if the space is that large"
        ) from exc


async def finish(
    target: Target,
    result: SyncResult,
    *,
    writer: StatusWriter,
    settings: Settings,
    request_token: str | None = None,
    run_id: str | None = None,
) -> Finished:
    """Write what a run left (success or failure) into status; the Event to post about it."""
    new, event = finished_status(
        writer.current,
        key=target.key,
        spec=target.spec,
        result=result,
        generation=target.generation,
        index=target.index,
        request_token=request_token,
        settings=settings,
    )
    if run_id is not None:
        new.lastSyncRunId = run_id
    await writer.write(new)
    return Finished(result, event)


class ProgressPublisher:
    """Writes the latest progress into status every `interval_s` (not per item: the API server is shared)."""

    def __init__(self, writer: StatusWriter, interval_s: float, observe: Progress | None = None) -> None:
        self.writer = writer
        self.interval_s = interval_s
        self.observe = observe
        self.latest: tuple[str, int] | None = None
        self._stop = asyncio.Event()

    def __call__(self, phase: str, items: int) -> None:
        self.latest = (phase, items)
        if self.observe is not None:
            self.observe(phase, items)

    async def publish(self) -> None:
        """Until `stop`: a write that has started always completes, so it cannot land after the final status."""
        written: tuple[str, int] | None = None
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._stop.wait()
            current = self.latest
            if self._stop.is_set() or current is None or current == written:
                continue
            try:
                await self.writer.write(st.with_progress(self.writer.current, *current, datetime.now(UTC)))
            except Exception as exc:  # progress is best effort; the run and its final status go on
                log.warning("could not write progress into status: %s", exc)
            written = current

    def stop(self) -> None:
        self._stop.set()


@contextlib.asynccontextmanager
async def publishing(writer: StatusWriter, interval_s: float, observe: Progress | None) -> AsyncIterator[Progress]:
    publisher = ProgressPublisher(writer, interval_s, observe)
    task = asyncio.create_task(publisher.publish())
    try:
        yield publisher
    finally:
        publisher.stop()
        await asyncio.shield(task)
