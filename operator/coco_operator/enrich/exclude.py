"""`exclude`: drop documents by label, title pattern (RE2, see `coco_operator.patterns`), ancestor page, type or
size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coco_operator.api.enrichment import ExcludeSpec
from coco_operator.enrich.base import Document, ProcessorError, StepResult, doc_id
from coco_operator.patterns import PatternError, title_matcher


def _strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)] if value not in (None, "") else []


def matcher(spec: ExcludeSpec) -> Callable[[Document], bool]:
    """A predicate that is true for documents the spec drops (any one criterion is enough)."""
    labels = {label.casefold() for label in spec.labels}
    try:
        # RE2: linear in the title whatever the pattern, so a tenant's pattern cannot stall the operator.
        patterns = [title_matcher(p) for p in spec.titlePatterns]
    except PatternError as exc:  # admitted by an API server without the CEL rule, or written before it
        raise ProcessorError(str(exc), retryable=False) from None
    ancestors = set(spec.ancestors)
    types = set(spec.types)

    def by_ancestor(doc: Document) -> bool:
        meta = doc.get("metadata") or {}
        # Titles of the ancestors (and, for attachments, of the page they are attached to) ...
        names = _strings(doc.get("categories"))
        ids = [*_strings(meta.get("ancestor_ids")), *_strings(meta.get("container_id"))]
        # ... and the page itself, so that `Archive` drops the Archive page and everything below it.
        if doc.get("type") != "attachment":
            names += _strings(doc.get("title"))
            ids += _strings(meta.get("content_id"))
        return any(n in ancestors for n in names) or any(i in ancestors for i in ids)

    def drops(doc: Document) -> bool:
        if labels and any(t.casefold() in labels for t in _strings(doc.get("tags"))):
            return True
        title = str(doc.get("title") or "")
        if any(search(title) for search in patterns):
            return True
        if ancestors and by_ancestor(doc):
            return True
        if types and doc.get("type") in types:
            return True
        size = doc.get("size")
        return spec.maxSize is not None and isinstance(size, int) and size > spec.maxSize

    return drops


def run(spec: ExcludeSpec, docs: list[Document]) -> StepResult:
    drops = matcher(spec)
    out = StepResult(documents=[])
    for doc in docs:
        if drops(doc):
            out.dropped_ids.append(doc_id(doc))
        else:
            out.documents.append(doc)
    return out
