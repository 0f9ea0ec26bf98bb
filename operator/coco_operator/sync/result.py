"""What a run did, and the result phase that sums it up once, whatever path the run took."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from coco_operator.api.datasource import SyncCounts
from coco_operator.errors import SyncError
from coco_operator.sync.plan import Listing
from coco_operator.sync.state import Run


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

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.finished is not None

    @property
    def duration_s(self) -> float:
        end = self.finished or datetime.now(UTC)
        return (end - self.started).total_seconds()

    @classmethod
    def failed(cls, started: datetime, error: SyncError) -> SyncResult:
        return cls(started=started, finished=datetime.now(UTC), error=error)


async def summarise(run: Run) -> SyncResult:
    """The result of a run whose phases all completed."""
    tally, planned, writer = run.tally, run.planned, run.writer
    return SyncResult(
        started=run.started,
        documents=await run.sink.count(run.datasource_id),
        counts=SyncCounts(
            pages=tally.pages,
            blogposts=tally.blogposts,
            attachments=tally.attachments,
            comments=tally.comments,
            treeItems=tally.tree_items,
            skipped=tally.skipped,
            restricted=len(run.access.restricted),
            deleted=tally.deleted,
            dropped=writer.counts.dropped,
            enriched=writer.counts.enriched,
            chunked=writer.counts.chunked,
        ),
        incremental=planned.plan.incremental,
        prune_reason=planned.plan.prune_reason,
        skipped_items=list(tally.skipped_items),
        enrichment_warnings=list(writer.warnings),
        watermark=run.started,
        listing=Listing(
            last_prune=run.started if planned.current is not None else run.request.listing.last_prune,
            total=planned.survey.total,
        ),
        finished=datetime.now(UTC),
    )


def with_partial(result: SyncResult, run: Run) -> SyncResult:
    """A failed run still says what it had found out (full or incremental, why it listed) and skipped."""
    if not run.has_plan:  # failed before it had one
        return result
    planned = run.planned
    result.incremental = planned.plan.incremental
    result.prune_reason = planned.plan.prune_reason
    result.skipped_items = list(run.tally.skipped_items)
    return result
