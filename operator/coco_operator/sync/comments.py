"""The comments phase (`enable_comments`): footer and inline comments and their replies, each its own document.

A comment follows its page or blog post (`containers.py`): it is indexed only while its container is, goes when
the container goes, and has its container's readers (`spec.permissions`). The phase runs after the index phase, so
which containers are indexed is known.

Which comments are fetched: when the run lists every id (a full run, or an incremental one whose plan says so),
every comment of the scope is listed with its version, container and metadata (no bodies), alongside the content
listing (`start_listing`), and those the index lacks at that version and metadata are fetched; otherwise those of
the changed window (edited or new since the last run). Deleted comments change the scope's count, so the run that
sees it lists everything and prunes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from coco_operator.confluence.items import metadata_fingerprint
from coco_operator.confluence.scope import COMMENT
from coco_operator.confluence.source import COMMENT_EXPAND, COMMENT_METADATA_EXPAND
from coco_operator.confluence.text_workers import with_text
from coco_operator.documents import comment_document, document_id, remember_users
from coco_operator.sync.containers import container_id, follows, indexed_containers
from coco_operator.sync.plan import unchanged
from coco_operator.sync.state import ListedComment, Run


def start_listing(run: Run) -> asyncio.Task[list[ListedComment]] | None:
    """List the scope's comments now, while the content is listed and indexed; the comments phase takes the list."""
    if run.request.spec.connector.config.enable_comments and run.comment_listing is None:
        run.comment_listing = asyncio.create_task(_list_comments(run))
    return run.comment_listing


async def stop_listing(run: Run) -> None:
    """Cancel a listing the run no longer waits for (it failed before the comments phase)."""
    task = run.comment_listing
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise  # this run itself is being cancelled
    except Exception:  # the run's error, if any, came from the comments phase that awaited it
        pass


async def _list_comments(run: Run) -> list[ListedComment]:
    out = []
    async for item in run.source.list_items([COMMENT], COMMENT_METADATA_EXPAND):
        container = item.get("container")
        out.append(
            ListedComment(
                id=str(item["id"]),
                container=str(container["id"]) if isinstance(container, dict) and container.get("id") else None,
                version=(item.get("version") or {}).get("number"),
                fingerprint=metadata_fingerprint(item),
                excluded=run.source.content_scope.excluded_label(item) is not None,
            )
        )
    return out


async def index_comments(run: Run) -> None:
    if not run.request.spec.connector.config.enable_comments:
        return
    containers = indexed_containers(run)
    users: dict[str, str] = {}
    pool = run.workers if run.text_workers_on else None
    batches = run.source.fetch_batches(_to_fetch(run, containers), expand=COMMENT_EXPAND)
    async for item, text in with_text(batches, users, pool, remember_users):
        doc_id = document_id(run.datasource_id, str(item["id"]))
        if not follows(run, item, containers):
            run.tally.excluded_ids.add(doc_id)
            run.tally.comment_ids.discard(doc_id)
            continue
        container = container_id(item)  # follows() checked there is one
        await run.access.know_containers([container or ""])  # a lookup only for a page this run has not seen
        doc = comment_document(item, run.mapping_context(item), text)
        if not run.access.stamp(doc, container):
            continue  # its page's readers leave it out under spec.permissions (counted as skipped, with why)
        await run.writer.add(doc)
        run.tally.comment_ids.add(doc_id)
        run.tally.indexed(COMMENT)
        run.report("Indexing", run.tally.items)


async def _to_fetch(run: Run, containers: set[str]) -> AsyncIterator[str]:
    """Ids of the comments to fetch, as the listing (or the window) shows them."""
    planned = run.planned
    survey = planned.survey
    if planned.current is None:
        for cid, changed in sorted(survey.changed.items()):
            doc_id = document_id(run.datasource_id, cid)
            if changed.type == COMMENT and changed.current and survey.indexed.get(doc_id) != changed.version:
                yield cid
        return
    listing = start_listing(run)  # started with the content listing; here only if it was not
    if listing is None:
        return
    incremental = planned.plan.incremental
    for comment in await listing:
        doc_id = document_id(run.datasource_id, comment.id)
        if comment.excluded or comment.container is None:
            continue
        if document_id(run.datasource_id, comment.container) not in containers:
            continue  # not found current here: pruned if it was indexed
        run.tally.comment_ids.add(doc_id)
        if not unchanged(
            incremental,
            survey.indexed,
            doc_id,
            comment.version,
            fingerprints=survey.fingerprints,
            fingerprint=comment.fingerprint,
        ):
            yield comment.id
