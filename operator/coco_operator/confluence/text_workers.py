"""Storage format to text in killable worker processes, for large runs and for any body too risky to convert here.

Turning a page into text is Python work on a parsed tree (about 0.3 ms a page) that holds the GIL, so in the run's
own process it competes with decoding responses and writing to Meilisearch. A run with many pages hands batches to
worker processes (`text_worker`) instead and keeps downloading while they convert.

Bodies come from a server the operator does not trust: the HTML parser takes quadratic time on deep nesting (a
1.1 MB body of nested elements took 22 s). So conversion in the run's own process is only for bodies that pass a
linear pre-check (`in_process_problem`: size and nesting depth); any other body goes to a worker, whose memory, CPU
and wall-clock limits (`coco_operator.workers`) bound it. A batch whose worker exceeded a limit is converted again
one body at a time in fresh workers, and a body that exceeds a limit on its own is skipped with a reason (the page
is indexed by its title and metadata). The operator shares one pool between its runs and ends the processes after a
minute without work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from coco_operator.confluence.items import storage_of
from coco_operator.confluence.text_worker import convert_batch
from coco_operator.settings import Settings
from coco_operator.workers import Limits, WorkerFailed, WorkerPool

log = logging.getLogger(__name__)

# Below this many items a run converts in its own process: a worker is an interpreter and the HTML parser, about
# 0.1 s to start and 25 MB, the cost of converting a few hundred pages.
MIN_ITEMS = 500
WORKER_MODULE = "coco_operator.confluence.text_worker"
DEFAULT_LIMITS = Limits(memory_bytes=512 * 1024 * 1024, cpu_seconds=60, wall_seconds=90)
# What the run's own process converts: at most 2 MB and 1,000 levels deep costs at most about 0.5 s.
MAX_IN_PROCESS_CHARS = 2_000_000
MAX_IN_PROCESS_DEPTH = 1000
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})  # fmt: skip

Remember = Callable[[dict[str, Any], dict[str, str]], None]
OnSkip = Callable[[dict[str, Any], str], None]


@dataclass(frozen=True)
class Converted:
    text: str
    problem: str | None = None  # why there is no text (the body exceeded a limit)


def limits_from(settings: Settings) -> Limits:
    """Limits per batch from the operator's settings."""
    timeout = settings.text_conversion_timeout_seconds
    return Limits(memory_bytes=settings.text_worker_memory_bytes, cpu_seconds=timeout * 2 / 3, wall_seconds=timeout)


def nesting_depth(body: str, stop_at: int) -> int:
    """How deep elements nest in `body` (at least; it stops counting past `stop_at`), in one linear pass."""
    if body.count("<") <= stop_at:
        return body.count("<")
    depth = deepest = pos = 0
    while (lt := body.find("<", pos)) >= 0:
        for opener, closer in (("<![CDATA[", "]]>"), ("<!--", "-->")):
            if body.startswith(opener, lt):
                end = body.find(closer, lt)
                pos = len(body) if end < 0 else end + len(closer)
                break
        else:
            gt = body.find(">", lt)
            if gt < 0:
                break
            pos = gt + 1
            if body[lt + 1 : lt + 2] == "/":
                depth = max(depth - 1, 0)
            elif body[lt + 1 : lt + 2].isalpha() and body[gt - 1] != "/":
                name = body[lt + 1 : min(gt, lt + 40)].split(None, 1)[0].lower()
                if name not in _VOID:
                    depth += 1
                    deepest = max(deepest, depth)
                    if deepest > stop_at:
                        return deepest
    return deepest


def in_process_problem(body: str) -> str | None:
    """Why a body must not be converted in the run's own process, or None."""
    if len(body) > MAX_IN_PROCESS_CHARS:
        return f"its body has {len(body)} characters"
    depth = nesting_depth(body, MAX_IN_PROCESS_DEPTH)
    if depth > MAX_IN_PROCESS_DEPTH:
        return f"its body nests elements more than {MAX_IN_PROCESS_DEPTH} levels deep"
    return None


class TextWorkers:
    """Up to `processes` converter processes within `limits`, started on first use.

    `close()` ends them; with `idle_close_s` they also end that long after the last batch, and start again on the
    next one.
    """

    def __init__(self, processes: int, *, idle_close_s: float | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.pool = WorkerPool(WORKER_MODULE, processes, limits, idle_close_s=idle_close_s)
        self.processes = self.pool.processes
        self.idle_close_s = idle_close_s
        self.broken = False  # workers cannot be started: safe bodies are converted here, others skipped
        self.converted_here = 0  # batches the run converted itself (workers booting or failed)
        self.converted_by_workers = 0
        self._booting: asyncio.Task[None] | None = None
        self._booted = False

    def start(self) -> None:
        """Start the processes in the background, so they boot while the run downloads."""
        if self._booting is None and not self.broken:
            self._booting = asyncio.create_task(self._boot())

    async def _boot(self) -> None:
        """Each worker answers an empty batch first: one that cannot marks the pool broken."""
        try:
            await self.pool.warm(handshake=orjson.dumps({"bodies": [], "users": {}}))
        except (OSError, WorkerFailed) as exc:
            self._fail(exc)
            return
        self._booted = True

    def _fail(self, exc: BaseException) -> None:
        if not self.broken:
            why = exc.reason if isinstance(exc, WorkerFailed) else str(exc)
            log.warning("text conversion workers cannot start (%s); converting safe bodies in the run's process", why)
        self.broken = True

    async def warm(self) -> bool:
        """Start the processes and wait until they are up; False if they could not be started."""
        self.start()
        if self._booting is not None:
            await self._booting
        return self._booted and not self.broken

    async def convert(self, bodies: list[str], users: Mapping[str, str]) -> list[str]:
        """The texts of `bodies` ("" for a body that exceeded a limit)."""
        return [c.text for c in await self.convert_checked(bodies, users)]

    async def convert_checked(self, bodies: list[str], users: Mapping[str, str]) -> list[Converted]:
        """The texts of `bodies`: here while the workers boot (if every body passes the pre-check), else in a
        worker; a body that made a worker exceed its limits comes back with a problem and no text."""
        self.start()
        if not self._booted and not self.broken:
            if not any(in_process_problem(b) for b in bodies):
                # Booting takes about 0.1 s: converting meanwhile keeps the first batches off the critical path.
                self.converted_here += 1
                return [Converted(t) for t in convert_batch(bodies, users)]
            await self.warm()  # a risky batch waits for the workers
        if self.broken:
            self.converted_here += 1
            return _here(bodies, users)
        try:
            texts = await self._in_worker(bodies, users)
        except WorkerFailed as exc:
            if len(bodies) == 1:
                return [Converted("", f"converting it to text {exc.reason}")]
            log.warning("a text worker %s on a batch of %d bodies; converting them one by one", exc.reason, len(bodies))
            return [await self._alone(body, users) for body in bodies]
        except OSError as exc:
            self._fail(exc)
            return _here(bodies, users)
        self.converted_by_workers += 1
        return [Converted(t) for t in texts]

    async def _in_worker(self, bodies: list[str], users: Mapping[str, str]) -> list[str]:
        answer = orjson.loads(await self.pool.call(orjson.dumps({"bodies": bodies, "users": users})))
        if not isinstance(answer, list) or len(answer) != len(bodies):
            raise WorkerFailed("answered a malformed frame")
        return [str(t) for t in answer]

    async def _alone(self, body: str, users: Mapping[str, str]) -> Converted:
        try:
            return Converted((await self._in_worker([body], users))[0])
        except WorkerFailed as exc:
            return Converted("", f"converting it to text {exc.reason}")
        except OSError as exc:
            self._fail(exc)
            return _here([body], users)[0]

    async def close(self) -> None:
        """End every worker; a later `convert` starts new ones."""
        booting, self._booting = self._booting, None
        self._booted = False
        if booting is not None:
            with contextlib.suppress(OSError):
                await booting
        await self.pool.close()


def _here(bodies: list[str], users: Mapping[str, str]) -> list[Converted]:
    """Conversion in this process, for bodies that pass the pre-check; the others are skipped with the reason."""
    out: list[Converted] = []
    for body in bodies:
        problem = in_process_problem(body)
        if problem:
            out.append(Converted("", f"not converted to text: {problem} and no worker process could start"))
        else:
            out.append(Converted(convert_batch([body], users)[0]))
    return out


def _log_skip(item: dict[str, Any], problem: str) -> None:
    log.warning("page %s (%s): %s; indexed by title and metadata only", item.get("id"), item.get("title"), problem)


async def with_text(
    batches: AsyncIterable[list[dict[str, Any]]],
    users: dict[str, str],
    workers: TextWorkers | None,
    remember: Remember,
    on_skip: OnSkip = _log_skip,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> AsyncIterator[tuple[dict[str, Any], str]]:
    """(item, text) for every item of `batches`; `remember(item, users)` learns display names for mentions first.

    With workers, a few batches are converted at once while the next ones download; items keep batch order. Without,
    bodies are converted here, except those that fail the pre-check: they go to a worker of this call's own. An item
    whose body exceeded a worker's limits gets "" and is reported to `on_skip`.
    """
    if workers is None:
        own = TextWorkers(1, limits=limits)  # started only if a body fails the pre-check
        try:
            async for batch in batches:
                for item in batch:
                    remember(item, users)
                    yield item, await _one(item, users, own, on_skip)
        finally:
            await own.close()
        return
    limit = 2 * workers.processes + 2  # enough to keep every worker busy, few enough to bound memory
    in_flight: deque[tuple[list[dict[str, Any]], asyncio.Task[list[Converted]]]] = deque()
    try:
        async for batch in batches:
            for item in batch:
                remember(item, users)
            bodies = [storage_of(i) for i in batch]
            in_flight.append((batch, asyncio.create_task(workers.convert_checked(bodies, dict(users)))))
            while in_flight and (in_flight[0][1].done() or len(in_flight) > limit):
                done, task = in_flight.popleft()
                for item, converted in zip(done, await task, strict=True):
                    yield item, _text(item, converted, on_skip)
        while in_flight:
            done, task = in_flight.popleft()
            for item, converted in zip(done, await task, strict=True):
                yield item, _text(item, converted, on_skip)
    finally:
        for _, task in in_flight:
            task.cancel()


async def _one(item: dict[str, Any], users: dict[str, str], own: TextWorkers, on_skip: OnSkip) -> str:
    body = storage_of(item)
    if in_process_problem(body) is None:
        return convert_batch([body], users)[0]
    return _text(item, (await own.convert_checked([body], dict(users)))[0], on_skip)


def _text(item: dict[str, Any], converted: Converted, on_skip: OnSkip) -> str:
    if converted.problem:
        on_skip(item, converted.problem)
    return converted.text
