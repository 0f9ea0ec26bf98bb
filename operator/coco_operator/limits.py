"""Bounds on every document before enrichment and indexing (docs/security.md, point 3).

A hostile Confluence can answer a 10 MB title or a 50 MB page body. Whatever it sends, a document stays small enough
for patterns, chunking, webhooks and Meilisearch's payload limit (100 MB per request) to handle in bounded time.
"""

from __future__ import annotations

from typing import Any

MAX_TITLE_CHARS = 1000  # Confluence allows 255
MAX_CONTENT_CHARS = 2_000_000  # attachments are extracted to at most 1,000,000 characters


def bound_document(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with its title and content cut to the bounds (a copy only when something was cut)."""
    title, content = doc.get("title"), doc.get("content")
    long_title = isinstance(title, str) and len(title) > MAX_TITLE_CHARS
    long_content = isinstance(content, str) and len(content) > MAX_CONTENT_CHARS
    if not (long_title or long_content):
        return doc
    out = dict(doc)
    if long_title:
        out["title"] = title[:MAX_TITLE_CHARS]  # type: ignore[index]
    if long_content:
        out["content"] = content[:MAX_CONTENT_CHARS]  # type: ignore[index]
    return out
