"""Pure mapping from Confluence REST items to Coco's document model, with Meilisearch-valid ids."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coco_operator.confluence.items import (
    TREE_TYPES,
    attachment_media_type,
    attachment_size,
    breadcrumbs,
    labels_of,
    metadata_fingerprint,
    storage_of,
)
from coco_operator.confluence.storage_text import storage_to_text

DOCUMENT_TYPES = ("page", "blogpost", "attachment", "comment", *TREE_TYPES)
# Types a content listing may bring back, and the document type each becomes.
CONTENT_TYPES = {"page": "page", "blogpost": "blogpost", **{t: t for t in TREE_TYPES}}


@dataclass(frozen=True)
class MappingContext:
    datasource_id: str  # "namespace/name": stable, readable, and what deletions filter on
    datasource_name: str  # the spec's display name
    site_base: str  # web links are relative to this
    space_key: str
    space_name: str


def document_id(datasource_id: str, content_id: str) -> str:
    """md5 of datasource id and content id, as Coco does: 32 hex chars, always a valid Meilisearch id."""
    return hashlib.md5(f"{datasource_id}-{content_id}".encode(), usedforsecurity=False).hexdigest()


def _user(u: dict[str, Any] | None) -> dict[str, str] | None:
    if not u:
        return None
    userid = u.get("accountId") or u.get("userKey") or u.get("username") or ""
    name = u.get("displayName") or u.get("publicName") or u.get("username") or userid
    return {"avatar": "", "username": str(name), "userid": str(userid)}


def _web_url(item: dict[str, Any], ctx: MappingContext) -> str:
    webui = (item.get("_links") or {}).get("webui") or ""
    if webui.startswith(("http://", "https://")):
        return str(webui)
    return f"{ctx.site_base}{webui}" if webui else ctx.site_base


def _common(item: dict[str, Any], ctx: MappingContext, doc_type: str) -> dict[str, Any]:
    version = item.get("version") or {}
    history = item.get("history") or {}
    creator = _user(history.get("createdBy"))
    editor = _user(version.get("by"))
    content_id = str(item["id"])
    return {
        "id": document_id(ctx.datasource_id, content_id),
        "source": {"type": "connector", "name": ctx.datasource_name, "id": ctx.datasource_id},
        "type": doc_type,
        "title": str(item.get("title") or ""),
        "url": _web_url(item, ctx),
        "category": ctx.space_name,
        "categories": breadcrumbs(item),
        "tags": labels_of(item),
        "owner": creator,
        "last_updated_by": {"user": editor, "timestamp": version.get("when")} if editor else None,
        "created": history.get("createdDate") or version.get("when"),
        "updated": version.get("when") or history.get("createdDate"),
        "metadata": {
            "content_id": content_id,
            "space_key": ctx.space_key,
            "space_name": ctx.space_name,
            "version": version.get("number"),
            "status": item.get("status", "current"),
            "fingerprint": metadata_fingerprint(item),
        },
    }


def remember_users(item: dict[str, Any], users: dict[str, str]) -> None:
    """Collect display names seen on items, so that @mentions in later bodies read as names."""
    for u in ((item.get("version") or {}).get("by"), (item.get("history") or {}).get("createdBy")):
        if not u:
            continue
        name = u.get("displayName") or u.get("publicName")
        for key in ("accountId", "userKey", "username"):
            if name and u.get(key):
                users[str(u[key])] = str(name)


def content_type(item: Mapping[str, Any]) -> str | None:
    """The document type of an item a content listing brought back, or None for a type this operator does not
    index (skipped with the reason, never a failed run)."""
    return CONTENT_TYPES.get(str(item.get("type") or "page"))


def content_document(
    item: dict[str, Any],
    ctx: MappingContext,
    *,
    users: Mapping[str, str] | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A page, blog post or tree item; `text` is its body as text if already converted (by a worker process).

    Folders, whiteboards, databases and smart links have no storage body: their document is title and type.
    """
    doc = _common(item, ctx, content_type(item) or "page")
    content = storage_to_text(storage_of(item), users=users) if text is None else text
    doc["content"] = content
    doc["size"] = len(content.encode())
    return doc


def comment_document(item: dict[str, Any], ctx: MappingContext, text: str) -> dict[str, Any]:
    """A footer or inline comment (or a reply): its own document, under its page's breadcrumbs and the page."""
    doc = _common(item, ctx, "comment")
    container = item.get("container") or {}
    extensions = item.get("extensions") or {}
    answers = [a for a in item.get("ancestors") or [] if isinstance(a, dict) and a.get("id")]
    inline = extensions.get("inlineProperties") or {}
    doc["content"] = text
    doc["size"] = len(text.encode())
    doc["metadata"].update(
        {
            "container_id": str(container.get("id", "")),
            "container_type": str(container.get("type", "")),
            "location": str(extensions.get("location") or "footer"),
            "reply_to": str(answers[-1]["id"]) if answers else None,
            "resolution": (extensions.get("resolution") or {}).get("status"),
            "selection": inline.get("originalSelection") or None,
        }
    )
    return doc


def attachment_document(item: dict[str, Any], text: str | None, ctx: MappingContext) -> dict[str, Any]:
    """An attachment: text when it could be extracted, else metadata only."""
    doc = _common(item, ctx, "attachment")
    container = item.get("container") or {}
    doc["content"] = text or ""
    doc["size"] = attachment_size(item)
    doc["metadata"].update(
        {
            "media_type": attachment_media_type(item),
            "container_id": str(container.get("id", "")),
            "indexed_text": text is not None,
        }
    )
    return doc
