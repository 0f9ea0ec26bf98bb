"""What a run will do, decided from what it knows. Pure functions, no I/O: full or incremental, whether it lists
every id to find deletions, which items it fetches, and which documents it deletes.

A CQL `lastmodified` window finds new and edited content but not content that went away (trashed, purged, moved
to another space, restricted). Finding that takes a listing of every id in scope: cheap per item, but one request
per 1,000 items on every run. Instead each run asks the site how many items the scope holds (one request) and
compares it with the last run's count plus what was created since: any difference means something left (or came
back) and the run lists everything. A full listing also runs at least every `prune_interval_seconds`, for changes a
count cannot see (one item leaving while another arrives unnoticed).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from coco_operator.confluence.source import Changed
from coco_operator.confluence.text_workers import MIN_ITEMS
from coco_operator.documents import document_id
from coco_operator.times import format_duration


@dataclass(frozen=True)
class Listing:
    """What the next run needs to know about the last complete listing, kept in status."""

    last_prune: datetime | None = None  # start of the last run that listed every id and pruned
    total: int | None = None  # items the scope held at the last successful run (the site's CQL count)


@dataclass(frozen=True)
class Plan:
    """The run's course, decided once the first requests have answered."""

    incremental: bool
    prune_reason: str | None  # why this run lists every id (None: the count shows nothing left the scope)

    @property
    def lists_every_id(self) -> bool:
        return self.prune_reason is not None


def plan(
    *,
    watermark: datetime | None,
    prior: Listing,
    now: datetime,
    interval_s: int,
    total_now: int | None,
    window: Iterable[Changed],
) -> Plan:
    """Full without a watermark, else incremental; a full listing when `prune_reason` says one is needed.

    `window` is what the changed window (content and attachments) showed; its items created since the watermark
    explain a higher count.
    """
    incremental = watermark is not None
    reason = prune_reason(
        incremental=incremental,
        prior=prior,
        now=now,
        interval_s=interval_s,
        total_now=total_now,
        created=created_since(watermark, window),
    )
    return Plan(incremental=incremental, prune_reason=reason)


def prune_reason(
    *,
    incremental: bool,
    prior: Listing,
    now: datetime,
    interval_s: int,
    total_now: int | None,
    created: int,
) -> str | None:
    """Why this run lists every id, or None when the count shows nothing left the scope.

    `created` is how many items of the changed window were created since the last run started: they explain a
    higher count. Items created while the last run was counting are counted twice and cause a listing, never a
    missed deletion.
    """
    if not incremental:
        return "full sync"
    if interval_s <= 0:
        return "every run lists all ids (prune interval 0)"
    if prior.last_prune is None:
        return "no complete listing recorded yet"
    age = (now - prior.last_prune).total_seconds()
    if age >= interval_s:
        return f"last complete listing {format_duration(age)} ago (prune interval {format_duration(interval_s)})"
    if prior.total is None or total_now is None:
        return "the site did not say how many items the scope holds"
    expected = prior.total + created
    if total_now != expected:
        return (
            f"the scope holds {total_now} items where {expected} were expected ({prior.total} at the last run, "
            f"{created} created since)"
        )
    return None


def created_since(watermark: datetime | None, items: Iterable[Changed]) -> int:
    """Items created since the last run started: they, not a restore or a move, explain a higher count."""
    if watermark is None:
        return 0
    return sum(1 for item in items if item.created is not None and item.created >= watermark)


@dataclass(frozen=True)
class Listed:
    """An item as a complete listing that carried metadata showed it."""

    version: int | None
    fingerprint: str  # `items.metadata_fingerprint`: title, labels, breadcrumbs


def wanted(
    datasource_id: str,
    *,
    changed: Mapping[str, Changed],
    indexed: Mapping[str, int | None],
    current: Collection[str] | None,
    listed: Mapping[str, Listed] | None = None,
    fingerprints: Mapping[str, str | None] | None = None,
    types: Collection[str] | None = None,
) -> list[str]:
    """Content ids an incremental run fetches, in id order: what changed to a version the index lacks, and, once
    every id is listed (`current`), anything current the index lacks; never an id the listing no longer has.

    A listing that carried metadata (`listed`) also brings back what the index holds at another version or with
    other metadata (`fingerprints`: document id -> the indexed fingerprint): labels, moves and renamed ancestors
    that left the version alone. `types` limits the changed window to those types (it may hold comments too).
    """
    ids = {
        cid
        for cid, ch in changed.items()
        if ch.current
        and (types is None or ch.type in types)
        and indexed.get(document_id(datasource_id, cid)) != ch.version
    }
    if current is not None:
        ids |= {cid for cid in current if document_id(datasource_id, cid) not in indexed}
        if listed is not None:
            ids |= {
                cid
                for cid, item in listed.items()
                if not up_to_date(document_id(datasource_id, cid), item, indexed, fingerprints or {})
            }
        ids &= set(current)
    return sorted(ids, key=_numeric)


def up_to_date(
    doc_id: str, item: Listed, indexed: Mapping[str, int | None], fingerprints: Mapping[str, str | None]
) -> bool:
    """The index holds this item at its version and with its metadata."""
    return doc_id in indexed and indexed[doc_id] == item.version and fingerprints.get(doc_id) == item.fingerprint


def unchanged(
    incremental: bool,
    indexed: Mapping[str, int | None],
    doc_id: str,
    version: object,
    *,
    fingerprints: Mapping[str, str | None] | None = None,
    fingerprint: str | None = None,
) -> bool:
    """An item an incremental run need not fetch again: the index holds it at this version (and, when given, with
    this metadata fingerprint)."""
    if not (incremental and doc_id in indexed and indexed[doc_id] == version):
        return False
    return fingerprint is None or (fingerprints or {}).get(doc_id) == fingerprint


def stale(
    datasource_id: str,
    *,
    indexed: Collection[str],
    seen: Collection[str] | None,
    changed: Mapping[str, Changed],
    dropped: Collection[str],
) -> set[str]:
    """Document ids to delete. With a complete listing (`seen`: every document id the run found current), whatever
    the index has beyond it; without one, only what the window shows is no longer current. Either way also what
    enrichment now leaves out (still current, so pruning alone would keep it)."""
    if seen is not None:
        gone = set(indexed) - set(seen)
    else:
        gone = {document_id(datasource_id, cid) for cid, ch in changed.items() if not ch.current} & set(indexed)
    return gone | (set(dropped) & set(indexed))


def deletion_cap(indexed: int, fraction: float, floor: int) -> int:
    """Deletions one run may make: a fraction of the Datasource's indexed documents, at least `floor`."""
    return max(floor, math.floor(indexed * fraction))


def mass_deletion(*, deleting: int, indexed: int, listed: int | None, fraction: float, floor: int) -> str | None:
    """Why deleting `deleting` of `indexed` documents needs the Datasource's confirmation, or None.

    `listed` is how many items the run's complete listing found (None: the run did not list every id). An empty
    listing of a scope whose documents are indexed deletes nothing, whatever the cap: a site that answers "nothing"
    for a moment (a permission change, a broken search index) must not empty the index.
    """
    if deleting == 0:
        return None
    if listed == 0 and indexed > 0:
        return f"Confluence listed no items in scope, while the index holds {indexed} documents of this Datasource"
    cap = deletion_cap(indexed, fraction, floor)
    if deleting > cap:
        return (
            f"the run would delete {deleting} of the {indexed} documents of this Datasource, more than the "
            f"operator's cap of {cap} per run ({fraction:.0%} of the documents, at least {floor})"
        )
    return None


def large(text_workers: int, items: int | None) -> bool:
    """Whether a run converts text in worker processes: it has them configured and this many items (unknown:
    assume many) to convert."""
    return text_workers > 0 and (items is None or items >= MIN_ITEMS)


def _numeric(cid: str) -> tuple[int, str]:
    digits = "".join(ch for ch in cid if ch.isdigit())
    return (int(digits) if digits else 0, cid)
