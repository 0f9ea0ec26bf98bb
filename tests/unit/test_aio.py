"""`together` fails cleanly; `Prefetch` runs ahead and hands on its error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from coco_operator.aio import Prefetch, together


async def test_together_returns_results_in_order() -> None:
    async def value(v: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return v

    assert await together(value(1, 0.02), value(2, 0), value(3, 0.01)) == (1, 2, 3)


async def test_together_cancels_the_rest_and_raises_the_failure_itself() -> None:
    finished: list[str] = []
    cancelled: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
            finished.append("slow")
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    async def failing() -> None:
        await asyncio.sleep(0.01)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await together(slow(), failing())
    assert cancelled == ["slow"] and finished == []  # stopped before `together` returned, not left running


async def test_prefetch_runs_ahead_and_raises_in_the_consumer() -> None:
    produced: list[int] = []

    async def source() -> AsyncIterator[int]:
        for i in range(3):
            produced.append(i)
            yield i
        raise RuntimeError("listing failed")

    ahead = Prefetch(source())
    await asyncio.sleep(0.01)
    assert produced == [0, 1, 2]  # before anyone iterated
    got: list[int] = []
    with pytest.raises(RuntimeError, match="listing failed"):
        async for item in ahead:
            got.append(item)
    assert got == [0, 1, 2]
    await ahead.aclose()


async def test_prefetch_close_stops_the_source() -> None:
    stopped = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            while True:
                await asyncio.sleep(0.01)
                yield 1
        finally:
            stopped.set()

    ahead = Prefetch(endless())
    await asyncio.sleep(0.03)
    await ahead.aclose()
    assert stopped.is_set()


async def test_prefetch_stays_at_most_maxsize_ahead() -> None:
    produced: list[int] = []

    async def source() -> AsyncIterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    ahead = Prefetch(source(), maxsize=3)
    await asyncio.sleep(0.02)
    assert len(produced) <= 4  # three waiting, one held until there is room: memory stays bounded
    assert [item async for item in ahead] == list(range(100))
    await ahead.aclose()
