"""One sync run: Confluence source -> documents -> Meilisearch sink, returning what happened."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from coco_operator.api.datasource import DatasourceSpec, SyncCounts
from coco_operator.confluence.client import ConfluenceClient, RequestHook
from coco_operator.confluence.source import ConfluenceSource
from coco_operator.documents import MappingContext, attachment_document, content_document, count_key
from coco_operator.errors import SyncError
from coco_operator.search.sink import MeiliSink
from coco_operator.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class SyncRequest:
    datasource_id: str  # namespace/name
    spec: DatasourceSpec
    token: str
    index: str


@dataclass
class SyncResult:
    started: datetime
    finished: datetime | None = None
    counts: SyncCounts = field(default_factory=SyncCounts)
    documents: int | None = None
    requests: int = 0
    skipped_items: list[str] = field(default_factory=list)
    error: SyncError | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.finished is not None

    @property
    def duration_s(self) -> float:
        end = self.finished or datetime.now(UTC)
        return (end - self.started).total_seconds()


def index_for(spec: DatasourceSpec, settings: Settings) -> str:
    return spec.index or settings.meili_index


async def run_sync(
    request: SyncRequest,
    settings: Settings,
    *,
    progress: Progress | None = None,
    on_response: RequestHook | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> SyncResult:
    """Run one sync. Raises nothing for known failures: they come back in `result.error`.

    Pruning happens only after a complete listing, so a failed or partial listing never deletes documents.
    """
    result = SyncResult(started=datetime.now(UTC))
    config = request.spec.connector.config
    report = progress or (lambda phase, n: None)
    client = ConfluenceClient(
        config.endpoint,
        request.token,
        username=config.username,
        timeout_s=settings.http_timeout_seconds,
        concurrency=settings.confluence_concurrency,
        max_retry_s=settings.confluence_max_retry_seconds,
        on_response=on_response,
        on_wait=on_wait,
    )
    sink = MeiliSink(
        settings.meili_url,
        settings.meili_api_key,
        request.index,
        batch_size=settings.meili_batch_size,
        batch_bytes=settings.meili_batch_bytes,
        task_timeout_s=settings.meili_task_timeout_seconds,
    )
    source = ConfluenceSource(client, config.space, attachment_max_bytes=settings.attachment_max_bytes)
    t0 = time.monotonic()
    try:
        async with client:
            report("Connecting", 0)
            space = await source.space()
            await sink.prepare()
            existing = await sink.ids_of(request.datasource_id)
            ctx = MappingContext(
                datasource_id=request.datasource_id,
                datasource_name=request.spec.name,
                site_base=client.site.base,
                space_key=space.key,
                space_name=space.name,
            )
            seen: set[str] = set()
            counts = {"pages": 0, "blogposts": 0, "attachments": 0}
            async for item in source.contents(blogposts=config.enable_blogposts):
                doc = content_document(item, ctx)
                seen.add(doc["id"])
                await sink.add(doc)
                counts[count_key(doc["type"])] += 1
                report("Indexing", len(seen))
            if config.enable_attachments:
                async for att in source.attachments():
                    try:
                        text = await source.attachment_text(att)
                    except SyncError as exc:
                        if exc.reason == "AuthenticationFailed":
                            raise
                        result.skipped_items.append(f"{att.get('title')}: {exc.message}")
                        result.counts.skipped += 1
                        text = None
                    doc = attachment_document(att, text, ctx)
                    seen.add(doc["id"])
                    await sink.add(doc)
                    counts["attachments"] += 1
                    report("Indexing", len(seen))
            await sink.flush()
            report("Pruning", len(seen))
            stale = existing - seen
            deleted = await sink.delete(stale) if stale else 0
            result.documents = await sink.count(request.datasource_id)
            result.counts = SyncCounts(deleted=deleted, skipped=result.counts.skipped, **counts)
            result.finished = datetime.now(UTC)
    except SyncError as exc:
        result.error = exc
        result.finished = datetime.now(UTC)
    result.requests = client.requests
    log.info(
        "sync of %s %s in %.1fs: %s, %d requests",
        request.datasource_id,
        "succeeded" if result.succeeded else f"failed ({result.error and result.error.reason})",
        time.monotonic() - t0,
        result.counts.model_dump(),
        result.requests,
    )
    return result
