"""The Confluence side of a run: what a space holds, as raw REST items (mapping to documents is elsewhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from coco_operator.confluence.client import ConfluenceClient, cql_quote
from coco_operator.errors import SpaceNotFoundError, SyncError

# Fields a document needs; everything in one listing so no per-item request is needed.
CONTENT_EXPAND = "body.storage,version,space,history,ancestors,metadata.labels"
ATTACHMENT_EXPAND = "version,space,history,container,metadata.labels,extensions"
# Ask for more than any server gives; the answer's `limit` is the real page size.
PAGE_LIMIT = 100

TEXT_MEDIA_PREFIXES = ("text/",)
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/x-yaml", "application/yaml"})


@dataclass(frozen=True)
class SpaceInfo:
    key: str
    name: str


class ConfluenceSource:
    def __init__(self, client: ConfluenceClient, space_key: str, *, attachment_max_bytes: int) -> None:
        self.client = client
        self.space_key = space_key
        self.attachment_max_bytes = attachment_max_bytes

    async def space(self) -> SpaceInfo:
        try:
            data = await self.client.get_space(self.space_key)
        except SpaceNotFoundError as exc:
            raise SpaceNotFoundError(
                f"space {self.space_key!r} does not exist on {self.client.site.base} or the account cannot "
                "see it; check connector.config.space (the space key, e.g. DOCS, not its name) and the "
                "account's space permissions"
            ) from exc
        return SpaceInfo(key=str(data.get("key", self.space_key)), name=str(data.get("name", self.space_key)))

    def _space_clause(self) -> str:
        return f"space = {cql_quote(self.space_key)}"

    async def contents(self, *, blogposts: bool) -> AsyncIterator[dict[str, Any]]:
        """Current pages (and blog posts) of the space, each once even if the server repeats items."""
        types = "page, blogpost" if blogposts else "page"
        cql = f"{self._space_clause()} AND type in ({types}) order by id"
        seen: set[str] = set()
        async for item in self.client.paginate(
            "/content/search", {"cql": cql, "expand": CONTENT_EXPAND, "limit": PAGE_LIMIT}
        ):
            cid = str(item.get("id"))
            if cid in seen or item.get("status", "current") != "current":
                continue
            seen.add(cid)
            yield item

    async def attachments(self) -> AsyncIterator[dict[str, Any]]:
        cql = f"{self._space_clause()} AND type = attachment order by id"
        seen: set[str] = set()
        async for item in self.client.paginate(
            "/content/search", {"cql": cql, "expand": ATTACHMENT_EXPAND, "limit": PAGE_LIMIT}
        ):
            cid = str(item.get("id"))
            if cid in seen or item.get("status", "current") != "current":
                continue
            seen.add(cid)
            yield item

    def download_url(self, attachment: dict[str, Any]) -> str:
        """Cloud: the REST download path (the legacy /download path refuses API tokens); DC: `_links.download`."""
        container = attachment.get("container") or {}
        if self.client.site.cloud and container.get("id"):
            return self.client.url(f"/content/{container['id']}/child/attachment/{attachment['id']}/download")
        link = (attachment.get("_links") or {}).get("download")
        if not link:
            raise SyncError(f"attachment {attachment.get('title')!r} has no download link")
        return self.client.site_url(link)

    async def attachment_text(self, attachment: dict[str, Any]) -> str | None:
        """Text of a text-like attachment, or None when it is indexed by metadata only."""
        media_type = attachment_media_type(attachment)
        if not (media_type.startswith(TEXT_MEDIA_PREFIXES) or media_type in TEXT_MEDIA_TYPES):
            return None
        if attachment_size(attachment) > self.attachment_max_bytes:
            return None
        data = await self.client.get_bytes(self.download_url(attachment), max_bytes=self.attachment_max_bytes)
        return data.decode("utf-8", errors="replace")


def attachment_media_type(attachment: dict[str, Any]) -> str:
    ext = attachment.get("extensions") or {}
    meta = attachment.get("metadata") or {}
    return str(ext.get("mediaType") or meta.get("mediaType") or "application/octet-stream").lower()


def attachment_size(attachment: dict[str, Any]) -> int:
    ext = attachment.get("extensions") or {}
    try:
        return int(ext.get("fileSize") or 0)
    except (TypeError, ValueError):
        return 0
