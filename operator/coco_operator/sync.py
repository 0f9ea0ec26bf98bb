"""One sync run: Confluence source -> documents -> Meilisearch sink, returning what happened.

Full run (no usable watermark): every current item is fetched and indexed. Incremental run: only items that
changed since the watermark (minus a safety overlap, since CQL dates are minute-granular and in the site's time
zone) and whose version differs from the indexed one. Deletions: a full run, and an incremental one whose count
of the scope does not add up or whose prune interval is due (`prune.prune_reason`), lists every id, deletes what
the listing lacks and fetches anything current that the index lacks; nothing is deleted unless every listing
completed. Other incremental runs delete only what the window shows is no longer current.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from coco_operator.aio import Prefetch, together
from coco_operator.api.datasource import DatasourceSpec, SyncCounts
from coco_operator.api.enrichment import meili_embedders
from coco_operator.confluence.client import ConfluenceClient, RequestHook
from coco_operator.confluence.extract import extract_text, needs_download, skip_reason
from coco_operator.confluence.source import (
    Changed,
    ConfluenceSource,
    SpaceInfo,
    attachment_media_type,
    attachment_size,
    changed_item,
)
from coco_operator.confluence.text_workers import MIN_ITEMS, TextWorkers, with_text
from coco_operator.documents import (
    MappingContext,
    attachment_document,
    content_document,
    count_key,
    document_id,
    remember_users,
)
from coco_operator.enrich import EnrichContext, EnrichingWriter
from coco_operator.errors import AuthenticationError, ConfigurationError, SyncError
from coco_operator.prune import Listing, prune_reason
from coco_operator.search.sink import MeiliSink
from coco_operator.settings import Settings
from coco_operator.status import parse_time

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]
ENRICH_BATCH = 100  # documents per enrichment batch (and per webhook call)


@dataclass(frozen=True)
class SyncRequest:
    datasource_id: str  # namespace/name
    spec: DatasourceSpec
    token: str
    index: str
    watermark: datetime | None = None  # start of the last successful run with the same config
    listing: Listing = field(default_factory=Listing)  # the last complete listing and count, same config
    ca_pem: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the Datasource's metadata.labels
    enrichment_tokens: Mapping[int, str] = field(default_factory=dict)  # webhook processor index -> token
    embedder_keys: Mapping[str, str] = field(default_factory=dict)  # embedder name -> API key


@dataclass
class SyncResult:
    started: datetime
    finished: datetime | None = None
    counts: SyncCounts = field(default_factory=SyncCounts)
    documents: int | None = None
    requests: int = 0
    incremental: bool = False
    watermark: datetime | None = None
    listing: Listing = field(default_factory=Listing)  # for the next run: last complete listing, count now
    prune_reason: str | None = None  # why this run listed every id (None: it did not)
    skipped_items: list[str] = field(default_factory=list)
    enrichment_warnings: list[str] = field(default_factory=list)
    error: SyncError | None = None
    reported_by_job: bool = False  # Job mode: the Job wrote the outcome into status itself

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.finished is not None

    @property
    def duration_s(self) -> float:
        end = self.finished or datetime.now(UTC)
        return (end - self.started).total_seconds()


def index_for(spec: DatasourceSpec, settings: Settings) -> str:
    return spec.index or settings.meili_index


def config_fingerprint(spec: DatasourceSpec, index: str) -> str:
    """What makes a watermark valid: a change of space, scope or index needs a full run."""
    cfg = spec.connector.config.model_dump(mode="json", exclude={"tokenSecretRef", "token", "username"})
    payload: dict[str, Any] = {"config": cfg, "index": index}
    # Only when set, so that watermarks of Datasources without a pipeline stay valid.
    if spec.enrichment:
        payload["enrichment"] = [p.model_dump(mode="json", exclude_none=True) for p in spec.enrichment]
    raw = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def endpoint_problem(endpoint: str, settings: Settings) -> str | None:
    """Why the operator refuses to fetch from this endpoint, or None."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and not settings.allow_http:
        return (
            f"endpoint {endpoint} uses plain http, which would send the token unencrypted; use https, or ask the "
            "operator's administrator to set allowHttp (COCO_ALLOW_HTTP=true) for a trusted network"
        )
    if settings.allowed_hosts and not any(fnmatch.fnmatch(host, pattern.lower()) for pattern in settings.allowed_hosts):
        allowed = ", ".join(settings.allowed_hosts)
        return (
            f"host {host} of endpoint {endpoint} is not in the operator's allowed Confluence hosts ({allowed}); "
            "use an allowed site or ask the operator's administrator to add it"
        )
    return None


def _same_config(status: Mapping[str, Any], spec: DatasourceSpec, index: str) -> bool:
    """Whether what the last run left in status (watermark, listing) was written for this config."""
    return bool(status.get("watermarkConfig") == config_fingerprint(spec, index))


def prior_watermark(status: Mapping[str, Any], spec: DatasourceSpec, index: str) -> datetime | None:
    """The watermark in status, if it was written for this config; else None (the next run is a full one)."""
    if not _same_config(status, spec, index):
        return None
    return parse_time(status.get("watermark"))


def prior_listing(status: Mapping[str, Any], spec: DatasourceSpec, index: str) -> Listing:
    """The last complete listing and count in status, if written for this config (as the watermark)."""
    if not _same_config(status, spec, index):
        return Listing()
    total = status.get("sourceItems")
    return Listing(
        last_prune=parse_time(status.get("lastPruneTime")),
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def content_types(spec: DatasourceSpec) -> list[str]:
    return ["page", "blogpost"] if spec.connector.config.enable_blogposts else ["page"]


async def run_sync(
    request: SyncRequest,
    settings: Settings,
    *,
    progress: Progress | None = None,
    on_response: RequestHook | None = None,
    on_wait: Callable[[float], None] | None = None,
    text_workers: TextWorkers | None = None,
) -> SyncResult:
    """Run one sync. Raises nothing for known failures: they come back in `result.error`."""
    result = SyncResult(started=datetime.now(UTC))
    config = request.spec.connector.config
    problem = endpoint_problem(config.endpoint, settings)
    if problem:
        result.error = ConfigurationError(problem, reason="EndpointNotAllowed")
        result.finished = datetime.now(UTC)
        return result
    try:
        client = ConfluenceClient(
            config.endpoint,
            request.token,
            username=config.username,
            timeout_s=settings.http_timeout_seconds,
            concurrency=settings.confluence_concurrency,
            max_retry_s=settings.confluence_max_retry_seconds,
            on_response=on_response,
            on_wait=on_wait,
            ca_pem=request.ca_pem,
        )
    except SyncError as exc:  # e.g. a CA bundle that is not PEM
        result.error = exc
        result.finished = datetime.now(UTC)
        return result
    sink = MeiliSink(
        settings.meili_url,
        settings.meili_api_key,
        request.index,
        batch_size=settings.meili_batch_size,
        batch_bytes=settings.meili_batch_bytes,
        task_timeout_s=settings.meili_task_timeout_seconds,
    )
    source = ConfluenceSource(
        client, config.all_spaces(), cql_filter=config.cql, concurrency=settings.confluence_concurrency
    )
    t0 = time.monotonic()
    try:
        async with client:
            await _run(
                request, settings, client, source, sink, result, progress or (lambda phase, n: None), text_workers
            )
    except SyncError as exc:
        result.error = exc
        result.finished = datetime.now(UTC)
    result.requests = client.requests
    log.info(
        "sync of %s %s in %.1fs (%s): %s, %d Confluence requests",
        request.datasource_id,
        "succeeded" if result.succeeded else f"failed ({result.error and result.error.reason})",
        time.monotonic() - t0,
        "incremental" if result.incremental else "full",
        result.counts.model_dump(),
        result.requests,
    )
    return result


async def _run(
    request: SyncRequest,
    settings: Settings,
    client: ConfluenceClient,
    source: ConfluenceSource,
    sink: MeiliSink,
    result: SyncResult,
    report: Progress,
    shared_workers: TextWorkers | None,
) -> None:
    # A full run fetches everything it lists: the listing, and the bodies of what it lists so far, start now,
    # alongside the first requests (a few batches ahead at most, so memory stays flat).
    listed: dict[str, str] = {}
    prefetch = None
    if request.watermark is None:
        ids = source.list_current(content_types(request.spec), into=listed)
        prefetch = Prefetch(source.fetch_batches(ids), maxsize=source.concurrency)
    # Processes start only when a run is large enough to use them (`TextWorkers.start`).
    workers = shared_workers or TextWorkers(max(1, settings.text_workers))
    try:
        await _run_steps(request, settings, client, source, sink, result, report, workers, prefetch, listed)
    finally:
        if prefetch is not None:
            await prefetch.aclose()
        if workers is not shared_workers:
            await workers.close()


async def _run_steps(
    request: SyncRequest,
    settings: Settings,
    client: ConfluenceClient,
    source: ConfluenceSource,
    sink: MeiliSink,
    result: SyncResult,
    report: Progress,
    workers: TextWorkers,
    prefetch: Prefetch[list[dict[str, Any]]] | None,
    listed: dict[str, str],
) -> None:
    config = request.spec.connector.config
    ds_id = request.datasource_id
    report("Connecting", 0)
    types = content_types(request.spec)
    embedders = meili_embedders(request.spec.embedders, dict(request.embedder_keys)) or None
    use_workers = False

    def large(items: int | None) -> None:
        """Hand text conversion to worker processes for a run this large (unknown: large); start them now."""
        nonlocal use_workers
        if settings.text_workers and not use_workers and (items is None or items >= MIN_ITEMS):
            use_workers = True
            workers.start()

    async def counted() -> int | None:
        total = await source.count(types + (["attachment"] if config.enable_attachments else []))
        if prefetch is not None:  # a full run fetches every item: workers boot while the first bodies download
            large(total)
        return total

    async def index_ready() -> dict[str, int | None]:
        await sink.prepare(embedders=embedders)
        return await sink.versions_of(ds_id)  # doc id -> version in the index

    # Independent first requests go out together: at 50 ms a request, round trips are most of a small run.
    first: list[Any] = await together(source.space_infos(), counted(), index_ready())
    spaces: dict[str, SpaceInfo] = first[0]
    total: int | None = first[1]
    indexed: dict[str, int | None] = first[2]
    report("Listing", 0)
    changed: dict[str, Changed] = {}
    window_attachments: list[dict[str, Any]] | None = None  # incremental runs: attachments changed since
    if request.watermark is not None:
        result.incremental = True
        since = request.watermark - timedelta(seconds=settings.incremental_overlap_seconds)
        changed = await source.changed_since(types, since)
        if config.enable_attachments:
            window_attachments = [att async for att in source.attachments(since)]
    created = _created_since(request.watermark, [*changed.values(), *map(changed_item, window_attachments or [])])
    reason = prune_reason(
        incremental=result.incremental,
        prior=request.listing,
        now=result.started,
        interval_s=settings.prune_interval_seconds,
        total_now=total,
        created=created,
    )
    result.prune_reason = reason
    if reason is not None:
        log.info("sync of %s lists every id to find deletions: %s", ds_id, reason)
    current: dict[str, str] | None = {} if reason is not None else None  # id -> type, once listed
    batches: AsyncIterable[list[dict[str, Any]]]
    if prefetch is not None:
        current, batches = listed, prefetch
    else:
        if current is not None:
            async for _ in source.list_current(types, into=current):
                pass
        wanted = {
            cid for cid, ch in changed.items() if ch.current and indexed.get(document_id(ds_id, cid)) != ch.version
        }
        if current is not None:
            wanted |= {cid for cid in current if document_id(ds_id, cid) not in indexed}
            wanted &= set(current)
        to_fetch = sorted(wanted, key=_numeric)
        large(len(to_fetch))
        batches = source.fetch_batches(to_fetch)
    counts = {"pages": 0, "blogposts": 0, "attachments": 0, "skipped": 0}
    users: dict[str, str] = {}
    done = 0
    writer = EnrichingWriter(
        request.spec.enrichment,
        EnrichContext(
            datasource_id=ds_id,
            datasource_name=request.spec.name,
            labels=request.labels,
            tokens=request.enrichment_tokens,
        ),
        sink.add,
        batch_size=ENRICH_BATCH,
    )
    report("Indexing", 0)
    pool = workers if use_workers else None
    async for item, text in with_text(batches, users, pool, remember_users):
        ctx = _context(request, client, spaces, item)
        doc = content_document(item, ctx, users=users, text=text)
        await writer.add(doc)
        counts[count_key(doc["type"])] += 1
        done += 1
        report("Indexing", done)
    seen = {document_id(ds_id, cid) for cid in current or ()}
    if config.enable_attachments:
        # Downloads run `concurrency` at a time (each is a redirect and a file on Cloud); documents keep list order.
        window: list[dict[str, Any]] = []

        async def drain() -> None:
            nonlocal done
            texts = await together(*(_attachment_text(source, a, settings, result) for a in window))
            for att, (text, skipped) in zip(window, texts, strict=True):
                counts["skipped"] += skipped
                await writer.add(attachment_document(att, text, _context(request, client, spaces, att)))
                counts["attachments"] += 1
                done += 1
            window.clear()
            report("Indexing", done)

        async def to_index() -> AsyncIterator[dict[str, Any]]:
            if current is None and window_attachments is not None:
                for att in window_attachments:
                    yield att
            else:
                async for att in source.attachments():
                    yield att

        async for att in to_index():
            did = document_id(ds_id, str(att["id"]))
            seen.add(did)
            version = (att.get("version") or {}).get("number")
            if request.watermark is not None and did in indexed and indexed[did] == version:
                continue  # unchanged: no download
            window.append(att)
            if len(window) >= settings.confluence_concurrency:
                await drain()
        if window:
            await drain()
    await writer.flush()
    await sink.flush()
    report("Pruning", done)
    # Content an exclude (or a webhook) now leaves out is still current, so pruning alone would keep it.
    if current is not None:
        gone = set(indexed) - seen
    else:  # no complete listing: only what the window shows is no longer current
        gone = {document_id(ds_id, cid) for cid, ch in changed.items() if not ch.current} & set(indexed)
    stale = gone | (writer.dropped_ids & set(indexed))
    deleted = await sink.delete(stale) if stale else 0
    result.documents = await sink.count(ds_id)
    result.counts = SyncCounts(
        deleted=deleted,
        dropped=writer.counts.dropped,
        enriched=writer.counts.enriched,
        chunked=writer.counts.chunked,
        **counts,
    )
    result.enrichment_warnings = list(writer.warnings)
    result.watermark = result.started
    last_prune = result.started if current is not None else request.listing.last_prune
    result.listing = Listing(last_prune=last_prune, total=total)
    result.finished = datetime.now(UTC)


async def _attachment_text(
    source: ConfluenceSource, att: dict[str, Any], settings: Settings, result: SyncResult
) -> tuple[str | None, int]:
    """(text or None, 1 if skipped). A bad file is counted and named, never fails the run."""
    title = str(att.get("title", ""))
    media_type = attachment_media_type(att)
    size = attachment_size(att)
    if not needs_download(media_type, title, size, settings.attachment_max_bytes):
        reason = skip_reason(media_type, title, size, settings.attachment_max_bytes)
        if reason and "too large" in reason:
            result.skipped_items.append(f"{title}: {reason}")
            return None, 1
        return None, 0
    try:
        data = await source.download(att, settings.attachment_max_bytes)
    except AuthenticationError:
        raise
    except SyncError as exc:
        result.skipped_items.append(f"{title}: {exc.message}")
        return None, 1
    try:
        extracted = await asyncio.wait_for(
            asyncio.to_thread(extract_text, data, media_type, title), timeout=settings.extraction_timeout_seconds
        )
    except TimeoutError:
        result.skipped_items.append(f"{title}: text extraction took longer than {settings.extraction_timeout_seconds}s")
        return None, 1
    if extracted.failed:
        result.skipped_items.append(f"{title}: {extracted.skipped_reason}")
        return None, 1
    return extracted.text, 0


def _context(
    request: SyncRequest, client: ConfluenceClient, spaces: Mapping[str, SpaceInfo], item: Mapping[str, Any]
) -> MappingContext:
    """Space of the item itself (a Datasource may span several spaces)."""
    raw = item.get("space")
    space: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    key = str(space.get("key") or request.spec.connector.config.space)
    info = spaces.get(key)
    name = str(space.get("name") or (info.name if info else key))
    return MappingContext(
        datasource_id=request.datasource_id,
        datasource_name=request.spec.name,
        site_base=client.site.base,
        space_key=key,
        space_name=name,
    )


def _created_since(watermark: datetime | None, items: list[Changed]) -> int:
    """Items created since the last run started: they, not a restore or a move, explain a higher count."""
    if watermark is None:
        return 0
    return sum(1 for item in items if item.created is not None and item.created >= watermark)


def _numeric(cid: str) -> tuple[int, str]:
    digits = "".join(ch for ch in cid if ch.isdigit())
    return (int(digits) if digits else 0, cid)
