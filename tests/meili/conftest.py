"""Fixtures for the Meilisearch conformance suite.

By default the suite runs against :class:`tests.emulators.meilisearch.MeiliEmulator`. With ``MEILI_URL`` and
``MEILI_MASTER_KEY`` set it runs against that real server instead: every index it creates carries a per-run prefix
(``test_<random>_``) and is deleted afterwards, and so is every API key it creates.
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

    def new_uid(self, infix: str = "") -> str:
        return f"{self.prefix}{infix}{next(self._counter)}"

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=30)

    def request(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        with self.http(key) as client:
            return client.request(method, path, **kwargs)

    def wait_task(self, task_uid: int, timeout_s: float = 30.0) -> dict[str, Any]:
        """Poll a task (with the master key) until it is finished and return its full object."""
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

    def run(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Send a write, check it was accepted (202) and wait for its task."""
        response = self.request(method, path, key=key, **kwargs)
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
            page = self.request("GET", "/indexes", params={"limit": 10000}).json()
            for uid in (i["uid"] for i in page["results"] if i["uid"].startswith(self.prefix)):
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
def new_index_uid(meili: MeiliTarget) -> Iterator[Callable[..., str]]:
    """Factory of unique index uids (`infix` after the run's prefix); every index it named is deleted after the test."""
    created: list[str] = []

    def make(infix: str = "") -> str:
        uid = meili.new_uid(infix)
        created.append(uid)
        return uid

    yield make
    for uid in created:
        meili.delete_index(uid)


@pytest.fixture
def index_uid(new_index_uid: Callable[..., str]) -> str:
    return new_index_uid()


@pytest.fixture
def make_key(meili: MeiliTarget) -> Iterator[Callable[..., dict[str, Any]]]:
    """Factory of API keys (`POST /keys` body fields as keyword arguments); each is deleted after the test."""
    created: list[str] = []

    def make(**fields: Any) -> dict[str, Any]:
        body = {"expiresAt": None, **fields}
        response = meili.request("POST", "/keys", json=body)
        assert response.status_code == 201, response.text
        key: dict[str, Any] = response.json()
        created.append(key["uid"])
        return key

    yield make
    for uid in created:
        with contextlib.suppress(Exception):
            meili.request("DELETE", f"/keys/{uid}")


@pytest.fixture
def emulator(meili: MeiliTarget) -> MeiliEmulator:
    """The session emulator; tests that need it are skipped against a real server."""
    if meili.emulator is None:
        pytest.skip("needs the emulator (MEILI_URL points at a real Meilisearch)")
    return meili.emulator


# --- helpers shared by the test modules -----------------------------------------------------------------------


def add_documents(
    meili: MeiliTarget, uid: str, docs: Any, *, primary_key: str | None = "id", key: str | None = None
) -> dict[str, Any]:
    params = {"primaryKey": primary_key} if primary_key else {}
    return meili.run("POST", f"/indexes/{uid}/documents", json=docs, params=params, key=key)


def update_settings(meili: MeiliTarget, uid: str, settings: dict[str, Any]) -> dict[str, Any]:
    task = meili.run("PATCH", f"/indexes/{uid}/settings", json=settings)
    assert task["type"] == "settingsUpdate"
    return task


def fetch(meili: MeiliTarget, uid: str, **body: Any) -> httpx.Response:
    return meili.request("POST", f"/indexes/{uid}/documents/fetch", json={"limit": 1000, **body})


def all_docs(meili: MeiliTarget, uid: str) -> list[dict[str, Any]]:
    response = fetch(meili, uid)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def doc_ids(docs: list[dict[str, Any]]) -> set[str]:
    return {str(d["id"]) for d in docs}


def search(meili: MeiliTarget, uid: str, body: dict[str, Any], *, key: str | None = None) -> httpx.Response:
    return meili.request("POST", f"/indexes/{uid}/search", json=body, key=key)


def assert_error(response: httpx.Response, status: int, code: str, error_type: str = "invalid_request") -> str:
    """Meilisearch's error object, with the given status and code; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "code", "type", "link"}, body
    assert (body["code"], body["type"]) == (code, error_type), body
    assert body["link"] == f"https://docs.meilisearch.com/errors#{code}"
    message: str = body["message"]
    return message


def assert_task_failed(task: dict[str, Any], code: str, error_type: str = "invalid_request") -> str:
    assert task["status"] == "failed", task
    error = task["error"]
    assert (error["code"], error["type"]) == (code, error_type), error
    assert error["link"] == f"https://docs.meilisearch.com/errors#{code}"
    message: str = error["message"]
    return message
