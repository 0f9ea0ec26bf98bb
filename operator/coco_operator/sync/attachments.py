"""The attachments phase: the scope's attachments (an incremental run without a full listing: the window's),
downloaded `concurrency` at a time unless the index holds them at this version and metadata, their text extracted.

An attachment follows its page or blog post: indexed while the container is (`containers.py`). A file
that cannot be read is counted and named in status, never fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from coco_operator.aio import together
from coco_operator.confluence import extraction
from coco_operator.confluence.extract import needs_download, skip_reason
from coco_operator.confluence.items import attachment_media_type, attachment_size, metadata_fingerprint
from coco_operator.documents import attachment_document, document_id
from coco_operator.errors import AuthenticationError, EndpointRemovedError, SyncError
from coco_operator.sync.containers import container_id, follows, indexed_containers
from coco_operator.sync.plan import unchanged
from coco_operator.sync.state import Item, Run
from coco_operator.workers import WorkerPool


def extraction_pool(run: Run) -> WorkerPool:
    """The operator's shared extraction processes for the run's limits (killable, never the thread pool)."""
    settings = run.settings
    return extraction.shared_pool(extraction.limits_from(settings), settings.extraction_workers)


def start_extraction_workers(run: Run) -> None:
    """A full run with attachments will extract: its worker processes boot (about a second) while the run lists and
    fetches, instead of when the first file arrives. Incremental runs start them only for a file that changed."""
    if run.request.spec.connector.config.enable_attachments and run.extraction_boot is None:
        run.extraction_boot = asyncio.create_task(_boot(extraction_pool(run)))


async def _boot(pool: WorkerPool) -> None:
    with contextlib.suppress(OSError):  # extraction itself reports a worker that cannot start
        await pool.warm()


async def index_attachments(run: Run) -> None:
    if not run.request.spec.connector.config.enable_attachments:
        return
    survey = run.planned.survey
    incremental = run.planned.plan.incremental
    containers = indexed_containers(run)
    window: list[Item] = []
    async for att in _in_scope(run):
        did = document_id(run.datasource_id, str(att["id"]))
        if not follows(run, att, containers):
            run.tally.excluded_ids.add(did)
            continue
        run.tally.attachment_ids.add(did)
        version = (att.get("version") or {}).get("number")
        fingerprint = metadata_fingerprint(att)
        if unchanged(
            incremental, survey.indexed, did, version, fingerprints=survey.fingerprints, fingerprint=fingerprint
        ):
            continue  # no download
        window.append(att)
        if len(window) >= run.settings.confluence_concurrency:
            await _index_window(run, window)
            window = []
    if window:
        await _index_window(run, window)


async def _in_scope(run: Run) -> AsyncIterator[Item]:
    planned = run.planned
    if planned.current is None and planned.survey.window_attachments is not None:
        for att in planned.survey.window_attachments:
            yield att
    else:
        async for att in run.source.attachments():
            yield att


async def _index_window(run: Run, window: list[Item]) -> None:
    """Downloads run together (each is a redirect and a file on Cloud); documents keep list order."""
    # An attachment has its container's readers; one left out under spec.permissions is not downloaded.
    await run.access.know_containers(container_id(att) or "" for att in window)
    admitted = [att for att in window if _admitted(run, att)]
    texts = await together(*(_text_of(run, att) for att in admitted))
    for att, text in zip(admitted, texts, strict=True):
        doc = attachment_document(att, text, run.mapping_context(att))
        run.access.stamp(doc, container_id(att))
        await run.writer.add(doc)
        run.tally.indexed("attachment")
    run.report("Indexing", run.tally.items)


def _admitted(run: Run, att: Item) -> bool:
    did = document_id(run.datasource_id, str(att["id"]))
    return run.access.admit(did, str(att.get("title", "")), container_id(att))


async def _text_of(run: Run, att: Item) -> str | None:
    """The attachment's text, or None: not a format with text, too large, or unreadable (then counted as skipped)."""
    settings = run.settings
    title = str(att.get("title", ""))
    media_type = attachment_media_type(att)
    size = attachment_size(att)
    if not needs_download(media_type, title, size, settings.attachment_max_bytes):
        reason = skip_reason(media_type, title, size, settings.attachment_max_bytes)
        if reason and "too large" in reason:
            run.tally.skip(f"{title}: {reason}")
        return None
    try:
        data = await run.source.download(att, settings.attachment_max_bytes)
    except (AuthenticationError, EndpointRemovedError):  # every download would fail the same way
        raise
    except SyncError as exc:
        run.tally.skip(f"{title}: {exc.message}")
        return None
    # In a killable worker process within memory, CPU and wall-clock limits; never in the shared thread pool.
    if run.extraction_boot is not None:
        await asyncio.shield(run.extraction_boot)  # the workers it booted, not more of them
    pool = extraction_pool(run)
    extracted = await extraction.extract(data, media_type, title, pool.limits, pool=pool)
    if extracted.failed:
        run.tally.skip(f"{title}: {extracted.skipped_reason}")
        return None
    return extracted.text
