"""The in-process dispatcher: one worker task per Datasource, a global limit on concurrent runs.

kopf handlers only tell the dispatcher what they saw (`observe`, `forget`, `connector_changed`); the
workers decide, using the pure functions in `schedule` and `status`, and write status through `KubeApi`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from coco_operator import logs, metrics
from coco_operator import status as st
from coco_operator.api.connector import KNOWN_PROCESSORS
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.api.enrichment import embedder_key_refs, webhook_token_refs
from coco_operator.confluence.text_workers import TextWorkers
from coco_operator.dispatcher import jobs
from coco_operator.dispatcher.outcome import finished_status
from coco_operator.dispatcher.schedule import Pause, connector_pause, next_run, parse_duration, spec_pause
from coco_operator.errors import ConfigurationError, ConnectorError, SyncError, SyncTimeoutError
from coco_operator.settings import Settings
from coco_operator.sync import (
    Progress,
    SyncRequest,
    SyncResult,
    index_for,
    prior_listing,
    prior_watermark,
    run_sync,
)

log = logging.getLogger(__name__)

SYNC_REQUEST_ANNOTATION = "coco.rs/sync-requested-at"

Key = tuple[str, str]  # (namespace, name)


class Kube(Protocol):
    async def read_secret_value(self, namespace: str, name: str, key: str, *, owner: str) -> str: ...
    async def read_configmap_value(self, namespace: str, name: str, key: str, *, owner: str) -> str: ...
    async def get_datasource(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_job(self, manifest: dict[str, Any]) -> None: ...
    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def delete_job(self, namespace: str, name: str) -> None: ...
    async def get_connector(self, name: str) -> dict[str, Any] | None: ...
    async def patch_datasource_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None: ...


SyncFn = Callable[[SyncRequest, Settings, Progress], Awaitable[SyncResult]]
TEXT_WORKERS_IDLE_S = 60.0  # end idle text conversion processes after this long


def _default_sync(
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


def _now() -> datetime:
    return datetime.now(UTC)


def datasource_id(key: Key) -> str:
    return f"{key[0]}/{key[1]}"


class Dispatcher:
    def __init__(self, settings: Settings, kube: Kube, sync: SyncFn | None = None) -> None:
        self.settings = settings
        self.kube = kube
        # One pool of text conversion processes for all runs: memory stays bounded however many run at once.
        self.text_workers = TextWorkers(settings.text_workers, idle_close_s=TEXT_WORKERS_IDLE_S)
        self._sync: SyncFn = sync or functools.partial(_default_sync, text_workers=self.text_workers)
        self.slots = asyncio.Semaphore(settings.max_concurrent_runs)
        self.running = 0
        self.workers: dict[Key, Worker] = {}

    def observe(self, body: dict[str, Any]) -> None:
        meta = body.get("metadata", {})
        key = (meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            return
        worker = self.workers.get(key)
        if worker is None:
            self.workers[key] = Worker(self, key, body)
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


class Worker:
    """Schedules and runs one Datasource. Owns that Datasource's status: only it writes there."""

    def __init__(self, dispatcher: Dispatcher, key: Key, body: dict[str, Any]) -> None:
        self.d = dispatcher
        self.key = key
        self.body = body
        self.status: dict[str, Any] = dict(body.get("status") or {})
        self.wake = asyncio.Event()
        self.run_task: asyncio.Task[SyncResult] | None = None
        self._progress: tuple[str, int] | None = None
        self.task = asyncio.create_task(self._loop(), name=f"datasource {datasource_id(key)}")

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
        self.task.cancel()
        if self.run_task:
            self.run_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _write(self, new: dict[str, Any]) -> None:
        patch = st.merge_patch(self.status, new)
        self.status = new
        if patch is not None:
            await self.d.kube.patch_datasource_status(self.key[0], self.key[1], patch)

    async def _sleep(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)

    async def _loop(self) -> None:
        logs.CURRENT_OBJECT.set(logs.datasource_ref(*self.key))
        while True:
            self.wake.clear()
            try:
                delay = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or an API error must not kill the worker for good
                log.exception("worker for %s failed; retrying", datasource_id(self.key))
                delay = self.d.settings.retry_delay_seconds
            await self._sleep(delay)

    def _due(self, spec: DatasourceSpec) -> datetime | None:
        """None: run now."""
        if self.status.get("observedGeneration") != self.generation:
            return None
        token = self.requested_token
        if token and token != self.status.get("lastHandledSyncRequest"):
            return None
        return next_run(
            datasource_id(self.key),
            spec,
            self.d.settings,
            last_finished=st.parse_time(self.status.get("lastSyncTime")),
            failures=int(self.status.get("consecutiveFailures") or 0),
        )

    async def _step(self) -> float | None:
        """Do what is due now; return how long to sleep (None: until woken)."""
        now = _now()
        gen = self.generation
        connector: dict[str, Any] | None = None
        try:
            spec = DatasourceSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as exc:
            pause: Pause | None = ("InvalidSpec", str(exc)[:1000])
        else:
            pause = spec_pause(spec)
            if pause is None:
                connector = await self.d.kube.get_connector(spec.connector.id)
                pause = connector_pause(spec, connector)
        if pause is not None:
            await self._write(st.paused(self.status, generation=gen, now=now, reason=pause[0], message=pause[1]))
            return None
        due = self._due(spec)
        if due is not None and due > now:
            if self.status.get("nextSyncTime") != st.iso(due):
                new = dict(self.status)
                new["nextSyncTime"] = st.iso(due)
                await self._write(new)
            # Paused -> resumed without a run due: Ready must stop saying "Suspended".
            ready = st.get_condition(self.status, st.READY)
            if ready and ready["reason"] in ("Suspended", "Disabled", "ConnectorDisabled", "InvalidSpec"):
                await self._write(self._resumed(now))
            return (due - now).total_seconds()
        await self._run(spec, connector)
        return 0.0

    def _resumed(self, now: datetime) -> dict[str, Any]:
        last = self.status.get("lastSyncResult")
        ready = (
            ("True", "Succeeded", "Resumed; the last sync succeeded")
            if last == "Succeeded"
            else ("Unknown", "Resumed", "Resumed; waiting for the next sync")
        )
        new = dict(self.status)
        new["conditions"] = st.set_condition(
            list(self.status.get("conditions") or []), st.READY, *ready, now, self.generation
        )
        return new

    async def _run(self, spec: DatasourceSpec, connector: dict[str, Any] | None) -> None:
        gen = self.generation
        token_handled = self.requested_token
        index = index_for(spec, self.d.settings)
        if self.d.slots.locked():
            metrics.QUEUE_DEPTH.inc()
            await self._write(
                st.queued(
                    self.status,
                    generation=gen,
                    now=_now(),
                    running=self.d.running,
                    limit=self.d.settings.max_concurrent_runs,
                )
            )
            try:
                await self.d.slots.acquire()
            finally:
                metrics.QUEUE_DEPTH.dec()
        else:
            await self.d.slots.acquire()
        self.d.running += 1
        metrics.RUNS_IN_PROGRESS.inc()
        try:
            started = _now()
            kind = "incremental" if prior_watermark(self.status, spec, index) else "full"
            await self._write(
                st.run_started(
                    self.status, generation=gen, now=started, message=f"Syncing space {spec.connector.config.space}"
                )
            )
            await self.d.kube.post_event(
                self.body,
                "Normal",
                "SyncStarted",
                f"Started a {kind} sync of space {', '.join(spec.connector.config.all_spaces())} into index {index}",
            )
            self._progress = None
            self.run_task = asyncio.create_task(self._execute(spec, connector, index))
            reporter = asyncio.create_task(self._report_progress())
            try:
                await asyncio.wait({self.run_task})
            finally:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            task, self.run_task = self.run_task, None
        finally:
            self.d.running -= 1
            metrics.RUNS_IN_PROGRESS.dec()
            self.d.slots.release()
        if task.cancelled():
            # Spec changed or the Datasource went away: the next loop pass starts over with the new spec.
            new = dict(self.status)
            new["conditions"] = st.drop_condition(list(new.get("conditions") or []), st.RECONCILING)
            new.pop("progress", None)
            await self._write(new)
            return
        result = task.result()
        await self._finish(spec, result, gen, index, token_handled)

    def _on_progress(self, phase: str, items: int) -> None:
        self._progress = (phase, items)

    async def _report_progress(self) -> None:
        """Write progress into status at a modest rate (not per item: the API server is shared)."""
        written: tuple[str, int] | None = None
        while True:
            await asyncio.sleep(self.d.settings.progress_interval_seconds)
            current = self._progress
            if current is not None and current != written:
                await self._write(st.with_progress(self.status, current[0], current[1], _now()))
                written = current

    async def _execute(self, spec: DatasourceSpec, connector: dict[str, Any] | None, index: str) -> SyncResult:
        result = SyncResult(started=_now())
        owner = f"Datasource {datasource_id(self.key)}"
        timeout = (
            parse_duration(spec.sync.timeout).total_seconds()
            if spec.sync.timeout
            else float(self.d.settings.max_running_timeout_in_seconds)
        )
        try:
            if connector is None:
                raise ConnectorError(
                    f"Connector {spec.connector.id!r} does not exist; create it (the chart ships 'confluence') "
                    f"or fix spec.connector.id of {owner}"
                )
            processor = (connector.get("spec", {}).get("processor") or {}).get("name")
            if processor not in KNOWN_PROCESSORS:
                raise ConnectorError(
                    f"Connector {spec.connector.id!r} uses processor {processor!r}, which this operator does not "
                    f"run (known: {', '.join(sorted(KNOWN_PROCESSORS))})",
                    reason="ConnectorNotReady",
                )
            config = spec.connector.config
            ref = config.tokenSecretRef
            token = await self.d.kube.read_secret_value(self.key[0], ref.name, ref.key, owner=owner)
            ca_pem = None
            if config.caBundleSecretRef:
                ca = config.caBundleSecretRef
                ca_pem = await self.d.kube.read_secret_value(self.key[0], ca.name, ca.key, owner=owner)
            if config.caBundleConfigMapRef:
                cm = config.caBundleConfigMapRef
                more = await self.d.kube.read_configmap_value(self.key[0], cm.name, cm.key, owner=owner)
                ca_pem = f"{ca_pem}\n{more}" if ca_pem else more
            if self.d.settings.run_mode == "Job":
                return await self._execute_job(spec, int(timeout))
            ns = self.key[0]
            hook_tokens = {
                i: await self.d.kube.read_secret_value(ns, r.name, r.key, owner=owner)
                for i, r in webhook_token_refs(spec.enrichment).items()
            }
            embedder_keys = {
                name: await self.d.kube.read_secret_value(ns, r.name, r.key, owner=owner)
                for name, r in embedder_key_refs(spec.embedders).items()
            }
            request = SyncRequest(
                datasource_id=datasource_id(self.key),
                spec=spec,
                token=token,
                index=index,
                watermark=prior_watermark(self.status, spec, index),
                listing=prior_listing(self.status, spec, index),
                ca_pem=ca_pem,
                labels=dict(self.body.get("metadata", {}).get("labels") or {}),
                enrichment_tokens=hook_tokens,
                embedder_keys=embedder_keys,
            )
            try:
                return await asyncio.wait_for(
                    self.d._sync(request, self.d.settings, self._on_progress), timeout=timeout
                )
            except TimeoutError as exc:
                raise SyncTimeoutError(
                    f"the run took longer than {timeout:.0f}s and was cancelled; raise sync.timeout or the "
                    "operator's max_running_timeout_in_seconds if the space is that large"
                ) from exc
        except SyncError as exc:
            result.error = exc
        except ValueError as exc:
            result.error = ConfigurationError(str(exc))
        result.finished = _now()
        return result

    async def _execute_job(self, spec: DatasourceSpec, timeout_s: int) -> SyncResult:
        """Launch the run as a Job and wait until it reports in status, fails, vanishes or runs out of time."""
        result = SyncResult(started=_now())
        run_id = uuid.uuid4().hex[:8]
        manifest = jobs.sync_job(self.body, spec, run_id=run_id, timeout_s=timeout_s, settings=self.d.settings)
        ns, job = self.key[0], manifest["metadata"]["name"]
        await self.d.kube.create_job(manifest)
        log.info("started sync Job %s/%s for %s", ns, job, datasource_id(self.key))
        deadline = time.monotonic() + timeout_s + 30
        try:
            while True:
                await asyncio.sleep(self.d.settings.job_poll_seconds)
                current = await self.d.kube.get_datasource(*self.key)
                if current and (current.get("status") or {}).get("lastSyncRunId") == run_id:
                    result.reported_by_job = True
                    result.finished = _now()
                    return result
                found = await self.d.kube.get_job(ns, job)
                if found is None:
                    raise SyncError(
                        f"sync Job {ns}/{job} disappeared before reporting a result; it was deleted or garbage "
                        "collected. The run will be retried.",
                        reason="JobVanished",
                    )
                failure = jobs.job_failure(found)
                if failure:
                    raise SyncError(
                        f"sync Job {ns}/{job} failed ({failure}); see kubectl -n {ns} logs job/{job}",
                        reason="JobFailed",
                    )
                if time.monotonic() > deadline:
                    await self.d.kube.delete_job(ns, job)
                    raise SyncTimeoutError(
                        f"sync Job {ns}/{job} did not finish within {timeout_s}s and was stopped; raise "
                        "sync.timeout or the operator's max_running_timeout_in_seconds"
                    )
        except asyncio.CancelledError:
            await asyncio.shield(self.d.kube.delete_job(ns, job))
            raise
        except SyncError as exc:
            result.error = exc
            result.finished = _now()
            return result

    async def _finish(
        self, spec: DatasourceSpec, result: SyncResult, gen: int | None, index: str, token: str | None
    ) -> None:
        if result.reported_by_job:
            # The Job wrote the outcome; take it as ours and tell the cluster.
            current = await self.d.kube.get_datasource(*self.key)
            if current is not None:
                self.status = dict(current.get("status") or {})
                ready = st.get_condition(self.status, st.READY) or {}
                ok = ready.get("status") == "True"
                kind, why = ("Normal", "SyncSucceeded") if ok else ("Warning", str(ready.get("reason", "SyncFailed")))
                await self.d.kube.post_event(self.body, kind, why, str(ready.get("message", "")))
                if token and self.status.get("lastHandledSyncRequest") != token:
                    new = dict(self.status)
                    new["lastHandledSyncRequest"] = token
                    await self._write(new)
            return
        new, event = finished_status(
            self.status,
            key=datasource_id(self.key),
            spec=spec,
            result=result,
            generation=gen,
            index=index,
            request_token=token,
            settings=self.d.settings,
        )
        record_metrics(self.key, result, event)
        await self._write(new)
        await self.d.kube.post_event(self.body, *event)


def record_metrics(key: Key, result: SyncResult, event: tuple[str, str, str]) -> None:
    ns, name = key
    outcome = "Succeeded" if result.succeeded else "Failed"
    metrics.RUNS.labels(ns, name, outcome, "Succeeded" if result.succeeded else event[1]).inc()
    metrics.RUN_DURATION.labels(ns, name).observe(result.duration_s)
    if result.succeeded:
        for doc_type in ("pages", "blogposts", "attachments"):
            metrics.DOCUMENTS_INDEXED.labels(ns, name, doc_type).inc(getattr(result.counts, doc_type))
        metrics.DOCUMENTS_DELETED.labels(ns, name).inc(result.counts.deleted)
