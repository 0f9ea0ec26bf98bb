"""Parsing untrusted input in killable worker processes: each limit (CPU, memory, wall clock) ends the worker with a
reason, the pool replaces it, and the operator's thread pool and event loop stay free meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from coco_operator.confluence import extraction
from coco_operator.confluence import text_workers as tw
from coco_operator.workers import Limits, WorkerFailed, WorkerPool
from tests.hostile.measure import in_child
from tests.hostile.pdf import cpu_bomb_pdf, text_pdf

MODULE = "tests.hostile.limits_worker"
MB = 1024 * 1024


@pytest.mark.parametrize(
    ("job", "limits", "reason"),
    [
        ("spin", Limits(memory_bytes=512 * MB, cpu_seconds=1, wall_seconds=30), "used more than its 1 s of CPU time"),
        ("allocate", Limits(memory_bytes=256 * MB, cpu_seconds=30, wall_seconds=30), "ran out of its 256 MB of memory"),
        ("sleep", Limits(memory_bytes=512 * MB, cpu_seconds=30, wall_seconds=1), "took longer than 1 s"),
        ("exit", Limits(), "ended unexpectedly (exit code 3)"),
    ],
)
async def test_a_worker_over_a_limit_is_stopped_with_the_reason_and_replaced(
    job: str, limits: Limits, reason: str
) -> None:
    pool = WorkerPool(MODULE, 1, limits)
    try:
        t0 = time.monotonic()
        with pytest.raises(WorkerFailed) as err:
            await pool.call(job.encode())
        took = time.monotonic() - t0
        print(f"\n[hostile] worker job {job!r}: stopped after {took:.2f}s: {err.value.reason}")
        assert reason in err.value.reason
        assert took < 3 * (min(limits.cpu_seconds, limits.wall_seconds) + 1)
        assert await pool.call(b"next") == b"echo:next"  # a fresh worker took its place
        assert pool.started == 2
    finally:
        await pool.close()


async def test_the_thread_pool_and_the_loop_stay_free_while_a_worker_spins() -> None:
    """Before: after 4 timed-out PDFs in asyncio.to_thread, the next Kubernetes call waited 44 s for a thread."""
    pool = WorkerPool(MODULE, 4, Limits(cpu_seconds=3, wall_seconds=3))
    try:
        spinning = [asyncio.create_task(pool.call(b"spin")) for _ in range(4)]
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.01) for _ in range(32)))
        assert time.monotonic() - t0 < 1.0
        results = await asyncio.gather(*spinning, return_exceptions=True)
        assert all(isinstance(r, WorkerFailed) for r in results)
    finally:
        await pool.close()


async def test_a_pdf_costing_a_minute_of_cpu_is_stopped_and_skipped() -> None:
    data = cpu_bomb_pdf()
    limits = Limits(memory_bytes=512 * MB, cpu_seconds=2, wall_seconds=10)
    pool = WorkerPool(extraction.WORKER_MODULE, 1, limits)
    try:
        t0 = time.monotonic()
        result = await extraction.extract(data, "application/pdf", "report.pdf", limits, pool=pool)
        took = time.monotonic() - t0
        print(f"\n[hostile] {len(data) // 1024} KB CPU-bomb PDF: skipped after {took:.1f}s: {result.skipped_reason}")
        assert result.failed and result.text is None
        assert result.skipped_reason == "text extraction used more than its 2 s of CPU time and was stopped"
        assert took < 3 * (2 + 1)  # plus the worker's start (its libraries take about 0.7 s to import)
        ok = await extraction.extract(text_pdf("Quarterly report"), "application/pdf", "q.pdf", limits, pool=pool)
        assert ok.text == "Quarterly report" and not ok.failed
    finally:
        await pool.close()


async def test_types_without_text_never_reach_a_worker() -> None:
    pool = WorkerPool(extraction.WORKER_MODULE, 1, extraction.DEFAULT_LIMITS)
    result = await extraction.extract(b"\x89PNG...", "image/png", "diagram.png", pool=pool)
    assert result.text is None and not result.failed and "metadata only" in (result.skipped_reason or "")
    assert pool.started == 0


def test_extraction_memory_is_bounded_over_the_process_tree() -> None:
    """The child runs the extraction pool; its workers (grandchildren) are sampled with it."""
    spec = {"op": "extract_cpu_bomb", "limits": {"memory_bytes": 256 * MB, "cpu_seconds": 2, "wall_seconds": 10}}
    run, grew = in_child("CPU-bomb PDF in an extraction worker (256 MB, 2 s CPU)", spec)
    # Which limit trips first depends on the decoders installed beside pypdf (e.g. numpy after `make bench`):
    # either way the worker is stopped at its limit and the tree stays bounded.
    assert run.report["reason"] in (
        "text extraction used more than its 2 s of CPU time and was stopped",
        "text extraction ran out of its 256 MB of memory and was stopped",
    )
    assert grew < 256 + 64


# --- page bodies ----------------------------------------------------------------------------------------------


def _deep(depth: int) -> str:
    return "<div>" * depth + "deep" + "</div>" * depth


def _item(cid: str, body: str) -> dict[str, Any]:
    return {"id": cid, "title": f"page {cid}", "body": {"storage": {"value": body}}}


def test_the_pre_check_is_linear_and_knows_cdata_and_void_elements() -> None:
    assert tw.in_process_problem("<p>a<br>b<br/>c</p>" * 5000) is None
    assert tw.in_process_problem("<ac:plain-text-body><![CDATA[" + "<div>" * 5000 + "]]></ac:plain-text-body>") is None
    assert "more than 1000 levels" in (tw.in_process_problem(_deep(1500)) or "")
    t0 = time.monotonic()
    assert tw.in_process_problem(_deep(110_000))  # the 1.1 MB body that stalled the loop 22 s
    assert time.monotonic() - t0 < 1.0


async def test_a_deeply_nested_body_never_stalls_the_loop() -> None:
    """Without a pool (small runs), a body failing the pre-check goes to a worker of its own, within limits."""
    limits = Limits(memory_bytes=512 * MB, cpu_seconds=2, wall_seconds=3)
    items = [_item("1", "<p>fine</p>"), _item("2", _deep(110_000)), _item("3", "<p>also fine</p>")]

    async def batches() -> Any:
        yield items

    skipped: list[tuple[str, str]] = []
    lag = 0.0

    async def ticker() -> None:
        nonlocal lag
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            lag = max(lag, time.monotonic() - t - 0.05)

    tick = asyncio.create_task(ticker())
    t0 = time.monotonic()
    try:
        pairs = [
            p
            async for p in tw.with_text(
                batches(), {}, None, lambda i, u: None, lambda i, why: skipped.append((i["id"], why)), limits=limits
            )
        ]
    finally:
        tick.cancel()
    took = time.monotonic() - t0
    print(f"\n[hostile] 1.1 MB nested body: {took:.1f}s, loop lag at most {lag * 1000:.0f} ms, skipped {skipped}")
    assert [text for _, text in pairs] == ["fine", "", "also fine"]
    assert (skipped and skipped[0][0] == "2" and "limit" in skipped[0][1]) or "stopped" in skipped[0][1]
    assert lag < 0.5 and took < 3 * (3 + 1)


async def test_a_poison_body_in_a_batch_is_isolated_the_rest_converted() -> None:
    limits = Limits(memory_bytes=512 * MB, cpu_seconds=2, wall_seconds=3)
    workers = tw.TextWorkers(2, limits=limits)
    try:
        assert await workers.warm()
        bodies = [f"<p>page {i}</p>" for i in range(4)] + [_deep(110_000)]
        t0 = time.monotonic()
        converted = await workers.convert_checked(bodies, {})
        took = time.monotonic() - t0
    finally:
        await workers.close()
    print(f"\n[hostile] batch of 5 with one poison body: {took:.1f}s, {converted[-1].problem}")
    assert [c.text for c in converted[:4]] == [f"page {i}" for i in range(4)]
    assert converted[-1].text == "" and "converting it to text" in (converted[-1].problem or "")
    assert took < 3 * (2 * 3 + 1)
