"""Enrichment: the processors of `spec.enrichment`, applied to every batch of documents before it is written."""

from coco_operator.enrich.base import Document, EnrichContext, ProcessorError, default_client
from coco_operator.enrich.pipeline import REASON, EnrichCounts, EnrichResult, EnrichWarning, apply
from coco_operator.enrich.writer import EnrichingWriter

__all__ = [
    "REASON",
    "Document",
    "EnrichContext",
    "EnrichCounts",
    "EnrichResult",
    "EnrichWarning",
    "EnrichingWriter",
    "ProcessorError",
    "apply",
    "default_client",
]
