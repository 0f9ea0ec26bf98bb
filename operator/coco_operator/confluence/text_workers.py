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

from coco_operator.confluence.storage_text import storage_to_text
from coco_operator.confluence.text_worker import HEADER, convert_batch

log = logging.getLogger(__name__)

# Below this many items a run converts in its own process: a worker is an interpreter and the HTML parser, about
# 0.1 s to start and 25 MB, the cost of converting a few hundred pages.
MIN_ITEMS = 500
WORKER_MODULE = "coco_operator.confluence.text_worker"

Remember = Callable[[dict[str, Any], dict[str, str]], None]


def storage_of(item: Mapping[str, Any]) -> str:
    return str((((item.get("body") or {}).get("storage")) or {}).get("value") or "")


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
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: list[_Worker] = []
        self._starting: asyncio.Task[None] | None = None
        self._active = 0
        self._booted = False  # a worker has answered: until then one batch probes, the run converts the rest
        self._probing = False
        self._timer: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start the processes in the background, so they boot while the run downloads."""
        if self._starting is None and not self.broken:
            self._starting = asyncio.create_task(self._start(self._idle, self._all))

    async def _start(self, idle: asyncio.Queue[_Worker], started: list[_Worker]) -> None:
        for _ in range(self.processes):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", WORKER_MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            worker = _Worker(proc)
            started.append(worker)
            idle.put_nowait(worker)

    async def convert(self, bodies: list[str], users: Mapping[str, str]) -> list[str]:
        """The texts of `bodies`, from a worker if one can be had, else converted here."""
        if self.broken or (self._probing and not self._booted):
            # Booting a worker takes about 0.1 s: the run converts meanwhile instead of waiting.
            return convert_batch(bodies, users)
        self._active += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.start()
            starting, idle = self._starting, self._idle
            assert starting is not None
            await starting
            worker = await idle.get()
            self._probing = True
            try:
                texts = await worker.convert(bodies, users)
            except BaseException:
                await worker.stop()  # mid-frame: the pipe can no longer be trusted
                raise
            self._booted = True
            idle.put_nowait(worker)
            return texts
        except (OSError, RuntimeError, ValueError, asyncio.IncompleteReadError) as exc:
            self.broken = True
            log.warning("text conversion worker failed (%s); converting in the run's own process", exc)
            return convert_batch(bodies, users)
        finally:
            self._active -= 1
            if self._active == 0 and self.idle_close_s is not None:
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
        self._booted = self._probing = False
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
