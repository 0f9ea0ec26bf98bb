"""The emulator's own API (fault injection, stop/restart, standalone process) and its refusal of what it leaves
out. These tests need the emulator and do not run against a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulators.meilisearch import MeiliEmulator
from tests.meili.conftest import assert_error

pytestmark = pytest.mark.meili
REPO = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer k"}


@pytest.fixture
def fresh() -> Iterator[MeiliEmulator]:
    with MeiliEmulator("k") as emulator:
        yield emulator


def _post(emulator: MeiliEmulator, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{emulator.url}{path}", json=body, headers=AUTH, timeout=10)


def _task(emulator: MeiliEmulator, uid: int) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{emulator.url}/tasks/{uid}", headers=AUTH, timeout=10).json()
    return result


def test_stop_and_restart_keep_data(fresh: MeiliEmulator) -> None:
    url = fresh.url
    assert _post(fresh, "/indexes/idx/documents", [{"id": 1}]).status_code == 202
    fresh.wait_idle()
    fresh.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
    fresh.restart()
    assert fresh.url == url and httpx.get(f"{url}/health", timeout=5).status_code == 200
    assert fresh.documents("idx") == [{"id": 1}]
    assert _post(fresh, "/indexes/idx/documents", [{"id": 2}]).status_code == 202
    fresh.wait_idle()
    assert fresh.documents("idx") == [{"id": 1}, {"id": 2}]


def test_tasks_wait_while_stopped_and_their_states_are_observable(fresh: MeiliEmulator) -> None:
    fresh.task_delay_s = 1.0  # long enough to see, even on a loaded machine
    first = _post(fresh, "/indexes/idx/documents", [{"id": 1}]).json()["taskUid"]
    second = _post(fresh, "/indexes/idx/documents", [{"id": 2}]).json()["taskUid"]
    deadline = time.monotonic() + 5
    while _task(fresh, first)["status"] == "enqueued" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (_task(fresh, first)["status"], _task(fresh, second)["status"]) == ("processing", "enqueued")
    fresh.stop()
    time.sleep(1.5)
    assert fresh.store.tasks[second].status == "enqueued"  # a stopped server processes nothing more
    fresh.restart()
    fresh.task_delay_s = 0
    fresh.wait_idle()
    done_first, done_second = _task(fresh, first), _task(fresh, second)
    assert (done_first["status"], done_second["status"]) == ("succeeded", "succeeded")
    assert done_first["finishedAt"] <= done_second["startedAt"]


def test_fail_next_tasks(fresh: MeiliEmulator) -> None:
    fresh.fail_next_tasks.append(("internal", "simulated disk failure"))
    uid = _post(fresh, "/indexes/idx/documents", [{"id": 1}]).json()["taskUid"]
    fresh.wait_idle()
    assert _task(fresh, uid)["error"] == {
        "message": "simulated disk failure",
        "code": "internal",
        "type": "internal",
        "link": "https://docs.meilisearch.com/errors#internal",
    }
    assert fresh.documents("idx") == [] and fresh.fail_next_tasks == []
    uid = _post(fresh, "/indexes/idx/documents", [{"id": 1}]).json()["taskUid"]
    fresh.wait_idle()
    assert _task(fresh, uid)["status"] == "succeeded" and fresh.documents("idx") == [{"id": 1}]


def test_payload_limit() -> None:
    with MeiliEmulator("k", payload_limit=2048) as small:
        big = [{"id": i, "text": "x" * 100} for i in range(40)]
        message = assert_error(_post(small, "/indexes/big/documents", big), 413, "payload_too_large")
        assert message.endswith("The maximum accepted payload size is 2.05 KB.")
        assert _post(small, "/indexes/big/documents", big[:3]).status_code == 202
        small.wait_idle()
        assert len(small.documents("big")) == 3


def test_without_a_master_key_every_route_but_keys_is_open() -> None:
    with MeiliEmulator(None) as open_emulator:
        assert httpx.post(f"{open_emulator.url}/indexes", json={"uid": "x"}).status_code == 202
        assert_error(httpx.get(f"{open_emulator.url}/keys"), 401, "missing_master_key", "auth")


@pytest.mark.parametrize(
    ("path", "body", "feature"),
    [
        ("/indexes/idx/search", {"q": "", "facets": ["a"]}, "`facets` search parameter"),
        ("/indexes/idx/search", {"q": "", "matchingStrategy": "all"}, "`all` matching strategy"),
        ("/indexes/idx/search", {"filter": "_geoRadius(1, 2, 3)"}, "`_geoRadius` filter"),
        ("/indexes/idx/documents/fetch", {"retrieveVectors": True}, "`retrieveVectors`"),
    ],
)
def test_what_is_not_emulated_is_refused_loudly(fresh: MeiliEmulator, path: str, body: Any, feature: str) -> None:
    _post(fresh, "/indexes", {"uid": "idx"})
    fresh.wait_idle()
    message = assert_error(_post(fresh, path, body), 400, "bad_request")
    assert feature in message and "not implemented by the Meilisearch emulator" in message


def test_settings_not_emulated_are_refused(fresh: MeiliEmulator) -> None:
    response = httpx.patch(f"{fresh.url}/indexes/idx/settings", json={"stopWords": ["the"]}, headers=AUTH)
    assert "`stopWords` setting is not implemented" in assert_error(response, 400, "bad_request")
    response = httpx.patch(f"{fresh.url}/indexes/idx/settings", json={"sillyWords": ["the"]}, headers=AUTH)
    assert "Unknown field `sillyWords`" in assert_error(response, 400, "bad_request")


def test_embedders_that_call_out_are_stored_not_run(fresh: MeiliEmulator) -> None:
    # A real server would call the embedder; the emulator cannot, and keeps the settings (API key redacted).
    rest = {
        "source": "ollama",
        "model": "m",
        "url": "http://127.0.0.1:9/api/embed",
        "apiKey": "k" * 40,
        "dimensions": 2,
    }
    httpx.patch(f"{fresh.url}/indexes/idx/settings", json={"embedders": {"e": rest}}, headers=AUTH)
    fresh.wait_idle()
    shown = httpx.get(f"{fresh.url}/indexes/idx/settings/embedders", headers=AUTH).json()
    assert shown == {"e": {**rest, "apiKey": "kkkkkXXXXXX..."}}
    assert _post(fresh, "/indexes/idx/documents", [{"id": 1}]).status_code == 202
    fresh.wait_idle()
    assert fresh.documents("idx") == [{"id": 1}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_standalone_process() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.meilisearch", "--port", str(port), "--master-key", "KEY"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"meilisearch emulator listening on http://127.0.0.1:{port}\n"
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "available"}
        assert httpx.get(f"http://127.0.0.1:{port}/indexes/x").status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
