"""The index phase: pages and blog posts the plan lined up, turned into text and documents and written."""

from __future__ import annotations

from coco_operator.confluence.text_workers import with_text
from coco_operator.documents import content_document, remember_users
from coco_operator.sync.state import Item, Run


async def index_content(run: Run) -> None:
    run.report("Indexing", run.tally.items)
    users: dict[str, str] = {}  # display names seen so far, so that @mentions in later bodies read as names
    pool = run.workers if run.text_workers_on else None
    async for item, text in with_text(run.planned.bodies, users, pool, remember_users):
        await index_item(run, item, text, users)
        run.report("Indexing", run.tally.items)


async def index_item(run: Run, item: Item, text: str, users: dict[str, str]) -> None:
    """One page or blog post: its document, through enrichment, into the index. Per-item steps go here."""
    doc = content_document(item, run.mapping_context(item), users=users, text=text)
    if not run.access.stamp(doc, str(item["id"])):
        return  # not to be indexed under spec.permissions (counted as skipped, with why)
    await run.writer.add(doc)
    run.tally.indexed(doc["type"])
