"""The plan phase: ask Confluence and the index what there is, decide the run's course (`plan.py`), and line up
the bodies to fetch.

A full run starts listing every id and fetching bodies at once; an incremental one reads the changed window and,
when the plan says so, lists every id before choosing what to fetch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from datetime import datetime, timedelta
from typing import Any

from coco_operator.aio import together
from coco_operator.api.enrichment import meili_embedders
from coco_operator.confluence.source import changed_item
from coco_operator.sync import plan as planning
from coco_operator.sync.permissions import INDEXED_FIELDS, Indexed
from coco_operator.sync.request import content_types
from coco_operator.sync.state import FullListing, Item, Planned, Run, Survey

log = logging.getLogger(__name__)


async def plan_run(run: Run) -> None:
    request = run.request
    if request.watermark is None:
        run.full = FullListing(run.source, content_types(request.spec))
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
    run.access.account_swept(run.datasource_id)
    current, bodies = await _bodies(run, plan, survey)
    run.planned = Planned(survey=survey, plan=plan, current=current, bodies=run.access.with_readers(bodies))


async def _survey(run: Run) -> Survey:
    """Independent first requests go out together: at 50 ms a request, round trips are most of a small run."""
    spaces, total, indexed = await together(run.source.space_infos(), _count_and_size_workers(run), _prepare_index(run))
    # Once the spaces are known to exist (a missing one is SpaceNotFound, not a permissions problem): their
    # permissions, and on an incremental run the restrictions sweep (sync/permissions.py), alongside the window.
    watermark = run.request.watermark
    types = content_types(run.request.spec)
    access = run.access.survey(
        run.request.spec.connector.config.all_spaces(), run.source.scope(types) if watermark else None
    )
    if watermark is None:
        await access
        return Survey(spaces=spaces, total=total, indexed=indexed)
    since = watermark - timedelta(seconds=run.settings.incremental_overlap_seconds)
    changed, window, _ = await together(run.source.changed_since(types, since), _window_attachments(run, since), access)
    return Survey(spaces=spaces, total=total, indexed=indexed, changed=changed, window_attachments=window)


async def _window_attachments(run: Run, since: datetime) -> list[Item] | None:
    if not run.request.spec.connector.config.enable_attachments:
        return None
    return [att async for att in run.source.attachments(since)]


async def _count_and_size_workers(run: Run) -> int | None:
    """The scope's count. A full run fetches every item, so one this large starts its text workers now: they boot
    while the first bodies download."""
    types = content_types(run.request.spec)
    if run.request.spec.connector.config.enable_attachments:
        types.append("attachment")
    total = await run.source.count(types)
    if run.full is not None:
        run.use_text_workers_if_large(total)
    return total


async def _prepare_index(run: Run) -> dict[str, int | None]:
    """Create the index or bring its settings up to date; then what it holds of this Datasource (id -> version)."""
    embedders = meili_embedders(run.request.spec.embedders, dict(run.request.embedder_keys)) or None
    await run.sink.prepare(embedders=embedders)
    if not run.access.active:
        return await run.sink.versions_of(run.datasource_id)
    details: dict[str, dict[str, Any]] = {}
    versions = await run.sink.versions_of(run.datasource_id, details=details, fields=INDEXED_FIELDS)
    run.access.indexed = {doc_id: Indexed.of(doc) for doc_id, doc in details.items()}
    return versions


async def _bodies(
    run: Run, plan: planning.Plan, survey: Survey
) -> tuple[dict[str, str] | None, AsyncIterable[list[Item]]]:
    """(every current id once listed, or None; the batches of items to index)."""
    if run.full is not None:
        return run.full.listed, run.full.bodies
    swept = run.access.listing()  # the restrictions sweep is a complete listing too
    current: dict[str, str] | None = None
    if swept is not None and (
        plan.lists_every_id or run.access.newly_indexable(run.datasource_id, survey.indexed, survey.changed)
    ):
        current = swept
    elif plan.lists_every_id:
        current = {}
        async for _ in run.source.list_current(content_types(run.request.spec), into=current):
            pass
    listed = current if current is not None else swept
    ids = planning.wanted(run.datasource_id, changed=survey.changed, indexed=survey.indexed, current=listed)
    ids = run.access.fetchable(ids)
    run.use_text_workers_if_large(len(ids))
    return current, run.source.fetch_batches(ids)
