"""The permissions step of a run (`spec.permissions.mode`, README "Permissions"): who may read each document.

Every document gets a `permissions` object (`permissions/readers.py`) before enrichment, and gets it again after
(a pipeline cannot widen it). What it needs, and what it costs in Confluence requests:

- the view permission of each space, once per run (`confluence/space_access.py`: Cloud 2, Data Center 2);
- the read restrictions of each item and its ancestors, in the body fetch itself (an expand: no extra request),
  looked up by id only for what the answer lacks (CONFCLOUD-77618, containers outside the scope);
- on an incremental run, a restrictions sweep of the scope (a listing with `SWEEP_EXPAND`: one request per 1,000
  items on Cloud, per 200 on Data Center), because a restriction changes without a new version. Documents whose readers
  changed get their `permissions` replaced in place (`reconcile`, after the attachments phase): no body, no
  download. The sweep is a complete listing, so a run that must list every id uses it instead.

Attachments (and comments) take their container's readers: `stamp(doc, container_id)`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coco_operator.aio import together
from coco_operator.confluence import restrictions as fetch
from coco_operator.confluence.client import ConfluenceClient
from coco_operator.confluence.restrictions import Own, Swept
from coco_operator.confluence.source import CONTENT_EXPAND, METADATA_EXPAND, ConfluenceSource
from coco_operator.confluence.space_access import SpaceReaders, space_readers
from coco_operator.documents import document_id
from coco_operator.permissions.readers import FIELD, Grant
from coco_operator.permissions.verdict import FINGERPRINT, FINGERPRINT_PATH, PUBLIC_FIELD, Mode, Verdict, decide

log = logging.getLogger(__name__)
Item = dict[str, Any]
Write = Callable[[dict[str, Any]], Awaitable[None]]
# The sweep is also the run's listing with metadata (sync/survey.py), so it carries what that needs.
SWEEP_EXPAND = f"{METADATA_EXPAND},{fetch.OWN_EXPAND},space"
INDEXED_FIELDS = ("title", FINGERPRINT_PATH)  # read with each document's id and metadata at the start of a run
GONE = Verdict(None, restricted=False, reason="not indexed: its page or blog post cannot be found")


@dataclass(frozen=True)
class Indexed:
    """What a run needs of a document already in the index."""

    title: str
    container: str | None  # the content id whose readers it carries (itself, or an attachment's page)
    fingerprint: str | None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Indexed:
        meta = _mapping(doc.get("metadata"))
        perms = _mapping(doc.get(FIELD))
        container = meta.get("container_id") or meta.get("content_id")
        return cls(str(doc.get("title") or ""), str(container) if container else None, perms.get(FINGERPRINT))


_WARNED: set[str] = set()  # notes already logged by this process: a fact of a space, not news at every run
MAX_WARNED = 10_000


def _warn_once(note: str) -> None:
    if note not in _WARNED:
        if len(_WARNED) < MAX_WARNED:
            _WARNED.add(note)
        log.warning("permissions: %s", note)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


class RunAccess:
    """One run's knowledge of who may read what, and the documents it decided about."""

    def __init__(
        self, mode: Mode, client: ConfluenceClient, source: ConfluenceSource, skip: Callable[[str], None]
    ) -> None:
        self.mode = mode
        self.client = client
        self.source = source
        self._skip = skip
        self.spaces: dict[str, SpaceReaders] = {}
        self._own: dict[str, Grant] = {}  # content id -> its own read restriction (empty Grant: none)
        self._unreadable: set[str] = set()  # content ids whose restrictions could not be read
        self._chain: dict[str, tuple[str, ...]] = {}  # content id -> ancestor ids, root first
        self._space_of: dict[str, str] = {}
        self._verdicts: dict[str, Verdict] = {}
        self.swept: dict[str, Swept] | None = None  # incremental runs: every current item of the scope
        self.indexed: dict[str, Indexed] = {}  # doc id -> what the index holds (permission modes)
        self.withheld: set[str] = set()  # doc ids that must not be in the index
        self.restricted: set[str] = set()  # doc ids of items with a read restriction on them or an ancestor
        self.written: set[str] = set()
        self._fields: dict[str, dict[str, Any]] = {}  # doc id -> its permissions, until enrichment is done
        if mode != "none":
            source.content_expand = f"{CONTENT_EXPAND},{fetch.OWN_EXPAND},{fetch.ANCESTORS_EXPAND}"
            source.fallback_expand = f"{CONTENT_EXPAND},{fetch.OWN_EXPAND}"

    @property
    def active(self) -> bool:
        return self.mode != "none"

    # -- what the run learns ------------------------------------------------------------------------------------
    async def survey(self, spaces: Iterable[str], sweep: AsyncIterable[Item] | None) -> None:
        """Space permissions; on an incremental run also the restrictions sweep: `sweep` lists every current item of
        the scope with `SWEEP_EXPAND`. Plan phase."""
        if not self.active:
            return
        keys = list(spaces)
        answers = await together(*(space_readers(self.client, key) for key in keys))
        for key, answer in zip(keys, answers, strict=True):
            self.spaces[key] = answer
            for note in answer.notes:
                _warn_once(note)
        if sweep is None:
            return
        self.swept = {}
        async for item in sweep:
            cid = str(item["id"])
            self.swept[cid] = found = fetch.swept(item, cloud=self.client.site.cloud)
            self._learn_swept(cid, found)
        await self._resolve_ancestors(self.swept)

    def _learn_swept(self, cid: str, item: Swept) -> None:
        self._verdicts.pop(cid, None)
        self._chain[cid] = item.ancestors
        if item.space_key:
            self._space_of[cid] = item.space_key
        self._set_own(cid, item.own)

    def _set_own(self, cid: str, own: Own) -> None:
        if own is not None:
            self._own[cid] = own
            self._unreadable.discard(cid)

    def learn(self, item: Mapping[str, Any]) -> None:
        """An item fetched with the restrictions expand: its own and its ancestors' restrictions."""
        cid = str(item["id"])
        cloud = self.client.site.cloud
        self._chain[cid] = fetch.ancestor_ids(item)
        space = item.get("space")
        if isinstance(space, dict) and space.get("key"):
            self._space_of[cid] = str(space["key"])
        self._set_own(cid, fetch.own_read(item, cloud=cloud))
        for ancestor in item.get("ancestors") or []:
            # An ancestor's restriction is the same in every answer of a run: parsed once.
            if isinstance(ancestor, dict) and ancestor.get("id") is not None and str(ancestor["id"]) not in self._own:
                self._set_own(str(ancestor["id"]), fetch.own_read(ancestor, cloud=cloud))
        self._verdicts.pop(cid, None)

    async def with_readers(self, batches: AsyncIterable[list[Item]]) -> AsyncIterator[list[Item]]:
        """The body batches, each once its items' and their ancestors' restrictions are known (index phase)."""
        async for batch in batches:
            if self.active:
                for item in batch:
                    self.learn(item)
                await self._resolve_ancestors(str(item["id"]) for item in batch)
            yield batch

    async def know_containers(self, ids: Iterable[str]) -> None:
        """Make sure the readers of these containers are known: one lookup for those that are not."""
        if not self.active:
            return
        unknown = sorted({c for c in ids if c and c not in self._chain})
        if unknown:
            found = await fetch.lookup_items(self.client, unknown)
            for cid, item in found.items():
                self._learn_swept(cid, item)
            await self._resolve_ancestors(found)

    async def _resolve_ancestors(self, ids: Iterable[str]) -> None:
        levels = {c for cid in ids for c in (cid, *self._chain.get(cid, ()))}
        missing = [c for c in levels if c not in self._own and c not in self._unreadable]
        if not missing:
            return
        for cid, own in (await fetch.lookup_own(self.client, missing)).items():
            if own is None:
                self._unreadable.add(cid)
            else:
                self._own[cid] = own
        self._verdicts.clear()

    # -- decisions --------------------------------------------------------------------------------------------
    def verdict(self, container: str | None) -> Verdict:
        """Who may read documents whose readers are those of content `container` (None: an unknown container)."""
        if not self.active:
            return decide("none", Grant(), ())
        key = container or ""
        cached = self._verdicts.get(key)
        if cached is not None:
            return cached
        verdict = GONE if container is None or container not in self._chain else self._decide(container)
        self._verdicts[key] = verdict
        return verdict

    def _decide(self, cid: str) -> Verdict:
        space = self.spaces.get(self._space_of.get(cid, ""))
        levels: list[Grant] = []
        unreadable: str | None = None
        for level in (cid, *reversed(self._chain[cid])):
            own = self._own.get(level)
            if own is None:
                unreadable = "the item" if level == cid else f"its ancestor {level}"
                break
            levels.append(own)
        if space is None:
            unreadable = "its space (not one of the Datasource's spaces)"
        return decide(self.mode, space.grant if space else Grant(), levels, unreadable=unreadable)

    def admit(self, doc_id: str, title: str, container: str | None) -> bool:
        """Whether a document with `container`'s readers may be indexed; if not, it is counted as skipped."""
        return self._field(doc_id, title, container) is not None

    def _field(self, doc_id: str, title: str, container: str | None) -> dict[str, Any] | None:
        verdict = self.verdict(container)
        if verdict.restricted:
            self.restricted.add(doc_id)
        if verdict.field is None:
            self.withhold(doc_id, title or doc_id, verdict)
        return verdict.field

    def stamp(self, doc: dict[str, Any], container: str | None) -> bool:
        """Give `doc` its `permissions` (those of content `container`: the item itself, or an attachment's or a
        comment's page); False, counted as skipped with why, when it must not be indexed."""
        doc_id = str(doc["id"])
        field = self._field(doc_id, str(doc.get("title") or ""), container)
        if field is None:
            return False
        doc[FIELD] = field
        self._fields[doc_id] = field
        self.written.add(doc_id)
        return True

    def withhold(self, doc_id: str, title: str, verdict: Verdict, *, count: bool = True) -> None:
        if doc_id not in self.withheld:
            self.withheld.add(doc_id)
            if count:
                self._skip(f"{title}: {verdict.reason}")

    def guard(self, write: Write) -> Write:
        """`write` with each document's permissions set again after enrichment (a pipeline cannot change them)."""

        async def guarded(doc: dict[str, Any]) -> None:
            field = self._fields.pop(str(doc.get("id")), None)
            if field is None and not self.active:
                field = PUBLIC_FIELD
            await write(doc if field is None else {**doc, FIELD: field})

        return guarded

    # -- incremental runs ---------------------------------------------------------------------------------------
    def account_swept(self, datasource_id: str) -> None:
        """Every swept item's verdict: restricted ones counted, left-out ones withheld and counted as skipped."""
        for cid, item in (self.swept or {}).items():
            verdict = self.verdict(cid)
            did = document_id(datasource_id, cid)
            if verdict.restricted:
                self.restricted.add(did)
            if verdict.field is None:
                self.withhold(did, item.title, verdict)

    def fetchable(self, ids: list[str]) -> list[str]:
        """`ids` without the items the sweep shows must not be indexed."""
        if self.swept is None:
            return ids
        return [cid for cid in ids if self.verdict(cid).field is not None]

    def newly_indexable(self, datasource_id: str, indexed: Mapping[str, object], changed: Iterable[str]) -> bool:
        """Whether the sweep shows an item to index that the index lacks and the changed window does not explain
        (a restriction lifted): its attachments are then found only by listing them all."""
        window = set(changed)
        return any(
            cid not in window and document_id(datasource_id, cid) not in indexed and self.verdict(cid).field is not None
            for cid in self.swept or {}
        )


async def reconcile(access: RunAccess, update: Callable[[list[dict[str, Any]]], Awaitable[None]]) -> None:
    """After an incremental run's writes: documents it did not rewrite get the readers the sweep shows, in place
    (`update` replaces only their `permissions`); documents that must no longer be indexed are withheld."""
    if access.swept is None:
        return
    todo = {did: info for did, info in access.indexed.items() if did not in access.written | access.withheld}
    await access.know_containers(info.container for info in todo.values() if info.container)
    changes: list[dict[str, Any]] = []
    for did, info in todo.items():
        verdict = access.verdict(info.container)
        if verdict.restricted:
            access.restricted.add(did)
        if verdict.field is None:
            # An item that is gone is pruned without a word; one that is now left out is counted as skipped.
            access.withhold(did, info.title, verdict, count=verdict is not GONE)
        elif verdict.fingerprint != info.fingerprint:
            changes.append({"id": did, FIELD: verdict.field})
    if changes:
        await update(changes)
        log.info("permissions: readers of %d documents changed without a new version; updated in place", len(changes))
