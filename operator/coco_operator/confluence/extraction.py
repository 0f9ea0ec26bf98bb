"""Attachment text extraction in killable worker processes (`coco_operator.workers`), never in the thread pool.

`await extract(data, media_type, title, limits)` gives the same `Extracted` as `extract.extract_text`, or, when the
file made the worker exceed a limit (memory, CPU, wall clock), a failed `Extracted` whose reason says which: the
attachment is then indexed by its metadata and named in the Datasource's skipped items. Workers are shared by every
run of the operator (one pool per event loop and limits) and end after a minute without work.
"""

from __future__ import annotations

import asyncio
import weakref

import orjson

from coco_operator.confluence.extract import READABLE_KINDS, Extracted, extract_text, kind_of
from coco_operator.settings import Settings
from coco_operator.workers import HEADER, Limits, WorkerFailed, WorkerPool

WORKER_MODULE = "coco_operator.confluence.extraction_worker"
DEFAULT_LIMITS = Limits(memory_bytes=512 * 1024 * 1024, cpu_seconds=30, wall_seconds=30)
DEFAULT_PROCESSES = 2
IDLE_CLOSE_S = 60.0
MAX_CHARS = 1_000_000

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Limits, WorkerPool]] = weakref.WeakKeyDictionary()


def shared_pool(limits: Limits = DEFAULT_LIMITS, processes: int = DEFAULT_PROCESSES) -> WorkerPool:
    """The pool of this event loop for `limits` (created on first use)."""
    pools = _pools.setdefault(asyncio.get_running_loop(), {})
    pool = pools.get(limits)
    if pool is None:
        pool = pools[limits] = WorkerPool(WORKER_MODULE, processes, limits, idle_close_s=IDLE_CLOSE_S)
    return pool


def limits_from(settings: Settings) -> Limits:
    """Limits from the operator's settings: the extraction timeout is both the CPU and the wall-clock budget."""
    timeout = settings.extraction_timeout_seconds
    return Limits(memory_bytes=settings.extraction_memory_bytes, cpu_seconds=timeout, wall_seconds=timeout)


async def extract(
    data: bytes,
    media_type: str,
    title: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    pool: WorkerPool | None = None,
    max_chars: int = MAX_CHARS,
) -> Extracted:
    """The text of an attachment, extracted in a worker process within `limits`. Never raises for a bad file."""
    if kind_of(media_type, title) not in READABLE_KINDS:
        return extract_text(b"", media_type, title)  # metadata only: nothing is parsed
    meta = orjson.dumps({"media_type": media_type, "filename": title, "max_chars": max_chars})
    try:
        answer = await (pool or shared_pool(limits)).call(HEADER.pack(len(meta)) + meta + data)
    except WorkerFailed as exc:
        return Extracted(None, f"text extraction {exc.reason}", failed=True)
    except OSError as exc:
        return Extracted(None, f"text extraction could not start a worker process ({exc.strerror})", failed=True)
    fields = orjson.loads(answer)
    return Extracted(
        text=fields["text"],
        skipped_reason=fields["skipped_reason"],
        failed=bool(fields["failed"]),
        truncated=bool(fields["truncated"]),
    )
