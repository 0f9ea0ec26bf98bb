"""The Confluence side of a run: what a space holds, as raw REST items (mapping to documents is elsewhere).

Listing is split so that an unchanged space costs little: ids of everything current (no expansions, the
largest pages a server allows), ids and versions of what changed since the watermark (a CQL `lastmodified`
window), then bodies only for what must be (re)indexed, fetched in bounded-concurrency batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coco_operator.confluence.client import ConfluenceClient, cql_quote
from coco_operator.errors import ConfluenceUnavailableError, SpaceNotFoundError, SyncError
from coco_operator.times import parse_time

# Fields a document needs, all in the body fetch so no per-item request is needed.
CONTENT_EXPAND = "body.storage,version,space,history,ancestors,metadata.labels"
ATTACHMENT_EXPAND = "version,space,history,container,metadata.labels,extensions"
# Ask for more than any server gives; the answer's `limit` is the real page size.
ID_PAGE_LIMIT = 1000
VERSION_PAGE_LIMIT = 200
BODY_BATCH = 50
GATEWAY_TIMEOUT = frozenset({504})


@dataclass(frozen=True)
class SpaceInfo:
    key: str
    name: str


@dataclass(frozen=True)
class Changed:
    """An item of the changed window."""

    version: int | None
    created: datetime | None
    current: bool  # False: archived (or otherwise no longer current) since the last run


def cql_date(when: datetime) -> str:
    """CQL dates are minute-granular; callers widen the window for the site's time zone."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


class ConfluenceSource:
    def __init__(
        self,
        client: ConfluenceClient,
        spaces: Sequence[str],
        *,
        cql_filter: str | None = None,
        concurrency: int = 4,
    ) -> None:
        self.client = client
        self.spaces = list(dict.fromkeys(spaces))
        self.cql_filter = cql_filter
        self.concurrency = max(1, concurrency)
        # The permissions step (`sync/permissions.py`) adds the read restrictions of items and their ancestors, and
        # a narrower expand for batches that the ancestors' restrictions make fail (CONFCLOUD-77618).
        self.content_expand = CONTENT_EXPAND
        self.fallback_expand: str | None = None

    async def space_infos(self) -> dict[str, SpaceInfo]:
        out = {}
        for key in self.spaces:
            try:
                data = await self.client.get_space(key)
            except SpaceNotFoundError as exc:
                raise SpaceNotFoundError(
                    f"space {key!r} does not exist on {self.client.site.base} or the account cannot see it; check "
                    "connector.config.space (the space key, e.g. DOCS, not its name) and the account's space "
                    "permissions"
                ) from exc
            out[key] = SpaceInfo(key=str(data.get("key", key)), name=str(data.get("name", key)))
        return out

    def scope(self, types: Iterable[str]) -> str:
        """The CQL for this Datasource's content. Every user value is quoted; the filter is validated upstream."""
        keys = ", ".join(cql_quote(k) for k in self.spaces)
        space = f"space = {cql_quote(self.spaces[0])}" if len(self.spaces) == 1 else f"space in ({keys})"
        type_list = ", ".join(types)
        cql = f"{space} AND type in ({type_list})"
        if self.cql_filter:
            cql += f" AND ({self.cql_filter})"
        return cql

    async def list_current(self, types: Iterable[str], into: dict[str, str] | None = None) -> AsyncIterator[str]:
        """Ids of current content, as each page of the listing arrives, each once; also kept in `into` (id -> type).

        No expansions: the cheapest listing there is.
        """
        out = {} if into is None else into
        cql = self.scope(types) + " order by id"
        async for item in self.client.paginate("/content/search", {"cql": cql, "limit": ID_PAGE_LIMIT}):
            cid = str(item["id"])
            if item.get("status", "current") == "current" and cid not in out:
                out[cid] = str(item.get("type", "page"))
                yield cid

    async def changed_since(self, types: Iterable[str], since: datetime) -> dict[str, Changed]:
        """Content modified at or after `since`: id -> version, creation time and whether it is still current."""
        out: dict[str, Changed] = {}
        cql = f"{self.scope(types)} AND lastmodified >= {cql_quote(cql_date(since))} order by id"
        params = {"cql": cql, "expand": "version,history", "limit": VERSION_PAGE_LIMIT}
        async for item in self.client.paginate("/content/search", params):
            out[str(item["id"])] = changed_item(item)
        return out

    async def count(self, types: Iterable[str]) -> int | None:
        """How many items the scope holds, as the site's search counts them; None if the site does not say.

        The generic search answers `totalSize` on both editions (Cloud's content search does not).
        """
        try:
            page = await self.client.get_json("/search", {"cql": self.scope(types), "limit": 1})
        except SpaceNotFoundError:  # a site without the generic search
            return None
        except ConfluenceUnavailableError as exc:
            if exc.status_code == 400:
                return None
            raise
        total = page.get("totalSize")
        return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None

    async def _fetch_batch(self, ids: list[str], expand: str | None = None) -> list[dict[str, Any]]:
        """Bodies of one batch; a 504 (large bodies timing out) splits the batch until single items."""
        cql = f"id in ({', '.join(cql_quote(i) for i in ids)})"
        expand = expand or self.content_expand
        try:
            return [
                item
                async for item in self.client.paginate(
                    "/content/search",
                    {"cql": cql, "expand": expand, "limit": len(ids)},
                    fail_fast=GATEWAY_TIMEOUT,
                )
            ]
        except SpaceNotFoundError:
            # CONFCLOUD-77618: one unreadable ancestor fails the batch when ancestors' restrictions are expanded;
            # the items come without them and the permissions step looks the ancestors up.
            if self.fallback_expand is None or expand == self.fallback_expand:
                raise
            return await self._fetch_batch(ids, self.fallback_expand)
        except ConfluenceUnavailableError as exc:
            if exc.status_code != 504 or len(ids) == 1:
                raise
            half = len(ids) // 2
            return await self._fetch_batch(ids[:half], expand) + await self._fetch_batch(ids[half:], expand)

    async def fetch_batches(self, ids: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[list[dict[str, Any]]]:
        """Full items for `ids`, a batch at a time; each id at most once.

        `ids` may still be arriving (a listing in progress): batches start as soon as they are full. Up to
        `concurrency` batches are in flight at any time and a finished batch is handed on at once, so the caller
        maps documents while the next requests are on the wire (a window that waits for its slowest batch would
        leave the connection idle).
        """
        batches = _batched(ids, BODY_BATCH)
        pending: set[asyncio.Task[list[dict[str, Any]]]] = set()
        seen: set[str] = set()
        exhausted = False

        async def refill() -> None:
            nonlocal exhausted
            while not exhausted and len(pending) < self.concurrency:
                batch = await anext(batches, None)
                if batch is None:
                    exhausted = True
                    return
                pending.add(asyncio.create_task(self._fetch_batch(batch)))

        await refill()
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    pending.discard(task)
                await refill()
                for task in done:
                    batch = []
                    for item in task.result():
                        cid = str(item.get("id"))
                        if cid in seen or item.get("status", "current") != "current":
                            continue
                        seen.add(cid)
                        batch.append(item)
                    if batch:
                        yield batch
        finally:
            for task in pending:
                task.cancel()

    async def attachments(self, since: datetime | None = None) -> AsyncIterator[dict[str, Any]]:
        """Current attachments of the scope (modified at or after `since`, if given), with the metadata a document
        needs."""
        cql = self.scope(["attachment"])
        if since is not None:
            cql += f" AND lastmodified >= {cql_quote(cql_date(since))}"
        cql += " order by id"
        seen: set[str] = set()
        async for item in self.client.paginate(
            "/content/search", {"cql": cql, "expand": ATTACHMENT_EXPAND, "limit": VERSION_PAGE_LIMIT}
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

    async def download(self, attachment: dict[str, Any], max_bytes: int) -> bytes:
        return await self.client.get_bytes(self.download_url(attachment), max_bytes=max_bytes)


async def _batched(ids: Iterable[str] | AsyncIterable[str], size: int) -> AsyncIterator[list[str]]:
    batch: list[str] = []
    if isinstance(ids, AsyncIterable):
        async for cid in ids:
            batch.append(cid)
            if len(batch) == size:
                yield batch
                batch = []
    else:
        for cid in ids:
            batch.append(cid)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def changed_item(item: dict[str, Any]) -> Changed:
    history = item.get("history") or {}
    try:
        created = parse_time(history.get("createdDate"))
    except ValueError:
        created = None  # unknown: never counted as created, so a higher count leads to a full listing
    return Changed(
        version=(item.get("version") or {}).get("number"),
        created=created,
        current=item.get("status", "current") == "current",
    )
