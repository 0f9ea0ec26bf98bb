"""The index phase: pages, blog posts (and tree items) the plan lined up, turned into text and documents and
written."""

from __future__ import annotations

import logging

from coco_operator.confluence.text_workers import with_text
from coco_operator.documents import content_document, content_type, document_id, remember_users
from coco_operator.sync.state import Item, Run

log = logging.getLogger(__name__)


async def index_content(run: Run) -> None:
    run.report("Indexing", run.tally.items)
    users: dict[str, str] = {}  # display names seen so far, so that @mentions in later bodies read as names
    pool = run.workers if run.text_workers_on else None
    async for item, text in with_text(
        run.planned.bodies, users, pool, remember_users, on_skip=run.text_skipped, limits=run.workers.pool.limits
    ):
        await index_item(run, item, text, users)
        run.report("Indexing", run.tally.items)


async def index_item(run: Run, item: Item, text: str, users: dict[str, str]) -> None:
    """One page, blog post or tree item: its document, through enrichment, into the index. Per-item steps go here.

    A type this operator does not know is skipped with the reason (a site may add types); an item with an excluded
    label that the site's CQL let through is left out, and removed if it was indexed.
    """
    if not wanted_item(run, item):
        return
    doc = content_document(item, run.mapping_context(item), users=users, text=text)
    if not run.access.stamp(doc, str(item["id"])):
        return  # not to be indexed under spec.permissions (counted as skipped, with why)
    await run.writer.add(doc)
    run.tally.written_ids.add(doc["id"])
    run.tally.indexed(doc["type"])


def wanted_item(run: Run, item: Item) -> bool:
    """Whether the index phase writes this item; if not, it is counted as skipped or excluded."""
    if content_type(item) is None:
        run.tally.skip(f"{item.get('title', item.get('id'))}: content type {item.get('type')!r} is not indexed")
        return False
    label = run.source.content_scope.excluded_label(item)
    if label is not None:
        log.info("sync of %s: %s has the excluded label %r", run.datasource_id, item.get("id"), label)
        run.tally.excluded_ids.add(document_id(run.datasource_id, str(item["id"])))
        return False
    return True
