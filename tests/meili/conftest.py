"""Fixtures for the Meilisearch conformance suite.

By default the suite runs against :class:`tests.emulators.meilisearch.MeiliEmulator`. With ``MEILI_URL`` and
``MEILI_MASTER_KEY`` set it runs against that real server instead; every index it creates then carries a
per-run prefix (``test_<random>_``) and is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import meilisearch
import pytest

from tests.emulators.meilisearch import MeiliEmulator

EMULATOR_MASTER_KEY = "conformance-master-key"


@dataclass
class MeiliTarget:
    """The server under test and a small raw-HTTP toolbox for it."""

    url: str
    key: str
    prefix: str
    emulator: MeiliEmulator | None = None
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None

    def new_uid(self) -> str:
        return f"{self.prefix}{next(self._counter)}"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key if key is not None else self.key}"}

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(key), timeout=30)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.http() as client:
            return client.request(method, path, **kwargs)

    def wait_task(self, task_uid: int, timeout_s: float = 30.0) -> dict[str, Any]:
        """Poll a task until it is finished and return its full object."""
        deadline = time.monotonic() + timeout_s
        with self.http() as client:
            while True:
                response = client.get(f"/tasks/{task_uid}")
                response.raise_for_status()
                task: dict[str, Any] = response.json()
                if task["status"] in ("succeeded", "failed", "canceled"):
                    return task
                if time.monotonic() > deadline:
                    raise TimeoutError(f"task {task_uid} still {task['status']} after {timeout_s}s")
                time.sleep(0.02)

    def run(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Send a write, check it was accepted (202) and wait for its task."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == 202, response.text
        return self.wait_task(response.json()["taskUid"])

    def delete_index(self, uid: str) -> None:
        with contextlib.suppress(Exception):
            response = self.request("DELETE", f"/indexes/{uid}")
            if response.status_code == 202:
                self.wait_task(response.json()["taskUid"])

    def cleanup_prefix(self) -> None:
        """Delete every index of this run (a real server outlives the suite)."""
        with contextlib.suppress(Exception):
            offset, uids = 0, []
            while True:
                page = self.request("GET", "/indexes", params={"offset": offset, "limit": 100}).json()
                uids += [i["uid"] for i in page["results"] if i["uid"].startswith(self.prefix)]
                offset += len(page["results"])
                if not page["results"] or offset >= page["total"]:
                    break
            for uid in uids:
                self.delete_index(uid)


@pytest.fixture(scope="session")
def meili() -> Iterator[MeiliTarget]:
    prefix = f"test_{secrets.token_hex(4)}_"
    url, key = os.environ.get("MEILI_URL"), os.environ.get("MEILI_MASTER_KEY")
    if url and key:
        target = MeiliTarget(url.rstrip("/"), key, prefix)
        yield target
        target.cleanup_prefix()
        return
    with MeiliEmulator(EMULATOR_MASTER_KEY) as emulator:
        yield MeiliTarget(emulator.url, EMULATOR_MASTER_KEY, prefix, emulator)


@pytest.fixture
def meili_client(meili: MeiliTarget) -> meilisearch.Client:
    return meilisearch.Client(meili.url, meili.key, timeout=30)


@pytest.fixture
def new_index_uid(meili: MeiliTarget) -> Iterator[Callable[[], str]]:
    """Factory of unique index uids; every index it named is deleted after the test."""
    created: list[str] = []

    def make() -> str:
        uid = meili.new_uid()
        created.append(uid)
        return uid

    yield make
    for uid in created:
        meili.delete_index(uid)


@pytest.fixture
def index_uid(new_index_uid: Callable[[], str]) -> str:
    return new_index_uid()


@pytest.fixture
def emulator(meili: MeiliTarget) -> MeiliEmulator:
    """The session emulator; tests that need it are skipped against a real server."""
    if meili.emulator is None:
        pytest.skip("needs the emulator (MEILI_URL points at a real Meilisearch)")
    return meili.emulator
