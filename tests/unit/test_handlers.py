"""The kopf handlers translate watch events into dispatcher calls and Connector status; nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from coco_operator.controller import handlers
from coco_operator.dispatcher.runner import Dispatcher
from coco_operator.settings import Settings
from tests.unit.fake_kube import FakeConnectorKube, datasource_body
from tests.unit.test_runner import FakeSync


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeConnectorKube]:
    fake = FakeConnectorKube()
    fake.add_connector()
    fake.add_secret("docs", "confluence-token", {"token": "tok"})
    settings = Settings()
    monkeypatch.setattr(handlers.RT, "settings", settings, raising=False)
    monkeypatch.setattr(handlers.RT, "kube", fake, raising=False)
    monkeypatch.setattr(handlers.RT, "dispatcher", Dispatcher(settings, fake, FakeSync()), raising=False)
    monkeypatch.setattr(handlers, "REFRESH_DELAY_S", 0.0)
    monkeypatch.setattr(handlers, "_refreshing", {})
    yield fake


async def _refreshed(kube: FakeConnectorKube, count: int = 1) -> None:
    for _ in range(200):
        if len(kube.connector_patches) >= count and all(t.done() for t in handlers._refreshing.values()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"Connector status written {len(kube.connector_patches)} times, expected {count}")


def _body(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(raw)  # type: ignore[arg-type]


async def test_connector_event_writes_its_status(kube: FakeConnectorKube) -> None:
    kube.add_datasource(datasource_body())
    await handlers.connector_event(body=_body(kube.connectors["confluence"]), type="ADDED", name="confluence")
    ((name, patch),) = kube.connector_patches
    assert name == "confluence" and patch["datasources"] == 1
    assert patch["conditions"][0]["type"] == "Ready" and patch["conditions"][0]["status"] == "True"
    # The same again changes nothing, so nothing is written.
    await handlers.connector_event(body=_body(kube.connectors["confluence"]), type="MODIFIED", name="confluence")
    assert len(kube.connector_patches) == 1


async def test_datasource_event_hands_the_object_to_the_dispatcher_and_recounts(kube: FakeConnectorKube) -> None:
    body = kube.add_datasource(datasource_body())
    dispatcher: Dispatcher = handlers.RT.dispatcher
    try:
        await handlers.datasource_event(body=_body(body), type="ADDED")
        assert set(dispatcher.workers) == {("docs", "wiki")}
        await _refreshed(kube)
        assert kube.connector_patches[-1][1]["datasources"] == 1
        # A deletion is the delete handler's business (it waits for the documents to go).
        await handlers.datasource_event(body=_body(body), type="DELETED")
        assert set(dispatcher.workers) == {("docs", "wiki")}
    finally:
        await dispatcher.shutdown()


async def test_refreshes_of_one_connector_coalesce(kube: FakeConnectorKube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "REFRESH_DELAY_S", 0.05)
    for _ in range(5):
        await handlers.refresh_connector("confluence")
    await _refreshed(kube)
    await asyncio.sleep(0.1)
    assert len(kube.connector_patches) == 1


async def test_unknown_processor_makes_the_connector_stalled(kube: FakeConnectorKube) -> None:
    kube.add_connector("jira", processor="jira")
    await handlers.connector_event(body=_body(kube.connectors["jira"]), type="ADDED", name="jira")
    patch = kube.connector_patches[-1][1]
    assert {c["type"]: c["reason"] for c in patch["conditions"]} == {
        "Ready": "UnknownProcessor",
        "Stalled": "UnknownProcessor",
    }
