"""Run a Datasource's enrichment pipeline over one batch of documents.

Processors run in order; each sees the documents the previous one left. A failing processor is named in the error
(`processor #2 (webhook https://...)`), which the run reports as reason EnrichmentFailed; a webhook with
onFailure: Skip instead lets the batch through without its changes and leaves a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coco_operator.api.enrichment import Processor
from coco_operator.enrich import chunk, exclude, setfields, webhook
from coco_operator.enrich.base import Document, EnrichContext, ProcessorError, StepResult, doc_id, scrub
from coco_operator.errors import SyncError
from coco_operator.reasons import Reason

REASON = Reason.ENRICHMENT_FAILED


@dataclass
class EnrichCounts:
    dropped: int = 0  # left out by exclude or a webhook
    enriched: int = 0  # changed by set or a webhook
    chunked: int = 0  # split into more than one chunk

    def add(self, other: EnrichCounts) -> None:
        self.dropped += other.dropped
        self.enriched += other.enriched
        self.chunked += other.chunked


@dataclass(frozen=True)
class EnrichWarning:
    """A processor with onFailure: Skip failed on a batch; the batch was written without its changes."""

    index: int  # position in spec.enrichment (0-based)
    processor: str  # e.g. processor #2 (webhook https://x/enrich)
    cause: str
    documents: int  # documents of the batch that went through without it

    def __str__(self) -> str:
        return f"{self.processor} failed ({self.cause}); {self.documents} documents were indexed without it"


@dataclass
class EnrichResult:
    documents: list[Document]  # to write, in input order
    dropped_ids: list[str] = field(default_factory=list)  # to delete if they were indexed before
    counts: EnrichCounts = field(default_factory=EnrichCounts)
    warnings: list[EnrichWarning] = field(default_factory=list)


async def _step(processor: Processor, index: int, docs: list[Document], ctx: EnrichContext) -> StepResult:
    if processor.exclude is not None:
        return exclude.run(processor.exclude, docs)
    if processor.set is not None:
        return setfields.run(processor.set, docs, ctx.labels)
    if processor.chunk is not None:
        return chunk.run(processor.chunk, docs)
    if processor.webhook is not None:
        return await webhook.run(processor, index, docs, ctx)
    raise ProcessorError(f"has no options for type {processor.type}", retryable=False)


async def apply(pipeline: list[Processor] | None, docs: list[Document], ctx: EnrichContext) -> EnrichResult:
    """Apply the processors in order to one batch. Raises SyncError(reason=EnrichmentFailed) naming the processor."""
    result = EnrichResult(documents=list(docs))
    enriched: set[str] = set()
    chunked: set[str] = set()
    for index, processor in enumerate(pipeline or []):
        if not result.documents:
            break
        label = processor.label(index)
        token = ctx.tokens.get(index)
        try:
            step = await _step(processor, index, result.documents, ctx)
        except ProcessorError as exc:
            cause = scrub(exc.cause, token)
            if processor.webhook is not None and processor.webhook.onFailure == "Skip":
                result.warnings.append(EnrichWarning(index, label, cause, len(result.documents)))
                continue
            hint = f"; {scrub(exc.hint, token)}" if exc.hint else ""
            raise SyncError(f"{label} failed: {cause}{hint}", reason=REASON, retryable=exc.retryable) from None
        except SyncError:
            raise
        except Exception as exc:  # a bug in a processor: still name it
            cause = scrub(f"{type(exc).__name__}: {exc}", token)
            raise SyncError(f"{label} failed: {cause}", reason=REASON) from None
        result.documents = step.documents
        result.dropped_ids.extend(step.dropped_ids)
        enriched |= step.enriched_ids
        chunked |= step.chunked_ids
    kept = {doc_id(d) for d in result.documents}
    result.counts = EnrichCounts(
        dropped=len(result.dropped_ids), enriched=len(enriched & kept), chunked=len(chunked & kept)
    )
    return result
