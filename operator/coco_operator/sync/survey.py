"""The plan phase: ask Confluence and the index what there is, decide the run's course (`plan.py`), and line up
the bodies to fetch.

A full run starts listing every id and fetching bodies at once; an incremental one reads the changed window and,
when the plan says so, lists every id before choosing what to fetch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from datetime import timedelta

from coco_operator.aio import together
from coco_operator.confluence.items import metadata_fingerprint
from coco_operator.confluence.source import METADATA_EXPAND, changed_item
from coco_operator.sync import plan as planning
from coco_operator.sync.attachments import start_extraction_workers
from coco_operator.sync.comments import start_listing
from coco_operator.sync.request import content_types, counted_types, window_types
from coco_operator.sync.state import FullListing, Item, Planned, Run, Survey

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
    current, listed, bodies = await _bodies(run, plan, survey)
    run.planned = Planned(survey=survey, plan=plan, current=current, bodies=bodies, listed=listed)


async def _survey(run: Run) -> Survey:
    """Independent first requests go out together: at 50 ms a request, round trips are most of a small run."""
    spaces, total, known = await together(run.source.space_infos(), _count_and_size_workers(run), _prepare_index(run))
    indexed = {doc_id: version for doc_id, (version, _) in known.items()}
    fingerprints = {doc_id: fingerprint for doc_id, (_, fingerprint) in known.items()}
    watermark = run.request.watermark
    if watermark is None:
        return Survey(spaces=spaces, total=total, indexed=indexed, fingerprints=fingerprints)
    since = watermark - timedelta(seconds=run.settings.incremental_overlap_seconds)
    changed = await run.source.changed_since(window_types(run.request.spec), since)
    window: list[Item] | None = None
    if run.request.spec.connector.config.enable_attachments:
        window = [att async for att in run.source.attachments(since)]
    return Survey(
        spaces=spaces,
        total=total,
        indexed=indexed,
        fingerprints=fingerprints,
        changed=changed,
        window_attachments=window,
    )


async def _count_and_size_workers(run: Run) -> int | None:
    """The scope's count. A full run fetches every item, so one this large starts its text workers now: they boot
    while the first bodies download."""
    total = await run.source.count(counted_types(run.request.spec))
    if run.full is not None:
        run.use_text_workers_if_large(total)
    return total


async def _prepare_index(run: Run) -> dict[str, tuple[int | None, str | None]]:
    """Create the index or bring its settings up to date (the operator's own settings and the administrator's
    embedder profiles); then what it holds of this Datasource (id -> version and metadata fingerprint)."""
    embedders = run.request.embedders
    await run.sink.prepare(embedders=dict(embedders) if embedders else None, manage=run.settings.manage_index_settings)
    return await run.sink.indexed_of(run.datasource_id)


async def _bodies(
    run: Run, plan: planning.Plan, survey: Survey
) -> tuple[dict[str, str] | None, dict[str, planning.Listed] | None, AsyncIterable[list[Item]]]:
    """(every current id once listed, or None; what that listing showed of each; the batches of items to index)."""
    if run.full is not None:
        return run.full.listed, None, run.full.bodies
    types = content_types(run.request.spec)
    current: dict[str, str] | None = None
    listed: dict[str, planning.Listed] | None = None
    if plan.lists_every_id:
        current, listed = await list_with_metadata(run, types)
    ids = planning.wanted(
        run.datasource_id,
        changed=survey.changed,
        indexed=survey.indexed,
        current=current,
        listed=listed,
        fingerprints=survey.fingerprints,
        types=types,
    )
    run.use_text_workers_if_large(len(ids))
    return current, listed, run.source.fetch_batches(ids)


async def list_with_metadata(run: Run, types: list[str]) -> tuple[dict[str, str], dict[str, planning.Listed]]:
    """Every current item of `types` with its version and metadata fingerprint, so that what changed without a new
    version (labels, moves, renamed ancestors) is fetched again. An item with an excluded label is left out of the
    listing, so it is pruned (CQL should have left it out already)."""
    current: dict[str, str] = {}
    listed: dict[str, planning.Listed] = {}
    async for item in run.source.list_items(types, METADATA_EXPAND):
        if run.source.content_scope.excluded_label(item) is not None:
            continue
        cid = str(item["id"])
        current[cid] = str(item.get("type") or "page")
        listed[cid] = planning.Listed((item.get("version") or {}).get("number"), metadata_fingerprint(item))
    return current, listed
