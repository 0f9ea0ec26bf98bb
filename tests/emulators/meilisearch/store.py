"""The emulator's state: indexes, the task queue, API keys; one lock guards all of it."""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .errors import JSON, MeiliError
from .keys import ApiKey
from .settings import default_settings


def fmt_time(ns: int | None) -> str | None:
    """RFC 3339 with nanoseconds, as Meilisearch prints task dates."""
    if ns is None:
        return None
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def fmt_duration(ns: int) -> str:
    text = f"{ns / 1e9:.9f}".rstrip("0")
    return f"PT{text}0S" if text.endswith(".") else f"PT{text}S"


@dataclass
class Index:
    uid: str
    primary_key: str | None
    created_at: int = field(default_factory=time.time_ns)
    updated_at: int = field(default_factory=time.time_ns)
    documents: dict[str, JSON] = field(default_factory=dict)
    settings: JSON = field(default_factory=default_settings)

    def view(self) -> JSON:
        return {
            "uid": self.uid,
            "createdAt": fmt_time(self.created_at),
            "updatedAt": fmt_time(self.updated_at),
            "primaryKey": self.primary_key,
        }


@dataclass
class Task:
    uid: int
    index_uid: str | None
    type: str
    details: JSON
    payload: Any = None
    forced_error: tuple[str, str] | None = None
    status: str = "enqueued"
    batch_uid: int | None = None
    enqueued_at: int = field(default_factory=time.time_ns)
    started_at: int | None = None
    finished_at: int | None = None
    error: JSON | None = None

    def summary(self) -> JSON:
        """The 202 answer of the request that enqueued the task."""
        return {
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": self.status,
            "type": self.type,
            "enqueuedAt": fmt_time(self.enqueued_at),
        }

    def view(self) -> JSON:
        done = self.started_at is not None and self.finished_at is not None
        return {
            "uid": self.uid,
            "batchUid": self.batch_uid,
            "indexUid": self.index_uid,
            "status": self.status,
            "type": self.type,
            "canceledBy": None,
            "details": copy.deepcopy(self.details),
            "error": self.error,
            "duration": fmt_duration((self.finished_at or 0) - (self.started_at or 0)) if done else None,
            "enqueuedAt": fmt_time(self.enqueued_at),
            "startedAt": fmt_time(self.started_at),
            "finishedAt": fmt_time(self.finished_at),
        }


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.indexes: dict[str, Index] = {}
        self.tasks: dict[int, Task] = {}
        self.keys: dict[str, ApiKey] = {}
        self.fail_next_tasks: list[tuple[str, str]] = []
        self._queue: deque[Task] = deque()  # enqueued tasks, oldest first
        self._next_task_uid = 0
        self._next_batch_uid = 0

    def enqueue(self, index_uid: str | None, type_: str, details: JSON, payload: Any = None) -> Task:
        with self.lock:
            task = Task(self._next_task_uid, index_uid, type_, details, payload)
            self._next_task_uid += 1
            if self.fail_next_tasks:
                task.forced_error = self.fail_next_tasks.pop(0)
            self.tasks[task.uid] = task
            self._queue.append(task)
            return task

    def index(self, uid: str) -> Index:
        found = self.indexes.get(uid)
        if found is None:
            raise MeiliError("index_not_found", f"Index `{uid}` not found.")
        return found

    def start_next(self) -> Task | None:
        """Mark the oldest enqueued task as processing, in a batch of its own."""
        with self.lock:
            if not self._queue:
                return None
            task = self._queue.popleft()
            task.status = "processing"
            task.started_at = time.time_ns()
            task.batch_uid = self._next_batch_uid
            self._next_batch_uid += 1
            return task

    def busy(self) -> bool:
        """Whether a task is enqueued or processing."""
        with self.lock:
            return bool(self._queue) or any(t.status == "processing" for t in self.tasks.values())
