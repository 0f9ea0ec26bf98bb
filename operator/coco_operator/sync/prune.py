"""The prune phase: once every write is in the index, delete what the plan shows is gone (`plan.stale`), and only
on the word of a listing proven complete (docs/security.md, point 5)."""

from __future__ import annotations

from coco_operator.confluence.paging import completeness_problem
from coco_operator.documents import document_id
from coco_operator.errors import ListingIncompleteError
from coco_operator.sync.plan import stale
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
        dropped=run.writer.dropped_ids | run.tally.excluded_ids,
    )
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
