"""The prune phase: once every write is in the index, delete what the plan shows is gone (`plan.stale`)."""

from __future__ import annotations

from coco_operator.documents import document_id
from coco_operator.sync.plan import stale
from coco_operator.sync.state import Run


async def prune_index(run: Run) -> None:
    # Deleting before the last batch is written could leave a moved document in neither place.
    await run.writer.flush()
    await run.sink.flush()
    run.report("Pruning", run.tally.items)
    planned = run.planned
    seen = None
    if planned.current is not None:  # complete: a full run's listing is, once its bodies were all fetched
        seen = {document_id(run.datasource_id, cid) for cid in planned.current} | run.tally.attachment_ids
    ids = stale(
        run.datasource_id,
        indexed=planned.survey.indexed.keys(),
        seen=seen,
        changed=planned.survey.changed,
        dropped=run.writer.dropped_ids | run.access.withheld,  # left out by enrichment or spec.permissions
    )
    run.tally.deleted = await run.sink.delete(ids) if ids else 0
