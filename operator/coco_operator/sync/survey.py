"""The plan phase: ask Confluence and the index what there is, decide the run's course (`plan.py`), and line up
the bodies to fetch.

A full run starts listing every id and fetching bodies at once; an incremental one reads the changed window and,
when the plan says so, lists every id before choosing what to fetch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from coco_operator.aio import together
from coco_operator.confluence.items import metadata_fingerprint
from coco_operator.confluence.source import METADATA_EXPAND, changed_item
from coco_operator.sync import plan as planning
from coco_operator.sync.attachments import start_extraction_workers
from coco_operator.sync.comments import start_listing
from coco_operator.sync.permissions import INDEXED_FIELDS, SWEEP_EXPAND, Indexed
from coco_operator.sync.request import content_types, counted_types, window_types
from coco_operator.sync.state import FullListing, Item, Listing, Planned, Run, Survey

log = logging.getLogger(__name__)


async def plan_run(run: Run) -> None:
    request = run.request
    if request.watermark is None:
        run.full = FullListing(run.source, content_types(request.spec))
        start_listing(run)
        start_extraction_workers(run)
    run.report("Connecting", 0)
    survey = await _survey(run)
    run.report("Listing", 0)
    plan = planning.plan(
        watermark=request.watermark,
        prior=request.listing,
        now=run.started,
        interval_s=run.settings.prune_interval_seconds,
        total_now=survey.total,
        window=[*survey.changed.values(), *map(changed_item, survey.window_attachments or [])],
    )
    if plan.prune_reason is not None:
        log.info("sync of %s lists every id to find deletions: %s", run.datasource_id, plan.prune_reason)
        start_listing(run)
    run.access.account_swept(run.datasource_id)
    current, listed, bodies = await _bodies(run, plan, survey)
    run.planned = Planned(
        survey=survey, plan=plan, current=current, bodies=run.access.with_readers(bodies), listed=listed
    )


async def _survey(run: Run) -> Survey:
    """Independent first requests go out together: at 50 ms a request, round trips are most of a small run."""
    spaces, total, known = await together(run.source.space_infos(), _count_and_size_workers(run), _prepare_index(run))
    indexed = {doc_id: version for doc_id, (version, _) in known.items()}
    fingerprints = {doc_id: fingerprint for doc_id, (_, fingerprint) in known.items()}
    # Once the spaces are known to exist (a missing one is SpaceNotFound, not a permissions problem): their
    # permissions, and on an incremental run the restrictions sweep (sync/permissions.py), alongside the window.
    watermark = run.request.watermark
    types = content_types(run.request.spec)
    sweep = Listing() if watermark is not None and run.access.active else None
    access = run.access.survey(
        run.request.spec.connector.config.all_spaces(),
        None if sweep is None else listing_items(run, types, SWEEP_EXPAND, sweep),
    )
    if watermark is None:
        await access
        return Survey(spaces=spaces, total=total, indexed=indexed, fingerprints=fingerprints)
    since = watermark - timedelta(seconds=run.settings.incremental_overlap_seconds)
    changed, window, _ = await together(
        run.source.changed_since(window_types(run.request.spec), since), _window_attachments(run, since), access
    )
    return Survey(
        spaces=spaces,
        total=total,
        indexed=indexed,
        fingerprints=fingerprints,
        changed=changed,
        window_attachments=window,
        swept=sweep,
    )


async def _window_attachments(run: Run, since: datetime) -> list[Item] | None:
    if not run.request.spec.connector.config.enable_attachments:
        return None
    return [att async for att in run.source.attachments(since)]


async def _count_and_size_workers(run: Run) -> int | None:
    """The scope's count. A full run fetches every item, so one this large starts its text workers now: they boot
    while the first bodies download."""
    total = await run.source.count(counted_types(run.request.spec))
    if run.full is not None:
        run.use_text_workers_if_large(total)
    return total


async def _prepare_index(run: Run) -> dict[str, tuple[int | None, str | None]]:
    """Create the index or bring its settings up to date (the operator's own settings and the administrator's
    embedder profiles); then what it holds of this Datasource (id -> version and metadata fingerprint, and under
    spec.permissions who may read each document)."""
    embedders = run.request.embedders
    await run.sink.prepare(embedders=dict(embedders) if embedders else None, manage=run.settings.manage_index_settings)
    if not run.access.active:
        return await run.sink.indexed_of(run.datasource_id)
    details: dict[str, dict[str, Any]] = {}
    known = await run.sink.indexed_of(run.datasource_id, details=details, fields=INDEXED_FIELDS)
    run.access.indexed = {doc_id: Indexed.of(doc) for doc_id, doc in details.items()}
    return known


async def _bodies(
    run: Run, plan: planning.Plan, survey: Survey
) -> tuple[dict[str, str] | None, dict[str, planning.Listed] | None, AsyncIterable[list[Item]]]:
    """(every current id once listed, or None; what that listing showed of each; the batches of items to index)."""
    if run.full is not None:
        return run.full.listed, None, run.full.bodies
    types = content_types(run.request.spec)
    # The restrictions sweep is a complete listing with metadata too; without one, list only when the plan says so.
    listing = survey.swept
    if listing is None and plan.lists_every_id:
        listing = await list_with_metadata(run, types)
    ids = planning.wanted(
        run.datasource_id,
        changed=survey.changed,
        indexed=survey.indexed,
        current=listing.current if listing else None,
        listed=listing.listed if listing else None,
        fingerprints=survey.fingerprints,
        types=types,
    )
    # The later phases take the listing as every current id (prune, every attachment and comment) when the plan asks
    # for that, or when the sweep shows an item to index that the window does not explain (a restriction lifted).
    keep = listing is not None and (
        plan.lists_every_id or run.access.newly_indexable(run.datasource_id, survey.indexed, survey.changed)
    )
    current, listed = (listing.current, listing.listed) if listing is not None and keep else (None, None)
    ids = run.access.fetchable(ids)
    run.use_text_workers_if_large(len(ids))
    return current, listed, run.source.fetch_batches(ids)


async def list_with_metadata(run: Run, types: list[str]) -> Listing:
    """Every current item of `types` with its version and metadata fingerprint, so that what changed without a new
    version (labels, moves, renamed ancestors) is fetched again."""
    listing = Listing()
    async for _ in listing_items(run, types, METADATA_EXPAND, listing):
        pass
    return listing


async def listing_items(run: Run, types: list[str], expand: str, into: Listing) -> AsyncIterator[Item]:
    """A complete listing of `types` with `expand` (at least `METADATA_EXPAND`), noted in `into` as it goes. An item
    with an excluded label is left out, so it is pruned (CQL should have left it out already)."""
    async for item in run.source.list_items(types, expand):
        if run.source.content_scope.excluded_label(item) is not None:
            continue
        cid = str(item["id"])
        into.current[cid] = str(item.get("type") or "page")
        into.listed[cid] = planning.Listed((item.get("version") or {}).get("number"), metadata_fingerprint(item))
        yield item
