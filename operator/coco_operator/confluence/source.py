"""The Confluence side of a run: what a space holds, as raw REST items (mapping to documents is elsewhere).

Listing is split so that an unchanged space costs little: ids of everything current (no expansions, the
largest pages a server allows), ids and versions of what changed since the watermark (a CQL `lastmodified`
window), then bodies only for what must be (re)indexed, fetched in bounded-concurrency batches.

Listings ask for `order by created` only as a hint that keeps offset paging stable (an item's creation never
changes; the CQL reference shows ordering by `created` but promises nothing for `id`); a site that refuses the
clause gets the query without it. Correctness never depends on the order: ids are deduplicated, and the listings
that decide deletions keep a `Trail` that the run checks against its count of the scope (`paging`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coco_operator.confluence.client import ConfluenceClient, cql_quote
from coco_operator.confluence.paging import Trail
from coco_operator.confluence.scope import Scope
from coco_operator.errors import ConfluenceUnavailableError, SpaceArchivedError, SpaceNotFoundError, SyncError
from coco_operator.times import parse_time

log = logging.getLogger(__name__)

# Fields a document needs, all in the body fetch so no per-item request is needed.
CONTENT_EXPAND = "body.storage,version,space,history,ancestors,metadata.labels"
# A comment's `ancestors` are the comments it answers; its page's breadcrumbs come with its container.
COMMENT_EXPAND = "body.storage,version,space,history,ancestors,metadata.labels,extensions,container.ancestors"
ATTACHMENT_EXPAND = "version,space,history,container.ancestors,metadata.labels,extensions"
# What a listing needs to tell whether an indexed document is still up to date, without bodies: the version, and
# the metadata Confluence changes without one (labels, moves, titles of ancestors). Title comes with every item.
METADATA_EXPAND = "version,ancestors,metadata.labels"
COMMENT_METADATA_EXPAND = "version,metadata.labels,container.ancestors"
# Ask for more than any server gives; the answer's `limit` is the real page size.
ID_PAGE_LIMIT = 1000
VERSION_PAGE_LIMIT = 200
BODY_BATCH = 50
GATEWAY_TIMEOUT = frozenset({504})
ORDER_HINT = " order by created"
V2_SPACES_LIMIT = 250  # a Datasource names at most 101 spaces: one page


@dataclass(frozen=True)
class SpaceInfo:
    key: str
    name: str
    status: str = "current"


@dataclass(frozen=True)
class Changed:
    """An item of the changed window."""

    version: int | None
    created: datetime | None
    current: bool  # False: archived (or otherwise no longer current) since the last run
    type: str = "page"


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
        exclude_labels: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.spaces = list(dict.fromkeys(spaces))
        self.cql_filter = cql_filter
        self.concurrency = max(1, concurrency)
        self.content_scope = Scope(
            tuple(self.spaces), cql_filter, tuple(label.lower() for label in exclude_labels), cloud=client.site.cloud
        )
        self.trails: list[Trail] = []
        self._ordered = True
        # The permissions step (`sync/permissions.py`) adds the read restrictions of items and their ancestors, and
        # a narrower expand for batches that the ancestors' restrictions make fail (CONFCLOUD-77618).
        self.content_expand = CONTENT_EXPAND
        self.fallback_expand: str | None = None

    async def space_infos(self) -> dict[str, SpaceInfo]:
        """The spaces of the Datasource: on Cloud one REST v2 request (v1 `/space/{key}` is a CHANGE-864 read, 410
        through the gateway), on Data Center one v1 request per space. Raises for a missing or archived space."""
        if self.client.site.cloud:
            params = {"keys": ",".join(self.spaces), "limit": V2_SPACES_LIMIT}
            found = {str(s.get("key")): s async for s in self.client.paginate(self.client.v2_url("/spaces"), params)}
        else:
            found = {}
            for key in self.spaces:
                try:
                    found[key] = await self.client.get_space(key)
                except SpaceNotFoundError:
                    continue
        out = {}
        for key in self.spaces:
            data = found.get(key)
            if data is None:
                raise SpaceNotFoundError(
                    f"space {key!r} does not exist on {self.client.site.base} or the account cannot see it; check "
                    "connector.config.space (the space key, e.g. DOCS, not its name) and the account's space "
                    "permissions"
                )
            out[key] = SpaceInfo(
                key=str(data.get("key", key)), name=str(data.get("name", key)), status=str(data.get("status") or "")
            )
            if out[key].status == "archived":
                raise SpaceArchivedError(
                    f"space {key!r} on {self.client.site.base} is archived: Confluence's content search returns "
                    "nothing for archived spaces, so a sync would find nothing (the index was left as it is). "
                    "Restore the space in Confluence, or remove it from connector.config.space/spaces"
                )
        return out

    def scope(self, types: Iterable[str]) -> str:
        """The CQL for this Datasource's content (`scope.Scope`)."""
        return self.content_scope.cql(types)

    async def search(
        self, cql: str, params: dict[str, Any], *, trail: Trail | None = None, ordered: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """Content search (`/content/search`), ordered by creation when the site accepts it (module docstring)."""
        query = {**params, "cql": cql + (ORDER_HINT if ordered and self._ordered else "")}
        yielded = False
        try:
            async for item in self.client.paginate("/content/search", query, trail=trail):
                yielded = True
                yield item
        except ConfluenceUnavailableError as exc:
            if exc.status_code != 400 or yielded or not (ordered and self._ordered):
                raise
            log.info("%s refuses %r; listing without an order", self.client.site.base, ORDER_HINT.strip())
            self._ordered = False
            async for item in self.client.paginate("/content/search", {**params, "cql": cql}, trail=trail):
                yield item

    def trail(self) -> Trail:
        """A trail for a listing of the whole scope, which the run checks before it deletes anything."""
        self.trails.append(Trail())
        return self.trails[-1]

    @property
    def listed(self) -> int:
        """Distinct items the listings of the whole scope returned so far (any status)."""
        return len(set().union(*(t.ids for t in self.trails)))

    @property
    def unproven(self) -> list[str]:
        """How listings of the whole scope ended without the server saying so (`paging`)."""
        return [t.unproven for t in self.trails if t.unproven]

    async def list_current(self, types: Iterable[str], into: dict[str, str] | None = None) -> AsyncIterator[str]:
        """Ids of current content, as each page of the listing arrives, each once; also kept in `into` (id -> type).

        No expansions: the cheapest listing there is.
        """
        out = {} if into is None else into
        trail = self.trail()
        async for item in self.search(self.scope(types), {"limit": ID_PAGE_LIMIT}, trail=trail):
            if item.get("id") is None:
                continue  # a malformed result: the completeness check counts only what has an id
            cid = str(item["id"])
            if item.get("status", "current") == "current" and cid not in out:
                out[cid] = str(item.get("type", "page"))
                yield cid

    async def list_items(self, types: Iterable[str], expand: str) -> AsyncIterator[dict[str, Any]]:
        """Current items of `types` with `expand`, each once: a complete listing that carries metadata.

        Expansions make servers cap pages lower (Data Center: 200 instead of 1000; Cloud keeps 1000 without bodies).
        """
        seen: set[str] = set()
        trail = self.trail()
        async for item in self.search(self.scope(types), {"expand": expand, "limit": ID_PAGE_LIMIT}, trail=trail):
            if item.get("id") is None:
                continue  # a malformed result: the completeness check counts only what has an id
            cid = str(item["id"])
            if cid in seen or item.get("status", "current") != "current":
                continue
            seen.add(cid)
            yield item

    async def changed_since(self, types: Iterable[str], since: datetime) -> dict[str, Changed]:
        """Content modified at or after `since`: id -> version, creation time and whether it is still current."""
        out: dict[str, Changed] = {}
        cql = self.content_scope.where(types, f"lastmodified >= {cql_quote(cql_date(since))}")
        async for item in self.search(cql, {"expand": "version,history", "limit": VERSION_PAGE_LIMIT}):
            if item.get("id") is not None:
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
            if self.fallback_expand is None or expand != self.content_expand:
                raise
            return await self._fetch_batch(ids, self.fallback_expand)
        except ConfluenceUnavailableError as exc:
            if exc.status_code != 504 or len(ids) == 1:
                raise
            half = len(ids) // 2
            return await self._fetch_batch(ids[:half], expand) + await self._fetch_batch(ids[half:], expand)

    async def fetch_batches(
        self, ids: Iterable[str] | AsyncIterable[str], expand: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
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
                pending.add(asyncio.create_task(self._fetch_batch(batch, expand)))

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
            cql = self.content_scope.where(["attachment"], f"lastmodified >= {cql_quote(cql_date(since))}")
        seen: set[str] = set()
        trail = self.trail() if since is None else None
        params = {"expand": ATTACHMENT_EXPAND, "limit": VERSION_PAGE_LIMIT}
        async for item in self.search(cql, params, trail=trail):
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
        type=str(item.get("type") or "page"),
    )
