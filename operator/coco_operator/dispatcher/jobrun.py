"""Job mode, the operator's side: launch a run as a sync Job and wait until the pod reports in status.

The pod (`coco-operator sync --datasource NS/NAME --run-id ID`) writes the run's outcome into the Datasource's
status itself, with `lastSyncRunId` set to the run id this side waits for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any, Literal, Protocol

from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
from coco_operator.dispatcher import jobs
from coco_operator.dispatcher.host import Target
from coco_operator.dispatcher.jobkeys import NamespaceKeys
from coco_operator.errors import SyncError, SyncTimeoutError
from coco_operator.reasons import Reason
from coco_operator.search.sink import MeiliSink
from coco_operator.settings import Settings
from coco_operator.sync import leave_previous_index, moved_from
from coco_operator.tenancy import embedder_settings, index_access, namespace_of

log = logging.getLogger(__name__)

JOB_GRACE_S = 30.0  # past activeDeadlineSeconds, for the Job controller to mark the Job failed


class JobKube(Protocol):
    async def get_datasource(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_job(self, manifest: dict[str, Any]) -> None: ...
    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def delete_job(self, namespace: str, name: str) -> None: ...


async def run_as_job(
    kube: JobKube,
    body: dict[str, Any],
    spec: DatasourceSpec,
    *,
    settings: Settings,
    timeout_s: float,
    grace_s: float = JOB_GRACE_S,
    run_id: str | None = None,
) -> DatasourceStatus:
    """The status the Job reported. Raises SyncError when the Job fails, vanishes or runs out of time; a cancelled
    wait deletes the Job."""
    run_id = run_id or uuid.uuid4().hex[:8]
    manifest = jobs.sync_job(body, spec, run_id=run_id, timeout_s=max(1, int(timeout_s)), settings=settings)
    meta = body["metadata"]
    ns, name, job = meta["namespace"], meta["name"], manifest["metadata"]["name"]
    await kube.create_job(manifest)
    log.info("started sync Job %s/%s for %s/%s", ns, job, ns, name)
    deadline = time.monotonic() + timeout_s + grace_s
    try:
        while True:
            await asyncio.sleep(settings.job_poll_seconds)
            current = await kube.get_datasource(ns, name)
            status = st.parse(DatasourceStatus, (current or {}).get("status"), what=f"Datasource {ns}/{name}")
            if status.lastSyncRunId == run_id:
                return status
            await _check(kube, ns, job, timeout_s, expired=time.monotonic() > deadline)
    except asyncio.CancelledError:
        await asyncio.shield(kube.delete_job(ns, job))
        raise


async def prepare_job(target: Target, settings: Settings, keys: NamespaceKeys, *, previous: str | None) -> None:
    """What a Job's key may not do, done by the operator first: the index exists with its settings and embedder
    profiles, the Datasource's documents left the index it moved away from, and the namespace has its own key."""
    embedders = embedder_settings(target.key, target.index, target.spec.embedders, settings, os.environ)
    sink = MeiliSink(
        settings.meili_url, settings.meili_api_key, target.index, task_timeout_s=settings.meili_task_timeout_seconds
    )
    await sink.prepare(embedders=embedders)
    old = moved_from(previous, target.key, target.index, settings)
    if old is not None:
        await leave_previous_index(target.key, old, settings)
    await keys.ensure(namespace_of(target.key))


def job_route(target: Target, settings: Settings) -> Literal["Job", "InProcess"] | SyncError:
    """Where a Job-mode run goes: a Job for an index the namespace owns (its own key reaches it); for a shared or
    granted one the operator's process, or a refusal (`job_shared_index`). An index the namespace may not use at
    all goes in-process too, where the run path refuses it with its reason."""
    namespace = namespace_of(target.key)
    access = index_access(namespace, target.index, settings)
    if access == "owned":
        return "Job"
    if access is None or settings.job_shared_index == "InProcess":
        return "InProcess"
    return needs_own_index(target)


def needs_own_index(target: Target) -> SyncError:
    namespace = namespace_of(target.key)
    return SyncError(
        f"Datasource {target.key} runs as a sync Job, whose Meilisearch key reaches only the indexes namespace "
        f"{namespace} owns ({namespace}, {namespace}_<suffix>), not {target.index!r}; set spec.index to one of them, "
        "or ask the operator's administrator to run such Datasources in the operator (job.sharedIndex: InProcess)",
        reason=Reason.JOB_MODE_NEEDS_OWN_INDEX,
        retryable=False,
    )


async def _check(kube: JobKube, ns: str, job: str, timeout_s: float, *, expired: bool) -> None:
    """Raise if the Job can no longer report: gone, failed, or past its time (then it is stopped)."""
    found = await kube.get_job(ns, job)
    if found is None:
        raise SyncError(
            f"sync Job {ns}/{job} disappeared before reporting a result; it was deleted or garbage "
            "collected. The run will be retried.",
            reason=Reason.JOB_VANISHED,
        )
    failure = jobs.job_failure(found)
    if failure:
        raise SyncError(
            f"sync Job {ns}/{job} failed ({failure}); see kubectl -n {ns} logs job/{job}", reason=Reason.JOB_FAILED
        )
    if expired:
        await kube.delete_job(ns, job)
        raise SyncTimeoutError(
            f"sync Job {ns}/{job} did not finish within {timeout_s:.0f}s and was stopped; raise "
            "sync.timeout or the operator's max_running_timeout_in_seconds"
        )
