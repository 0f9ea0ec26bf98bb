"""Documents: dotted paths, field selection, ids, the primary key, and what an index's embedders demand of them."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import JSON, MeiliError, compact, type_error

MAX_INDEX_UID_BYTES = 400
_DOC_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,511}")
_INDEX_UID_RE = re.compile(r"[A-Za-z0-9_-]+")


def values_at(value: Any, path: str) -> list[Any]:
    """Values reached by a dotted path; arrays are traversed and keys may themselves contain dots."""
    out: list[Any] = []

    def walk(node: Any, rest: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, rest)
        elif isinstance(node, dict):
            for key, sub in node.items():
                if key == rest:
                    out.append(sub)
                elif rest.startswith(key + "."):
                    walk(sub, rest[len(key) + 1 :])

    walk(value, path)
    return out


def leaves(values: Iterable[Any]) -> list[Any]:
    """The values with arrays flattened: an attribute holding an array matches through any of its elements."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(leaves(value))
        else:
            out.append(value)
    return out


def flatten(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) pairs of a document, arrays traversed."""
    if isinstance(doc, dict):
        for key, sub in doc.items():
            yield from flatten(sub, f"{prefix}.{key}" if prefix else key)
    elif isinstance(doc, list):
        for item in doc:
            yield from flatten(item, prefix)
    else:
        yield prefix, doc


def covers(attributes: Iterable[str], field_name: str) -> bool:
    """Whether a settings list covers a field: the field itself or one of its parent objects is listed."""
    return any(field_name == a or field_name.startswith(a + ".") for a in attributes)


def select(doc: JSON, selectors: list[str]) -> JSON:
    """The selected (possibly dotted) fields of a document, in document order."""
    if "*" in selectors:
        return copy.deepcopy(doc)
    out: JSON = {}
    for key, sub in doc.items():
        if key in selectors:
            out[key] = copy.deepcopy(sub)
            continue
        nested = [s[len(key) + 1 :] for s in selectors if s.startswith(key + ".")]
        if nested and isinstance(sub, dict) and (picked := select(sub, nested)):
            out[key] = picked
        elif nested and isinstance(sub, list):
            items = [p for p in (select(i, nested) for i in sub if isinstance(i, dict)) if p]
            if items:
                out[key] = items
    return out


def shown(doc: JSON, fields: list[str] | None) -> JSON:
    """A document as Meilisearch returns it: `_vectors` only when asked for (retrieveVectors), which we refuse."""
    return select({k: v for k, v in doc.items() if k != "_vectors"}, fields or ["*"])


def validate_index_uid(uid: Any, code: str = "invalid_index_uid", path: str = "") -> str:
    if not isinstance(uid, str):
        raise type_error(code, path, "a string", uid)
    if not _INDEX_UID_RE.fullmatch(uid) or len(uid.encode()) > MAX_INDEX_UID_BYTES:
        at = f"Invalid value at `{path}`: " if path else ""
        raise MeiliError(
            code,
            f"{at}`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only "
            "alphanumeric characters, hyphens (-) and underscores (_), and can not be more than "
            f"{MAX_INDEX_UID_BYTES} bytes.",
        )
    return uid


def external_id(value: Any) -> str | None:
    """The string form of a valid document id, None when Meilisearch rejects it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if -(2**63) <= value < 2**64 else None
    if isinstance(value, str) and _DOC_ID_RE.fullmatch(value):
        return value
    return None


def infer_primary_key(first: JSON) -> str:
    """The single top-level field of the first document whose name ends in `id`."""
    candidates = [k for k in first if k.lower().endswith("id")]
    if not candidates:
        raise MeiliError(
            "index_primary_key_no_candidate_found",
            "The primary key inference failed as the engine did not find any field ending with `id` in its name. "
            "Please specify the primary key manually using the `primaryKey` query parameter.",
        )
    if len(candidates) > 1:
        raise MeiliError(
            "index_primary_key_multiple_candidates_found",
            f"The primary key inference failed as the engine found {len(candidates)} fields ending with `id` in "
            f"their names: '{candidates[0]}' and '{candidates[1]}'. Please specify the primary key manually using "
            "the `primaryKey` query parameter.",
        )
    return candidates[0]


def keyed(docs: list[JSON], primary_key: str) -> list[tuple[str, JSON]]:
    """(id, document) pairs; one missing or invalid id fails the whole batch."""
    out: list[tuple[str, JSON]] = []
    for doc in docs:
        values = values_at(doc, primary_key)
        if not values:
            raise MeiliError(
                "missing_document_id", f"Document doesn't have a `{primary_key}` attribute: `{compact(doc)}`."
            )
        if len(values) > 1:
            raise MeiliError(
                "invalid_document_id", f"Document have too many matching `{primary_key}` attribute: `{compact(doc)}`."
            )
        ident = external_id(values[0])
        if ident is None:
            raise MeiliError(
                "invalid_document_id",
                f"Document identifier `{compact(values[0])}` is invalid. A document identifier can be of type "
                "integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and "
                "underscores (_), and can not be more than 511 bytes.",
            )
        out.append((ident, doc))
    return out


def check_user_provided_vectors(docs: list[tuple[str, JSON]], embedders: dict[str, int]) -> None:
    """Meilisearch 1.50: with a `userProvided` embedder every document carries `_vectors.<name>` (or null)."""
    for name, dimensions in embedders.items():
        missing = [ident for ident, doc in docs if name not in (_vectors_of(doc) or {})]
        if missing:
            more = f" and at least {len(missing) - 1} other document(s)" if len(missing) > 1 else ""
            raise MeiliError(
                "vector_embedding_error",
                f"While embedding documents for embedder `{name}`: no vectors provided for document `{missing[0]}`"
                f"{more}\n- Note: `{name}` has `source: userProvided`, so documents must provide embeddings as an "
                f"array in `_vectors.{name}`.\n- Hint: opt-out for a document with `_vectors.{name}: null`",
            )
        for ident, doc in docs:
            _check_embeddings(ident, name, dimensions, (_vectors_of(doc) or {})[name])


def _vectors_of(doc: JSON) -> JSON | None:
    vectors = doc.get("_vectors")
    return vectors if isinstance(vectors, dict) else None


def _check_embeddings(ident: str, name: str, dimensions: int, value: Any) -> None:
    if value is None:
        return  # the document opted out
    if isinstance(value, dict):
        value = value.get("embeddings")
    embeddings = value if value and isinstance(value, list) and isinstance(value[0], list) else [value]
    for i, embedding in enumerate(embeddings):
        if not isinstance(embedding, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in embedding
        ):
            raise MeiliError(
                "invalid_vectors_type",
                f"Bad embedder configuration in the document with id: `{ident}`. `._vectors.{name}` must be an "
                "array of floats, an array of arrays of floats, or an object with field `embeddings`.",
            )
        if len(embedding) != dimensions:
            raise MeiliError(
                "invalid_vector_dimensions",
                f"Invalid vector dimensions in document with id `{ident}` in `._vectors.{name}`.\n  - note: "
                f"embedding #{i} has dimensions {len(embedding)}\n  - note: embedder `{name}` requires {dimensions}",
            )
