"""The prune phase: once every write is in the index, delete what the plan shows is gone (`plan.stale`), only on
the word of a listing proven complete and within the per-run deletion cap (docs/security.md, point 5)."""

from __future__ import annotations

from coco_operator.confluence.paging import completeness_problem
from coco_operator.documents import document_id
from coco_operator.errors import ListingIncompleteError, SyncError
from coco_operator.reasons import Reason
from coco_operator.sync.plan import mass_deletion, stale
from coco_operator.sync.request import counted_types
from coco_operator.sync.state import Run


async def prune_index(run: Run) -> None:
    # Deleting before the last batch is written could leave a moved document in neither place.
    await run.writer.flush()
    await run.sink.flush()
    run.report("Pruning", run.tally.items)
    planned = run.planned
    seen = None
    if planned.current is not None:  # a full listing: complete once its bodies were all fetched, if proven so
        if run.full is not None and not run.full.complete:  # a listing that did not run to its end proves nothing
            raise SyncError(
                f"the listing of {run.datasource_id}'s scope did not complete; nothing was deleted and the run will "
                "be retried",
                reason=Reason.LISTING_INCOMPLETE,
            )
        await require_complete(run)
        tally = run.tally
        seen = (
            {document_id(run.datasource_id, cid) for cid in planned.current} | tally.attachment_ids | tally.comment_ids
        )
    ids = stale(
        run.datasource_id,
        indexed=planned.survey.indexed.keys(),
        seen=seen,
        changed=planned.survey.changed,
        # Left out by enrichment, by a label exclusion or by spec.permissions: still current, yet deleted if indexed.
        dropped=run.writer.dropped_ids | run.tally.excluded_ids | run.access.withheld,
    )
    check_deletions(run, len(ids), listed=None if seen is None else len(seen))
    run.tally.deleted = await run.sink.delete(ids) if ids else 0


async def require_complete(run: Run) -> None:
    """Raise ListingIncomplete unless the listings of the scope returned at least as many distinct items as the
    run counted in it. A shortfall is counted again first: items may have left the scope since the first count."""
    source, total = run.source, run.planned.survey.total
    problem = completeness_problem(source.listed, total, source.unproven)
    if problem and total is not None:
        recount = await source.count(counted_types(run.request.spec))
        problem = completeness_problem(source.listed, recount, source.unproven)
    if problem:
        spaces = ", ".join(source.spaces)
        raise ListingIncompleteError(
            f"the listing of space {spaces} on {run.client.site.base} is not complete: {problem}. Nothing was "
            "deleted; the run will be retried (if this persists, the site's search index may need a rebuild)"
        )


def check_deletions(run: Run, deleting: int, *, listed: int | None) -> None:
    """Refuse a run that would delete more than the cap (or everything), unless the Datasource allows it."""
    if run.request.spec.sync.allowMassDeletion:
        return
    settings = run.settings
    why = mass_deletion(
        deleting=deleting,
        indexed=len(run.planned.survey.indexed),
        listed=listed,
        fraction=settings.max_deletions_fraction,
        floor=settings.max_deletions_min,
    )
    if why is None:
        return
    namespace, _, name = run.datasource_id.partition("/")
    raise SyncError(
        f"{why}; nothing was deleted. If that content really went away (or enrichment now leaves it out), allow it "
        f"for one run: kubectl -n {namespace} patch datasource {name} --type merge -p "
        '\'{"spec":{"sync":{"allowMassDeletion":true}}}\' and set it back to false afterwards',
        reason=Reason.MASS_DELETION_REFUSED,
    )
