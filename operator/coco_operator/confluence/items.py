"""Plain accessors of Confluence REST items, shared by the source, the text workers and the document mapping."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def storage_of(item: Mapping[str, Any]) -> str:
    """A page's or blog post's body in storage format ("" if the item has none)."""
    return str((((item.get("body") or {}).get("storage")) or {}).get("value") or "")


def attachment_media_type(attachment: Mapping[str, Any]) -> str:
    ext = attachment.get("extensions") or {}
    meta = attachment.get("metadata") or {}
    return str(ext.get("mediaType") or meta.get("mediaType") or "application/octet-stream").lower()


def attachment_size(attachment: Mapping[str, Any]) -> int:
    ext = attachment.get("extensions") or {}
    try:
        return int(ext.get("fileSize") or 0)
    except (TypeError, ValueError):
        return 0


# Items that belong to a page or blog post (their `container`) rather than sitting in the page tree.
CONTAINED_TYPES = ("attachment", "comment")
# Cloud's page-tree types besides pages (CQL and v2 `AncestorType`); Data Center has none of them.
TREE_TYPES = ("folder", "whiteboard", "database", "embed")


def labels_of(item: Mapping[str, Any]) -> list[str]:
    """The item's label names (`metadata.labels`), in the order Confluence gives them."""
    labels = (((item.get("metadata") or {}).get("labels")) or {}).get("results") or []
    return [str(label["name"]) for label in labels if isinstance(label, dict) and label.get("name")]


def _titles(ancestors: object) -> list[str]:
    # A tree item Confluence adds later may come without a title: it is left out, never fails the mapping.
    if not isinstance(ancestors, list):
        return []
    return [str(a["title"]) for a in ancestors if isinstance(a, dict) and a.get("title")]


def breadcrumbs(item: Mapping[str, Any]) -> list[str]:
    """Titles above the item, root first: its ancestors (pages, folders, whiteboards ...) or, for attachments and
    comments, their page's ancestors and the page itself (a comment's own `ancestors` are the comments it
    answers)."""
    if item.get("type") in CONTAINED_TYPES:
        container = item.get("container") or {}
        if not isinstance(container, dict):
            return []
        title = container.get("title")
        return [*_titles(container.get("ancestors")), *([str(title)] if title else [])]
    return _titles(item.get("ancestors"))


def metadata_fingerprint(item: Mapping[str, Any]) -> str:
    """What an item's document takes from metadata Confluence may change without a new version (title, labels,
    breadcrumbs), hashed: stored with the document, compared with what a listing shows."""
    payload = json.dumps([str(item.get("title") or ""), sorted(labels_of(item)), breadcrumbs(item)])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
