"""Run slots shared fairly between namespaces (docs/security.md, point 3).

At most `limit` runs are in progress at once. While runs wait, a slot that frees up goes to the waiting namespace
with the fewest runs in progress; among equals, round robin: the namespace served longest ago (then the run that has
waited longest). So one namespace with many Datasources cannot keep the others queued: it holds more than its share
only while nobody else waits.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque


class FairSlots:
    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.running: Counter[str] = Counter()  # namespace -> runs in progress
        self._waiting: dict[str, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._arrival = itertools.count()
        self._served: dict[str, int] = {}  # namespace -> when it last got a slot (a counter)
        self._grants = itertools.count()

    @property
    def in_progress(self) -> int:
        return sum(self.running.values())

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def full(self) -> bool:
        return self.in_progress >= self.limit

    async def acquire(self, namespace: str) -> None:
        """Wait for a slot; a cancelled wait takes none (or gives back the one it was just handed)."""
        if not self.full() and not self.waiting:
            self._take(namespace)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (next(self._arrival), future)
        self._waiting.setdefault(namespace, deque()).append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(namespace)  # handed a slot in the same moment: pass it on
            else:
                self._forget(namespace, entry)
            raise

    def release(self, namespace: str) -> None:
        self.running[namespace] -= 1
        if self.running[namespace] <= 0:
            del self.running[namespace]
        self._grant()

    def _forget(self, namespace: str, entry: tuple[int, asyncio.Future[None]]) -> None:
        queue = self._waiting.get(namespace)
        if queue is not None and entry in queue:
            queue.remove(entry)
            if not queue:
                del self._waiting[namespace]

    def _grant(self) -> None:
        while not self.full():
            candidates = [
                (self.running[ns], self._served.get(ns, -1), queue[0][0], ns)
                for ns, queue in self._waiting.items()
                if queue
            ]
            if not candidates:
                return
            namespace = min(candidates)[3]
            queue = self._waiting[namespace]
            _, future = queue.popleft()
            if not queue:
                del self._waiting[namespace]
            if future.done():  # cancelled while queued
                continue
            self._take(namespace)
            future.set_result(None)

    def _take(self, namespace: str) -> None:
        self.running[namespace] += 1
        self._served[namespace] = next(self._grants)
