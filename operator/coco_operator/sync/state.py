"""One run's state: what it was asked, the clients it uses, what the plan phase settled and what it has done.

Phases (`run.py`) read and extend this one object in order; nothing else is shared between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from coco_operator.aio import Prefetch
from coco_operator.confluence.client import ConfluenceClient
from coco_operator.confluence.source import Changed, ConfluenceSource, SpaceInfo
from coco_operator.confluence.text_workers import TextWorkers
from coco_operator.documents import MappingContext
from coco_operator.egress import webhook_policy
from coco_operator.enrich import EnrichContext, EnrichingWriter
from coco_operator.settings import Settings
from coco_operator.sync.permissions import RunAccess
from coco_operator.sync.plan import Listed, Plan, large
from coco_operator.sync.request import Progress, SyncRequest

ENRICH_BATCH = 100  # documents per enrichment batch (and per webhook call)
Item = dict[str, Any]  # a Confluence REST item


class Sink(Protocol):
    """Where documents go (`search.sink.MeiliSink`)."""

    async def prepare(self, embedders: dict[str, Any] | None = None, *, manage: bool = True) -> None: ...
    async def indexed_of(
        self, datasource_id: str, *, details: dict[str, dict[str, Any]] | None = None, fields: Iterable[str] = ()
    ) -> dict[str, tuple[int | None, str | None]]: ...
    async def add(self, document: dict[str, Any]) -> None: ...
    async def update_fields(self, documents: list[dict[str, Any]]) -> None: ...
    async def flush(self) -> None: ...
    async def delete(self, ids: Iterable[str]) -> int: ...
    async def count(self, datasource_id: str) -> int: ...


@dataclass
class Tally:
    """What the run has done so far, counted as it goes."""

    pages: int = 0
    blogposts: int = 0
    attachments: int = 0
    comments: int = 0
    tree_items: int = 0  # folders, whiteboards, databases, smart links
    skipped: int = 0
    deleted: int = 0
    skipped_items: list[str] = field(default_factory=list)  # "title: why", for status
    attachment_ids: set[str] = field(default_factory=set)  # document ids of the attachments found current
    comment_ids: set[str] = field(default_factory=set)  # document ids of the comments found current and in scope
    written_ids: set[str] = field(default_factory=set)  # document ids of the pages, blog posts ... written
    excluded_ids: set[str] = field(default_factory=set)  # document ids left out here (a label, their page): pruned

    @property
    def items(self) -> int:
        """Documents written so far (the progress count)."""
        return self.pages + self.blogposts + self.attachments + self.comments + self.tree_items

    def indexed(self, doc_type: str) -> None:
        if doc_type == "attachment":
            self.attachments += 1
        elif doc_type == "blogpost":
            self.blogposts += 1
        elif doc_type == "comment":
            self.comments += 1
        elif doc_type == "page":
            self.pages += 1
        else:
            self.tree_items += 1

    def skip(self, item: str) -> None:
        self.skipped += 1
        self.skipped_items.append(item)


@dataclass
class Listing:
    """A complete listing of the scope's current items with their metadata (no bodies)."""

    current: dict[str, str] = field(default_factory=dict)  # content id -> type
    listed: dict[str, Listed] = field(default_factory=dict)  # content id -> version and metadata fingerprint


@dataclass(frozen=True)
class Survey:
    """What the first requests found."""

    spaces: Mapping[str, SpaceInfo]
    total: int | None  # items in scope now, as the site counts them (None: it did not say)
    indexed: Mapping[str, int | None]  # document id -> Confluence version, of what the index holds
    fingerprints: Mapping[str, str | None] = field(default_factory=dict)  # document id -> its metadata fingerprint
    changed: Mapping[str, Changed] = field(default_factory=dict)  # incremental: content of the changed window
    window_attachments: list[Item] | None = None  # incremental with attachments: attachments of the window
    swept: Listing | None = None  # incremental under spec.permissions: the restrictions sweep, a complete listing


@dataclass(frozen=True)
class ListedComment:
    """A comment as the complete listing of comments showed it (no body)."""

    id: str
    container: str | None  # the page or blog post it belongs to
    version: int | None
    fingerprint: str
    excluded: bool  # carries an excluded label itself


@dataclass(frozen=True)
class Planned:
    """What the plan phase settled for the phases after it."""

    survey: Survey
    plan: Plan
    current: dict[str, str] | None  # id -> type of every current item once listed (None: no complete listing)
    bodies: AsyncIterable[list[Item]]  # the items to index, a batch at a time
    listed: Mapping[str, Listed] | None = None  # id -> version and fingerprint, when the listing carried metadata


class FullListing:
    """A full run's listing of every id, and the bodies of what it lists so far, fetched a few batches ahead.

    Started with the run, so the first body requests go out alongside its first other requests.
    """

    def __init__(self, source: ConfluenceSource, types: list[str]) -> None:
        self.listed: dict[str, str] = {}  # id -> type; complete once `bodies` is exhausted
        self.complete = False  # the listing ran to its end
        self.bodies = Prefetch(source.fetch_batches(self._listing(source, types)), maxsize=source.concurrency)

    async def _listing(self, source: ConfluenceSource, types: list[str]) -> AsyncIterator[str]:
        async for cid in source.list_current(types, into=self.listed):
            yield cid
        self.complete = True

    async def aclose(self) -> None:
        await self.bodies.aclose()


class Run:
    def __init__(
        self,
        request: SyncRequest,
        settings: Settings,
        *,
        started: datetime,
        client: ConfluenceClient,
        source: ConfluenceSource,
        sink: Sink,
        workers: TextWorkers,
        report: Progress,
    ) -> None:
        self.request = request
        self.settings = settings
        self.started = started
        self.client = client
        self.source = source
        self.sink = sink
        self.workers = workers
        self.report = report
        self.tally = Tally()
        # Who may read each document (spec.permissions); set again after enrichment, which cannot widen it.
        self.access = RunAccess(request.spec.permissions.mode, client, source, self.tally.skip)
        self.writer = EnrichingWriter(
            request.spec.enrichment,
            EnrichContext(
                datasource_id=request.datasource_id,
                datasource_name=request.spec.name,
                labels=request.labels,
                tokens=request.enrichment_tokens,
                egress=webhook_policy(settings),
            ),
            self.access.guard(sink.add),
            batch_size=ENRICH_BATCH,
        )
        self.full: FullListing | None = None
        # The comments of the scope, listed alongside the content (`comments.start_listing`) when the run lists
        # every id; the comments phase waits for it.
        self.comment_listing: asyncio.Task[list[ListedComment]] | None = None
        self.text_workers_on = False
        self.extraction_boot: asyncio.Task[None] | None = None  # extraction processes booting (full runs)
        self._planned: Planned | None = None

    @property
    def datasource_id(self) -> str:
        return self.request.datasource_id

    @property
    def has_plan(self) -> bool:
        return self._planned is not None

    @property
    def planned(self) -> Planned:
        if self._planned is None:
            raise RuntimeError("the plan phase has not run")
        return self._planned

    @planned.setter
    def planned(self, value: Planned) -> None:
        self._planned = value

    def use_text_workers_if_large(self, items: int | None) -> None:
        """Hand text conversion to worker processes for a run this large; they start booting now."""
        if not self.text_workers_on and large(self.settings.text_workers, items):
            self.text_workers_on = True
            self.workers.start()

    def text_skipped(self, item: Mapping[str, Any], problem: str) -> None:
        """A body that made a text worker exceed its limits: indexed by title and metadata, named in status."""
        self.tally.skip(f"{item.get('title') or item.get('id')}: {problem}; indexed by title and metadata only")

    def mapping_context(self, item: Mapping[str, Any]) -> MappingContext:
        """The space of the item itself (a Datasource may span several spaces)."""
        raw = item.get("space")
        space: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        key = str(space.get("key") or self.request.spec.connector.config.space)
        info = self.planned.survey.spaces.get(key)
        return MappingContext(
            datasource_id=self.datasource_id,
            datasource_name=self.request.spec.name,
            site_base=self.client.site.base,
            space_key=key,
            space_name=str(space.get("name") or (info.name if info else key)),
        )
