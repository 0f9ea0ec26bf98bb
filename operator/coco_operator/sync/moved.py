"""A Datasource whose `spec.index` changed: once a run into the new index succeeded, its documents leave the old one
(docs/security.md, point 5), so nothing is orphaned where nobody syncs it any more."""

from __future__ import annotations

import logging

from coco_operator.search.sink import MeiliSink
from coco_operator.settings import Settings
from coco_operator.tenancy import index_access, namespace_of

log = logging.getLogger(__name__)


def moved_from(previous: str | None, datasource_id: str, index: str, settings: Settings) -> str | None:
    """The index the Datasource's documents are to leave: the one its last successful run wrote into, if another one
    and one its namespace may write into (documents are only ever removed by their own `source.id`)."""
    if not previous or previous == index:
        return None
    if index_access(namespace_of(datasource_id), previous, settings) is None:
        log.warning(
            "%s moved from index %s, which its namespace may no longer write into; its documents stay there",
            datasource_id,
            previous,
        )
        return None
    return previous


async def leave_previous_index(datasource_id: str, previous: str, settings: Settings) -> None:
    """Remove the Datasource's documents from the index it moved away from; raises SyncError (the run is then
    failed and retried, and status keeps naming the old index until this succeeded)."""
    sink = MeiliSink(
        settings.meili_url, settings.meili_api_key, previous, task_timeout_s=settings.meili_task_timeout_seconds
    )
    await sink.delete_datasource(datasource_id)
    log.info("removed the documents of %s from index %s, which it moved away from", datasource_id, previous)
