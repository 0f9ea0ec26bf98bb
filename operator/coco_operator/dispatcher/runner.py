"""The in-process dispatcher: one worker task per Datasource, a global limit on concurrent runs.

kopf handlers only tell the dispatcher what they saw (`observe`, `forget`, `connector_changed`); the workers
decide, using the pure functions in `schedule` and `status`, run through `host.run_datasource` (the same path a
Job pod and the CLI take) and write status through one `ApiStatusWriter` per Datasource.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from coco_operator import logs, metrics
from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
from coco_operator.confluence import text_workers
from coco_operator.confluence.text_workers import TextWorkers
from coco_operator.dispatcher.host import Finished, SyncFn, Target, default_sync, finish, run_datasource
from coco_operator.dispatcher.jobkeys import ManagedSecrets, NamespaceKeys
from coco_operator.dispatcher.jobrun import JobKube, job_route, prepare_job, run_as_job
from coco_operator.dispatcher.outcome import Event, record_metrics, reported_event
from coco_operator.dispatcher.schedule import (
    Pause,
    connector_pause,
    connector_problem,
    next_run,
    retry_delay,
    run_timeout,
    spec_pause,
)
from coco_operator.dispatcher.secrets import ApiSecrets, SecretReader
from coco_operator.dispatcher.slots import FairSlots
from coco_operator.dispatcher.writers import ApiStatusWriter, StatusPatcher
from coco_operator.errors import SyncError
from coco_operator.reasons import PAUSED, ConditionType, Reason
from coco_operator.search.keys import KeyAdmin
from coco_operator.settings import Settings
from coco_operator.sync import SyncResult, prior_watermark
from coco_operator.times import to_second

log = logging.getLogger(__name__)

SYNC_REQUEST_ANNOTATION = "coco.rs/sync-requested-at"
TEXT_WORKERS_IDLE_S = 60.0  # end idle text conversion processes after this long

Key = tuple[str, str]  # (namespace, name)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Reported:
    """A run a sync Job ran and reported in status; the Event to post about it."""

    event: Event


@dataclass(frozen=True)
class Runnable:
    spec: DatasourceSpec
    connector: dict[str, Any] | None  # the Connector it names, as read from the API


class Kube(SecretReader, StatusPatcher, JobKube, ManagedSecrets, Protocol):
    """The Kubernetes API as the dispatcher uses it (`controller.kube.KubeApi`; fakes in tests)."""

    async def get_connector(self, name: str) -> dict[str, Any] | None: ...
    async def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


def datasource_id(key: Key) -> str:
    return f"{key[0]}/{key[1]}"


JobPrep = Callable[[Target, str | None], Awaitable[None]]  # target, index of the last successful run


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        kube: Kube,
        sync: SyncFn | None = None,
        *,
        clock: Clock = _now,
        job_prep: JobPrep | None = None,
    ) -> None:
        self.settings = settings
        self.job_prep: JobPrep = job_prep or self._prepare_job
        self.kube = kube
        self.clock = clock
        # One pool of text conversion processes for all runs: memory stays bounded however many run at once.
        self.text_workers = TextWorkers(
            settings.text_workers, idle_close_s=TEXT_WORKERS_IDLE_S, limits=text_workers.limits_from(settings)
        )
        self.sync: SyncFn = sync or functools.partial(default_sync, text_workers=self.text_workers)
        self.slots = FairSlots(settings.max_concurrent_runs)
        self.workers: dict[Key, Worker] = {}
        self._keys: NamespaceKeys | None = None

    @property
    def running(self) -> int:
        return self.slots.in_progress

    @property
    def keys(self) -> NamespaceKeys:
        """Job mode's per-namespace Meilisearch keys (built on first use: it needs the operator's key)."""
        if self._keys is None:
            admin = KeyAdmin(self.settings.meili_url, self.settings.meili_api_key)
            self._keys = NamespaceKeys(admin, self.kube, self.settings)
        return self._keys

    async def _prepare_job(self, target: Target, previous: str | None) -> None:
        await prepare_job(target, self.settings, self.keys, previous=previous)

    async def namespace_left(self, namespace: str) -> None:
        """The namespace has no Datasource any more: its Job key and Secret go (Job mode)."""
        if self.settings.run_mode != "Job" or any(ns == namespace for ns, _ in self.workers):
            return
        await self.keys.remove(namespace)

    def observe(self, body: dict[str, Any]) -> None:
        meta = body.get("metadata", {})
        key = (meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            return
        worker = self.workers.get(key)
        if worker is None:
            self.workers[key] = Worker(self, key, body)
            self.workers[key].start()
        else:
            worker.update(body)

    async def forget(self, key: Key) -> None:
        worker = self.workers.pop(key, None)
        if worker:
            await worker.stop()

    def connector_changed(self, name: str) -> None:
        for worker in self.workers.values():
            if worker.connector_id == name:
                worker.wake.set()

    async def shutdown(self) -> None:
        for key in list(self.workers):
            await self.forget(key)
        await self.text_workers.close()

    @contextlib.asynccontextmanager
    async def slot(self, namespace: str, waiting: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """A run slot, shared fairly between namespaces; `waiting()` runs first when the run has to wait (to say so
        in status)."""
        if self.slots.full() or self.slots.waiting:
            metrics.QUEUE_DEPTH.inc()
            try:
                await waiting()
                await self.slots.acquire(namespace)
            finally:
                metrics.QUEUE_DEPTH.dec()
        else:
            await self.slots.acquire(namespace)
        metrics.RUNS_IN_PROGRESS.inc()
        try:
            yield
        finally:
            metrics.RUNS_IN_PROGRESS.dec()
            self.slots.release(namespace)


class Worker:
    """Schedules and runs one Datasource. Owns that Datasource's status: only it writes there."""

    def __init__(self, dispatcher: Dispatcher, key: Key, body: dict[str, Any]) -> None:
        self.d = dispatcher
        self.key = key
        self.body = body
        status = st.parse(DatasourceStatus, body.get("status"), what=f"Datasource {datasource_id(key)}")
        self.writer = ApiStatusWriter(dispatcher.kube, key[0], key[1], status)
        self.wake = asyncio.Event()
        self.run_task: asyncio.Task[Finished | Reported] | None = None
        self.task: asyncio.Task[None] | None = None
        self.errors = 0  # steps in a row that ended in an unexpected exception: they back off like failed runs

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"datasource {datasource_id(self.key)}")

    @property
    def status(self) -> DatasourceStatus:
        return self.writer.current

    @property
    def generation(self) -> int | None:
        gen = self.body.get("metadata", {}).get("generation")
        return int(gen) if gen is not None else None

    @property
    def connector_id(self) -> str | None:
        return (self.body.get("spec", {}).get("connector") or {}).get("id")

    @property
    def requested_token(self) -> str | None:
        return (self.body.get("metadata", {}).get("annotations") or {}).get(SYNC_REQUEST_ANNOTATION)

    def update(self, body: dict[str, Any]) -> None:
        old_gen, old_token = self.generation, self.requested_token
        self.body = body
        if self.generation != old_gen:
            # A spec change cancels the run in progress: it would write results for a spec that is gone.
            if self.run_task and not self.run_task.done():
                log.info("spec of %s changed: cancelling its run", datasource_id(self.key))
                self.run_task.cancel()
            self.wake.set()
        elif self.requested_token != old_token:
            self.wake.set()

    async def stop(self) -> None:
        if self.run_task:
            self.run_task.cancel()
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _loop(self) -> None:
        logs.CURRENT_OBJECT.set(logs.datasource_ref(*self.key))
        while True:
            self.wake.clear()
            try:
                delay = await self.step()
                self.errors = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or an API error must not kill the worker for good, nor spin it
                self.errors += 1
                settings = self.d.settings
                backoff = retry_delay(self.errors, settings.retry_delay_seconds, settings.retry_max_delay_seconds)
                delay = backoff.total_seconds()
                log.exception("worker for %s failed; retrying in %.0fs", datasource_id(self.key), delay)
            # asyncio.timeout, not wait_for: wait_for in 3.11 can swallow a cancel that arrives as `wake` is set,
            # and `stop()` would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.wake.wait()

    async def step(self) -> float | None:
        """Do what is due now; return how long to sleep (None: until woken)."""
        now = self.d.clock()
        checked = await self._check()
        if isinstance(checked, tuple):
            reason, message = checked
            await self.writer.write(
                st.paused(self.status, generation=self.generation, now=now, reason=reason, message=message)
            )
            return None
        due = self._due(checked.spec)
        if due is not None and due > now:
            await self._wait_for(due, now)
            return (due - now).total_seconds()
        await self._run(checked.spec, checked.connector)
        return 0.0

    async def _check(self) -> Runnable | Pause:
        """The spec and its Connector, or why the Datasource must not run at all."""
        try:
            spec = DatasourceSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as exc:
            return (Reason.INVALID_SPEC, str(exc)[:1000])
        pause = spec_pause(spec)
        if pause is not None:
            return pause
        connector = await self.d.kube.get_connector(spec.connector.id)
        return connector_pause(spec, connector) or Runnable(spec, connector)

    def _due(self, spec: DatasourceSpec) -> datetime | None:
        """None: run now."""
        status = self.status
        if status.observedGeneration != self.generation:
            return None
        token = self.requested_token
        if token and token != status.lastHandledSyncRequest:
            return None
        return next_run(
            datasource_id(self.key),
            spec,
            self.d.settings,
            last_finished=status.lastSyncTime,
            failures=status.consecutiveFailures or 0,
        )

    async def _wait_for(self, due: datetime, now: datetime) -> None:
        """Not due yet: say when it is, and stop saying it is paused if it was."""
        if self.status.nextSyncTime != to_second(due):
            await self.writer.write(st.scheduled(self.status, due))
        ready = st.get_condition(self.status, ConditionType.READY)
        if ready and ready.reason in PAUSED:
            await self.writer.write(st.resumed(self.status, generation=self.generation, now=now))

    async def _run(self, spec: DatasourceSpec, connector: dict[str, Any] | None) -> None:
        target = Target.of(self.body, spec, self.d.settings, key=datasource_id(self.key))
        token = self.requested_token
        async with self.d.slot(self.key[0], self._queued):
            await self._started(target)
            self.run_task = asyncio.create_task(self._execute(target, connector, token))
            try:
                await asyncio.wait({self.run_task})
            finally:
                task, self.run_task = self.run_task, None
        if task.cancelled():
            # Spec changed or the Datasource went away: the next loop pass starts over with the new spec.
            await self.writer.write(st.cancelled(self.status))
            return
        outcome = task.result()
        if isinstance(outcome, Finished):
            record_metrics(self.key, outcome.result, outcome.event.reason)
        await self.d.kube.post_event(self.body, *outcome.event)

    async def _queued(self) -> None:
        settings = self.d.settings
        await self.writer.write(
            st.queued(
                self.status,
                generation=self.generation,
                now=self.d.clock(),
                running=self.d.running,
                limit=settings.max_concurrent_runs,
            )
        )

    async def _started(self, target: Target) -> None:
        spaces = target.spec.connector.config.all_spaces()
        kind = "incremental" if prior_watermark(self.status, target.spec, target.index) else "full"
        await self.writer.write(
            st.run_started(
                self.status, generation=target.generation, now=self.d.clock(), message=f"Syncing space {spaces[0]}"
            )
        )
        message = f"Started a {kind} sync of space {', '.join(spaces)} into index {target.index}"
        await self.d.kube.post_event(self.body, "Normal", Reason.SYNC_STARTED, message)

    async def _execute(
        self, target: Target, connector: dict[str, Any] | None, token: str | None
    ) -> Finished | Reported:
        settings = self.d.settings
        problem = connector_problem(target.spec, connector, f"Datasource {target.key}")
        if problem is not None:
            failed = SyncResult.failed(self.d.clock(), problem)
            return await finish(target, failed, writer=self.writer, settings=settings, request_token=token)
        secrets = ApiSecrets(self.d.kube, self.key[0], owner=f"Datasource {target.key}")
        if settings.run_mode == "Job":
            return await self._execute_job(target, secrets, token)
        return await self._execute_here(target, secrets, token)

    async def _execute_here(self, target: Target, secrets: ApiSecrets, token: str | None) -> Finished:
        return await run_datasource(
            target,
            secrets=secrets,
            writer=self.writer,
            settings=self.d.settings,
            sync=self.d.sync,
            timeout_s=run_timeout(target.spec, self.d.settings),
            request_token=token,
        )

    async def _execute_job(self, target: Target, secrets: ApiSecrets, token: str | None) -> Finished | Reported:
        """The run as a Job; the Job writes the outcome into status, which the worker then takes as its own. A run
        into an index the namespace does not own runs here instead, or is refused (`job_shared_index`)."""
        settings = self.d.settings
        started = self.d.clock()
        route = job_route(target, settings)
        if route == "InProcess":
            return await self._execute_here(target, secrets, token)
        try:
            if isinstance(route, SyncError):
                raise route
            await secrets.credentials(target.spec)  # a missing Secret fails here, not in a pod that cannot start
            await self.d.job_prep(target, self.status.index)
            reported = await run_as_job(
                self.d.kube, self.body, target.spec, settings=settings, timeout_s=run_timeout(target.spec, settings)
            )
        except SyncError as exc:
            failed = SyncResult.failed(started, exc)
            return await finish(target, failed, writer=self.writer, settings=settings, request_token=token)
        self.writer.adopt(reported)
        if token and reported.lastHandledSyncRequest != token:
            handled = reported.model_copy(deep=True)
            handled.lastHandledSyncRequest = token
            await self.writer.write(handled)
        return Reported(reported_event(reported))
