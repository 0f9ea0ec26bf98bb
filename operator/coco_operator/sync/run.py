"""One sync run: Confluence source -> documents -> Meilisearch sink, returning what happened.

The run is a fixed list of phases over one run state (`state.Run`), then one summary:

    plan         ask Confluence and the index what there is; full or incremental, list every id or not, what to
                 fetch (`plan.py` decides, `survey.py` asks)
    index        pages and blog posts the plan lined up -> text -> documents -> enrichment -> index
    comments     footer and inline comments of the indexed pages and blog posts (enable_comments)
    attachments  the attachments in scope, downloaded unless unchanged, their text extracted
    permissions  documents the run did not rewrite get the readers Confluence shows now (`permissions.py`)
    prune        once everything is written, delete what is gone
    result       count the index and sum up (`result.py`)

A failing phase ends the run; its error comes back in `result.error`. A new phase is one more entry in `PHASES`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from coco_operator.confluence.client import ConfluenceClient, RequestHook
from coco_operator.confluence.source import ConfluenceSource
from coco_operator.confluence.text_workers import TextWorkers
from coco_operator.confluence.text_workers import limits_from as text_limits
from coco_operator.egress import confluence_policy
from coco_operator.errors import ConfigurationError, SyncError
from coco_operator.reasons import Reason
from coco_operator.search.sink import MeiliSink
from coco_operator.settings import Settings
from coco_operator.sync.attachments import index_attachments
from coco_operator.sync.comments import index_comments, stop_listing
from coco_operator.sync.endpoint import credentials, endpoint_problem, site_and_gateway
from coco_operator.sync.index import index_content
from coco_operator.sync.permissions import reconcile
from coco_operator.sync.prune import prune_index
from coco_operator.sync.request import Progress, SyncRequest
from coco_operator.sync.result import SyncResult, summarise, with_partial
from coco_operator.sync.state import Run, Sink
from coco_operator.sync.survey import plan_run

log = logging.getLogger(__name__)

Phase = Callable[[Run], Awaitable[None]]


async def reconcile_permissions(run: Run) -> None:
    await reconcile(run.access, run.sink.update_fields)


PHASES: tuple[tuple[str, Phase], ...] = (
    ("plan", plan_run),
    ("index", index_content),
    ("comments", index_comments),
    ("attachments", index_attachments),
    ("permissions", reconcile_permissions),
    ("prune", prune_index),
)


async def run_sync(
    request: SyncRequest,
    settings: Settings,
    *,
    progress: Progress | None = None,
    on_response: RequestHook | None = None,
    on_wait: Callable[[float], None] | None = None,
    text_workers: TextWorkers | None = None,
    sink: Sink | None = None,
) -> SyncResult:
    """Run one sync. Raises nothing for known failures: they come back in `result.error`.

    `text_workers` is a pool shared between runs (the operator's); without one the run starts and ends its own.
    `sink` replaces the Meilisearch sink (benchmarks that measure the source side alone).
    """
    started = datetime.now(UTC)
    try:
        client = connect(request, settings, on_response=on_response, on_wait=on_wait)
    except SyncError as exc:  # e.g. an endpoint the operator may not reach, a CA bundle that is not PEM
        return SyncResult.failed(started, exc)
    run = new_run(request, settings, client, sink=sink, text_workers=text_workers, progress=progress, started=started)
    t0 = time.monotonic()
    try:
        async with client:
            result = await _run_phases(run, own_workers=text_workers is None)
    except SyncError as exc:
        result = with_partial(SyncResult.failed(started, exc), run)
    result.requests = client.requests
    _log_summary(request, result, time.monotonic() - t0)
    return result


def connect(
    request: SyncRequest,
    settings: Settings,
    *,
    on_response: RequestHook | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> ConfluenceClient:
    """The run's Confluence client: the site (or the API gateway), the config's credentials, the egress policy."""
    config = request.spec.connector.config
    site, gateway = site_and_gateway(config, settings)
    problem = endpoint_problem(config.site_url if gateway and config.site_url else config.endpoint, settings)
    if problem:
        raise ConfigurationError(problem, reason=Reason.ENDPOINT_NOT_ALLOWED)
    return ConfluenceClient(
        config.endpoint,
        auth=credentials(request, settings),
        site=site,
        gateway=gateway,
        timeout_s=settings.http_timeout_seconds,
        concurrency=settings.confluence_concurrency,
        max_retry_s=settings.confluence_max_retry_seconds,
        on_response=on_response,
        on_wait=on_wait,
        ca_pem=request.ca_pem,
        egress=confluence_policy(settings),
        deadline_s=settings.http_request_deadline_seconds,
        max_response_bytes=settings.confluence_max_response_bytes,
    )


def new_run(
    request: SyncRequest,
    settings: Settings,
    client: ConfluenceClient,
    *,
    sink: Sink | None = None,
    text_workers: TextWorkers | None = None,
    progress: Progress | None = None,
    started: datetime | None = None,
) -> Run:
    """The state a run's phases share, with its source, its sink (Meilisearch unless given) and text workers."""
    config = request.spec.connector.config
    return Run(
        request,
        settings,
        started=started or datetime.now(UTC),
        client=client,
        source=ConfluenceSource(
            client,
            config.all_spaces(),
            cql_filter=config.cql,
            concurrency=settings.confluence_concurrency,
            exclude_labels=config.exclude_labels,
        ),
        sink=sink or _meili_sink(request, settings),
        workers=text_workers or TextWorkers(max(1, settings.text_workers), limits=text_limits(settings)),
        report=progress or _quiet,
    )


async def _run_phases(run: Run, *, own_workers: bool) -> SyncResult:
    try:
        for name, phase in PHASES:
            t0 = time.monotonic()
            await phase(run)
            log.debug("sync of %s: %s phase took %.3fs", run.datasource_id, name, time.monotonic() - t0)
        return await summarise(run)
    finally:
        if run.full is not None:
            await run.full.aclose()
        await stop_listing(run)
        if own_workers:
            await run.workers.close()


def _meili_sink(request: SyncRequest, settings: Settings) -> Sink:
    return MeiliSink(
        settings.meili_url,
        settings.meili_api_key,
        request.index,
        batch_size=settings.meili_batch_size,
        batch_bytes=settings.meili_batch_bytes,
        task_timeout_s=settings.meili_task_timeout_seconds,
    )


def _quiet(phase: str, items: int) -> None:
    return None


def _log_summary(request: SyncRequest, result: SyncResult, elapsed_s: float) -> None:
    log.info(
        "sync of %s %s in %.1fs (%s): %s, %d Confluence requests",
        request.datasource_id,
        "succeeded" if result.succeeded else f"failed ({result.error and result.error.reason})",
        elapsed_s,
        "incremental" if result.incremental else "full",
        result.counts.model_dump(),
        result.requests,
    )
