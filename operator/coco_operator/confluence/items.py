"""Plain accessors of Confluence REST items, shared by the source, the text workers and the document mapping."""

from __future__ import annotations

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
