"""`set`: add fixed fields and tags, and fields whose value is one of the Datasource's labels."""

from __future__ import annotations

from collections.abc import Mapping

from coco_operator.api.enrichment import SetSpec
from coco_operator.enrich.base import Document, StepResult, doc_id


def values_for(spec: SetSpec, labels: Mapping[str, str]) -> dict[str, str]:
    """Fields to write: `fields`, then `fromLabels` for labels the Datasource has (a label wins over a fixed value)."""
    values = dict(spec.fields)
    values.update({name: labels[key] for name, key in spec.fromLabels.items() if key in labels})
    return values


def run(spec: SetSpec, docs: list[Document], labels: Mapping[str, str]) -> StepResult:
    values = values_for(spec, labels)
    out = StepResult(documents=[])
    for doc in docs:
        new = {**doc, **values}
        if spec.tags:
            existing = [str(t) for t in doc.get("tags") or []]
            new["tags"] = list(dict.fromkeys([*existing, *spec.tags]))
        if new != doc:
            out.enriched_ids.add(doc_id(doc))
        out.documents.append(new)
    return out
