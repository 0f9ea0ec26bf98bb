"""Storage format to text in worker processes, for large runs.

Turning a page into text is Python work on a parsed tree (about 0.3 ms a page) that holds the GIL, so in the run's
own process it competes with decoding responses and writing to Meilisearch. A run with many pages hands batches to
worker processes (`text_worker`) instead and keeps downloading while they convert.

Workers are plain subprocesses fed over pipes, not `multiprocessing`: its `spawn` re-imports the parent's main
module and `fork` would copy the operator's threads mid-state. A worker that fails costs nothing but speed: its
batch, and every later one, is converted in the run's own process. The operator shares one pool between its runs
(so memory stays bounded however many run at once) and ends the processes after a minute without work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any

import orjson

from coco_operator.confluence.items import storage_of
from coco_operator.confluence.storage_text import storage_to_text
from coco_operator.confluence.text_worker import HEADER, convert_batch

log = logging.getLogger(__name__)

# Below this many items a run converts in its own process: a worker is an interpreter and the HTML parser, about
# 0.1 s to start and 25 MB, the cost of converting a few hundred pages.
MIN_ITEMS = 500
WORKER_MODULE = "coco_operator.confluence.text_worker"

Remember = Callable[[dict[str, Any], dict[str, str]], None]
_WORKER_ERRORS = (OSError, RuntimeError, ValueError, asyncio.IncompleteReadError)


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def convert(self, bodies: list[str], users: Mapping[str, str]) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        frame = orjson.dumps({"bodies": bodies, "users": users})
        self.proc.stdin.write(HEADER.pack(len(frame)) + frame)
        await self.proc.stdin.drain()
        (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
        texts = orjson.loads(await self.proc.stdout.readexactly(size))
        if not isinstance(texts, list) or len(texts) != len(bodies):
            raise RuntimeError("text worker answered a malformed frame")
        return [str(t) for t in texts]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF: the worker exits
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class TextWorkers:
    """Up to `processes` converter processes, started on first use.

    `close()` ends them; with `idle_close_s` they also end that long after the last batch, and start again on the
    next one.
    """

    def __init__(self, processes: int, *, idle_close_s: float | None = None) -> None:
        self.processes = max(1, processes)
        self.idle_close_s = idle_close_s
        self.broken = False
        self.converted_here = 0  # batches the run converted itself (workers booting or failed)
        self.converted_by_workers = 0
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: list[_Worker] = []
        self._starting: asyncio.Task[None] | None = None
        self._booted = False  # a worker has answered: from then on batches wait for a worker
        self._active = 0
        self._timer: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start the processes in the background, so they boot while the run downloads."""
        if self._starting is None and not self.broken:
            self._starting = asyncio.create_task(self._start(self._idle, self._all))

    async def _start(self, idle: asyncio.Queue[_Worker], started: list[_Worker]) -> None:
        """Spawn the processes; each joins `idle` once it has answered an empty batch (its interpreter is up)."""

        async def warm(worker: _Worker) -> None:
            try:
                await worker.convert([], {})
            except _WORKER_ERRORS as exc:
                self._fail(exc)
                return
            idle.put_nowait(worker)
            if idle is self._idle:  # not a generation `close()` has already ended
                self._booted = True

        try:
            for _ in range(self.processes):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", WORKER_MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
                )
                started.append(_Worker(proc))
        except OSError as exc:
            self._fail(exc)
        await asyncio.gather(*(warm(worker) for worker in started))

    def _fail(self, exc: BaseException) -> None:
        if not self.broken:
            log.warning("text conversion worker failed (%s); converting in the run's own process", exc)
        self.broken = True

    async def convert(self, bodies: list[str], users: Mapping[str, str]) -> list[str]:
        """The texts of `bodies`: from a worker once one is up, else (booting, or failed) converted here."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.start()
        if self.broken or not self._booted:
            # Booting takes about 0.1 s: converting meanwhile keeps the first batches off the critical path.
            self.converted_here += 1
            self._schedule_idle_close()
            return convert_batch(bodies, users)
        self._active += 1
        try:
            idle = self._idle
            worker = await idle.get()
            try:
                texts = await worker.convert(bodies, users)
            except BaseException:
                await worker.stop()  # mid-frame: the pipe can no longer be trusted
                raise
            idle.put_nowait(worker)
            self.converted_by_workers += 1
            return texts
        except _WORKER_ERRORS as exc:
            self._fail(exc)
            self.converted_here += 1
            return convert_batch(bodies, users)
        finally:
            self._active -= 1
            self._schedule_idle_close()

    async def warm(self) -> bool:
        """Start the processes and wait until they are up; False if they could not be started."""
        self.start()
        if self._starting is not None:
            await self._starting
        return self._booted and not self.broken

    def _schedule_idle_close(self) -> None:
        if self._active == 0 and self.idle_close_s is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.idle_close_s, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._active == 0:
            task = asyncio.create_task(self.close())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        """End every worker; a later `convert` starts new ones."""
        starting, workers = self._starting, self._all
        self._starting, self._all, self._idle = None, [], asyncio.Queue()
        self._booted = False
        if starting is not None:
            with contextlib.suppress(OSError):  # no worker started: nothing to stop
                await starting
        await asyncio.gather(*(worker.stop() for worker in workers))


async def with_text(
    batches: AsyncIterable[list[dict[str, Any]]],
    users: dict[str, str],
    workers: TextWorkers | None,
    remember: Remember,
) -> AsyncIterator[tuple[dict[str, Any], str]]:
    """(item, text) for every item of `batches`; `remember(item, users)` learns display names for mentions first.

    With workers, a few batches are converted at once while the next ones download; items keep batch order.
    """
    if workers is None:
        async for batch in batches:
            for item in batch:
                remember(item, users)
                yield item, storage_to_text(storage_of(item), users=users)
        return
    limit = 2 * workers.processes + 2  # enough to keep every worker busy, few enough to bound memory
    in_flight: deque[tuple[list[dict[str, Any]], asyncio.Task[list[str]]]] = deque()
    try:
        async for batch in batches:
            for item in batch:
                remember(item, users)
            bodies = [storage_of(i) for i in batch]
            in_flight.append((batch, asyncio.create_task(workers.convert(bodies, dict(users)))))
            while in_flight and (in_flight[0][1].done() or len(in_flight) > limit):
                done, task = in_flight.popleft()
                for pair in zip(done, await task, strict=True):
                    yield pair
        while in_flight:
            done, task = in_flight.popleft()
            for pair in zip(done, await task, strict=True):
                yield pair
    finally:
        for _, task in in_flight:
            task.cancel()
