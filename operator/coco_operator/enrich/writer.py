"""Run the pipeline inside a sync: collect documents into batches, enrich each batch, write what is left.

Memory stays flat: at most one batch is held, plus the ids of dropped documents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from coco_operator.api.enrichment import Processor
from coco_operator.enrich.base import Document, EnrichContext
from coco_operator.enrich.pipeline import EnrichCounts, apply
from coco_operator.limits import bound_document

Write = Callable[[Document], Awaitable[None]]
MAX_WARNINGS = 20


@dataclass
class _Skipped:
    processor: str
    cause: str  # the first failure's
    batches: int = 0
    documents: int = 0


class EnrichingWriter:
    """`await add(doc)` instead of `sink.add(doc)`, `await flush()` before `sink.flush()`."""

    def __init__(
        self, pipeline: list[Processor] | None, ctx: EnrichContext, write: Write, *, batch_size: int = 100
    ) -> None:
        self.pipeline = list(pipeline or [])
        self.ctx = ctx
        self._write = write
        self._batch_size = max(1, batch_size)
        self._buffer: list[Document] = []
        self.counts = EnrichCounts()
        self.dropped_ids: set[str] = set()
        self._skipped: dict[int, _Skipped] = {}

    async def add(self, doc: Document) -> None:
        doc = bound_document(doc)  # whatever Confluence sent, bounded before patterns, chunking and the sink
        if not self.pipeline:
            await self._write(doc)
            return
        self._buffer.append(doc)
        if len(self._buffer) >= self._batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Enrich and write the documents collected so far. Raises SyncError(reason=EnrichmentFailed)."""
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        result = await apply(self.pipeline, batch, self.ctx)
        self.counts.add(result.counts)
        self.dropped_ids.update(result.dropped_ids)
        for w in result.warnings:
            skipped = self._skipped.setdefault(w.index, _Skipped(w.processor, w.cause))
            skipped.batches += 1
            skipped.documents += w.documents
        for doc in result.documents:
            await self._write(doc)

    @property
    def warnings(self) -> list[str]:
        """One line per processor that was skipped (onFailure: Skip), for the Datasource's status."""
        return [
            f"{s.processor} failed for {s.documents} documents in {s.batches} "
            f"{'batch' if s.batches == 1 else 'batches'} ({s.cause}); they were indexed without it"
            for _, s in sorted(self._skipped.items())
        ][:MAX_WARNINGS]
