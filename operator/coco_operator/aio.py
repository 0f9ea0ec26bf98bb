"""Small asyncio helpers: concurrent steps that fail cleanly, and an iterator that runs ahead of its consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
_END = object()


@overload
async def together(a: Awaitable[A], b: Awaitable[B], /) -> tuple[A, B]: ...
@overload
async def together(a: Awaitable[A], b: Awaitable[B], c: Awaitable[C], /) -> tuple[A, B, C]: ...
@overload
async def together(*steps: Awaitable[T]) -> tuple[T, ...]: ...


async def together(*steps: Awaitable[Any]) -> tuple[Any, ...]:
    """Await `steps` concurrently and return their results in order (a typed tuple for two or three steps).

    Unlike `asyncio.gather`, the first failure cancels the other steps and waits for them, so none keeps using a
    client the caller is about to close; that failure is raised as itself, not in an ExceptionGroup.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(step)) for step in steps]
    except BaseExceptionGroup as group_error:
        raise _first(group_error) from None
    return tuple(task.result() for task in tasks)


async def _awaited(step: Awaitable[T]) -> T:
    return await step


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class Prefetch(Generic[T]):
    """Drains `source` in a task from construction on; iterating yields what it produced, then its error if any.

    At most `maxsize` items wait for the consumer (0: no limit); the source pauses until there is room.
    """

    def __init__(self, source: AsyncIterator[T], *, maxsize: int = 0) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self._task = asyncio.create_task(self._pump(source))

    async def _pump(self, source: AsyncIterator[T]) -> None:
        try:
            async for item in source:
                await self._queue.put(item)
        except Exception as exc:  # handed to the consumer, which raises it in its own context
            await self._queue.put(_Failed(exc))
        else:
            await self._queue.put(_END)
        finally:
            if isinstance(source, AsyncGenerator):
                await source.aclose()  # its own cleanup (e.g. cancelling requests in flight) runs now

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
