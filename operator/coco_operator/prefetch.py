"""Run an async iterator ahead of its consumer, so its requests overlap others'."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class Prefetch(Generic[T]):
    """Drains `source` in a task from construction on; iterating yields what it produced, then its error if any.

    The buffer is unbounded: meant for small items (ids) that the consumer takes as fast as it can.
    """

    def __init__(self, source: AsyncIterator[T]) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(source))

    async def _pump(self, source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                self._queue.put_nowait(item)
        except Exception as exc:  # handed to the consumer, which raises it in its own context
            self._queue.put_nowait(_Failed(exc))
        else:
            self._queue.put_nowait(_END)

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]

    async def aclose(self) -> None:
        """Stop the source if it is still running."""
        if not self._task.done():
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error
