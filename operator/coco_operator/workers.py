"""Worker processes for parsing untrusted input: killable, with memory, CPU and wall-clock limits.

Attachments and page bodies come from a server the operator does not trust; a parser can take quadratic time on a
crafted file or allocate without end. Such work runs in a worker process, never in the operator's thread pool (a
thread that times out keeps running and holds the pool every Kubernetes and Meilisearch call shares):

- memory: `RLIMIT_AS`, set by the worker on itself at start;
- CPU: `RLIMIT_CPU`, renewed before each job to the CPU used so far plus the job's budget (SIGXCPU ends the worker);
- wall clock: the parent kills the worker when a job's answer does not arrive in time.

A worker that exceeds a limit is gone; the pool starts another for the next job and the caller gets `WorkerFailed`
with a reason for people. Workers are plain subprocesses fed length-prefixed frames over pipes, not
`multiprocessing` (its `spawn` re-imports the parent's main module, `fork` would copy the operator's threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import resource
import signal
import struct
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import BinaryIO

log = logging.getLogger(__name__)

HEADER = struct.Struct("!I")
MIB = 1024 * 1024
MEMORY_EXIT = 75  # the worker's exit code after a MemoryError: its heap is no longer worth keeping
_ERRORS = (OSError, asyncio.IncompleteReadError, ConnectionError)


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 512 * MIB  # address space of the worker process
    cpu_seconds: float = 30.0  # per job
    wall_seconds: float = 60.0  # per job, measured by the parent

    def to_arg(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_arg(cls, arg: str) -> Limits:
        return cls(**json.loads(arg))


class WorkerFailed(Exception):
    """A job did not get an answer: the worker exceeded a limit or died. `reason` is for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_exit(returncode: int | None, limits: Limits) -> str:
    """Why a worker ended, as the rest of a sentence starting with the job (e.g. "text extraction ...")."""
    memory = f"{limits.memory_bytes // MIB} MB"
    if returncode == -signal.SIGXCPU:
        return f"used more than its {limits.cpu_seconds:g} s of CPU time and was stopped"
    if returncode == MEMORY_EXIT:
        return f"ran out of its {memory} of memory and was stopped"
    if returncode in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS):
        return f"crashed ({signal.Signals(-returncode).name}), most likely at its {memory} memory limit"
    if returncode == -signal.SIGKILL:
        return "was killed (out of memory in the pod?)"
    return f"ended unexpectedly (exit code {returncode})"


class Worker:
    """One worker process. `call` sends a job and waits for its answer within the wall-clock limit."""

    def __init__(self, proc: asyncio.subprocess.Process, limits: Limits) -> None:
        self.proc = proc
        self.limits = limits

    @classmethod
    async def spawn(cls, module: str, limits: Limits) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            limits.to_arg(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc, limits)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def call(self, payload: bytes) -> bytes:
        """The answer to `payload`; WorkerFailed if the worker exceeded a limit or died (it is then gone)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            async with asyncio.timeout(self.limits.wall_seconds):
                self.proc.stdin.write(HEADER.pack(len(payload)) + payload)
                await self.proc.stdin.drain()
                (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
                return await self.proc.stdout.readexactly(size)
        except TimeoutError:
            await self.kill()
            raise WorkerFailed(f"took longer than {self.limits.wall_seconds:g} s and was stopped") from None
        except _ERRORS:
            await self._reap()  # it died (or closed its pipes): a worker out of step is never reused
            raise WorkerFailed(describe_exit(self.proc.returncode, self.limits)) from None
        except BaseException:  # cancelled mid-frame: the pipe is out of step
            await self.kill()
            raise

    async def _reap(self) -> None:
        """Its exit status as it ended by itself (a limit's signal), killing it only if it lingers."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=2)
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()

    async def stop(self) -> None:
        """End the worker cleanly (EOF on its input), or kill it after 5 s."""
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=5)
            except TimeoutError:
                await self.kill()


class WorkerPool:
    """Up to `processes` workers of `module`, started on demand; with `idle_close_s` they end that long after the
    last job (and start again on the next one)."""

    def __init__(self, module: str, processes: int, limits: Limits, *, idle_close_s: float | None = None) -> None:
        self.module = module
        self.limits = limits
        self.processes = max(1, processes)
        self.idle_close_s = idle_close_s
        self.started = 0  # processes started over the pool's life (replacements included)
        self._slots = asyncio.Semaphore(self.processes)
        self._idle: list[Worker] = []
        self._busy = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def call(self, payload: bytes) -> bytes:
        """The answer of a worker; WorkerFailed (the worker is replaced next time), OSError if none can start."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._slots:
            self._busy += 1
            try:
                worker = await self._take()
                answer = await worker.call(payload)  # a failed or cancelled worker is killed, never reused
                self._idle.append(worker)
                return answer
            finally:
                self._busy -= 1
                self._schedule_idle_close()

    async def _take(self) -> Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                return worker
        self.started += 1
        return await Worker.spawn(self.module, self.limits)

    @property
    def idle(self) -> tuple[Worker, ...]:
        return tuple(self._idle)

    async def warm(self, handshake: bytes | None = None) -> None:
        """Start the workers ahead of the first job; with `handshake`, each must answer it (a worker that cannot
        even do that raises WorkerFailed, like OSError when none can start)."""
        want = self.processes - len(self._idle) - self._busy
        spawned = await asyncio.gather(*(Worker.spawn(self.module, self.limits) for _ in range(max(0, want))))
        self.started += len(spawned)
        if handshake is not None:
            answers = await asyncio.gather(*(w.call(handshake) for w in spawned), return_exceptions=True)
            failures = [a for a in answers if isinstance(a, BaseException)]
            if failures:
                await asyncio.gather(*(w.stop() for w in spawned))
                raise failures[0]
        self._idle.extend(spawned)
        self._schedule_idle_close()

    def _schedule_idle_close(self) -> None:
        if self._busy == 0 and self.idle_close_s is not None and self._timer is None and self._idle:
            self._timer = asyncio.get_running_loop().call_later(self.idle_close_s, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._busy == 0:
            task = asyncio.create_task(self.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """End the idle workers (busy ones end when their job does and are not kept)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        idle, self._idle = self._idle, []
        await asyncio.gather(*(worker.stop() for worker in idle))


# --- in the worker process ------------------------------------------------------------------------------------


def apply_limits(limits: Limits) -> None:
    """The worker's own limits: address space, no core files."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _renew_cpu_budget(seconds: float) -> None:
    """SIGXCPU once this job has used `seconds` of CPU (the soft limit rises per job; the hard one stays)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(used + seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def serve(handle: Callable[[bytes], bytes], limits: Limits, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer frames with `handle` until stdin closes, within `limits`."""
    apply_limits(limits)
    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        (size,) = HEADER.unpack(header)
        payload = stdin.read(size)
        _renew_cpu_budget(limits.cpu_seconds)
        try:
            answer = handle(payload)
        except MemoryError:
            os._exit(MEMORY_EXIT)
        stdout.write(HEADER.pack(len(answer)) + answer)
        stdout.flush()


def main(handle: Callable[[bytes], bytes]) -> None:
    """Entry point of a worker module: `python -m MODULE LIMITS_JSON`."""
    limits = Limits.from_arg(sys.argv[1]) if len(sys.argv) > 1 else Limits()
    serve(handle, limits, sys.stdin.buffer, sys.stdout.buffer)
