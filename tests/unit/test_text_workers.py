"""Text conversion in worker processes: same texts as in-process, failures fall back, idle workers end."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from coco_operator.confluence import text_workers as tw
from coco_operator.confluence.text_worker import convert_batch

BODIES = [
    f'<h1>Title {i}</h1><p>Hello <ac:link><ri:user ri:account-id="u{i % 3}"/></ac:link> and <b>bold</b> {i}</p>'
    "<table><tr><td>a</td><td>b</td></tr></table>"
    for i in range(120)
]
USERS = {"u0": "Ada", "u1": "Grace"}


async def test_workers_convert_as_the_run_would() -> None:
    workers = tw.TextWorkers(2)
    try:
        # Before the workers are up, the run converts by itself rather than wait.
        assert await workers.convert(BODIES[:3], USERS) == convert_batch(BODIES[:3], USERS)
        assert workers.converted_here == 1
        assert await workers.warm()
        batches = [BODIES[i : i + 10] for i in range(0, len(BODIES), 10)]
        results = await asyncio.gather(*(workers.convert(b, USERS) for b in batches))
        assert [t for r in results for t in r] == convert_batch(BODIES, USERS)
        assert "@Ada" in results[0][0] and "| a | b" not in results[0][0] and "a | b" in results[0][0]
        assert workers.pool.started == 2 and not workers.broken and workers.converted_here == 1
        procs = [w.proc for w in workers.pool.idle]
    finally:
        await workers.close()
    assert [p.returncode for p in procs] == [0, 0]  # closing the pipe ends them cleanly


async def test_a_failing_worker_falls_back_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tw, "WORKER_MODULE", "coco_operator.no_such_module")
    workers = tw.TextWorkers(1)
    try:
        assert await workers.convert(BODIES[:5], USERS) == convert_batch(BODIES[:5], USERS)
        assert not await workers.warm() and workers.broken
        assert await workers.convert(BODIES[5:7], USERS) == convert_batch(BODIES[5:7], USERS)
        assert workers.converted_here == 2
    finally:
        await workers.close()


async def test_idle_workers_end_and_come_back() -> None:
    workers = tw.TextWorkers(1, idle_close_s=0.1)
    try:
        assert await workers.warm()
        await workers.convert(BODIES[:2], USERS)
        first = workers.pool.idle[0].proc
        for _ in range(50):
            if first.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert first.returncode == 0 and workers.pool.idle == ()
        assert await workers.warm()
        assert await workers.convert(BODIES[2:4], USERS) == convert_batch(BODIES[2:4], USERS)
        assert workers.pool.idle[0].proc is not first and workers.converted_here == 0
    finally:
        await workers.close()


async def test_with_text_pairs_items_in_order_and_learns_users_first() -> None:
    items: list[dict[str, Any]] = [
        {"id": str(i), "body": {"storage": {"value": body}}, "by": f"u{i % 3}"} for i, body in enumerate(BODIES)
    ]

    async def batches() -> Any:
        for i in range(0, len(items), 25):
            await asyncio.sleep(0)
            yield items[i : i + 25]

    def remember(item: dict[str, Any], users: dict[str, str]) -> None:
        if item["by"] == "u2":
            users["u2"] = "Linus"

    for workers in (None, tw.TextWorkers(2)):
        users: dict[str, str] = dict(USERS)
        try:
            pairs = [pair async for pair in tw.with_text(batches(), users, workers, remember)]
        finally:
            if workers is not None:
                await workers.close()
        assert [item["id"] for item, _ in pairs] == [item["id"] for item in items]
        assert [text for _, text in pairs] == convert_batch(BODIES, {**USERS, "u2": "Linus"})
