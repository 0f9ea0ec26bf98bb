"""The Kubernetes API failing while a run reads what it needs: a reason and the backoff, not an unhandled exception
(which would leave the run without a status and retry it on a fixed delay)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import kubernetes
import pytest

from coco_operator.controller.kube import KubeApi
from coco_operator.errors import SyncError
from tests.hostile.server import HostileServer, json_answer


def _client(url: str) -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    config.host = url
    config.retries = 0
    return kubernetes.client.ApiClient(config)


@pytest.fixture
def api_server() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


async def test_an_unreachable_api_server_is_a_reason() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kube = KubeApi(_client(f"http://127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(SyncError) as info:
        await kube.read_secret("docs", "confluence-token", "token", owner="Datasource docs/wiki")
    assert info.value.reason == "KubernetesUnavailable" and info.value.retryable
    assert "Secret docs/confluence-token" in info.value.message and "connection failed" in info.value.message
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("status", "reason"), [(500, "KubernetesUnavailable"), (403, "SecretForbidden")])
async def test_api_server_errors_are_reasons(api_server: HostileServer, status: int, reason: str) -> None:
    refusal = json_answer({"kind": "Status", "code": status, "message": "nope"}, status=status)
    api_server.route("/api/v1/namespaces/docs/secrets/confluence-token", refusal)
    api_server.route("/api/v1/namespaces/docs/secrets", refusal)
    kube = KubeApi(_client(api_server.url))
    with pytest.raises(SyncError) as info:
        await kube.read_secret("docs", "confluence-token", "token", owner="Datasource docs/wiki")
    assert info.value.reason == reason and "docs/confluence-token" in info.value.message
    with pytest.raises(SyncError) as write:
        await kube.write_managed_secret("docs", "coco-operator-meili-key", {"key": "k"}, {})
    assert write.value.reason == reason
