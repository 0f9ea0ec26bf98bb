"""Runtime problems show as a condition with a reason and advice, are retried, and never delete by mistake."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    condition,
    datasource,
    request_sync,
    secret,
    wait_for,
    wait_handled,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator

pytestmark = pytest.mark.e2e


def _space(cloud: ConfluenceEmulator, key: str, pages: int = 3) -> None:
    cloud.state.add_space(key, f"Space {key}")
    for i in range(pages):
        cloud.state.add_page(key, f"Page {i} of {key}", f"<p>Body {i} about otters.</p>")


def test_missing_secret_then_created(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    _space(cloud, "NOSEC")
    kube.apply(datasource(ns, "wiki", cloud.endpoint, "NOSEC"))
    obj = wait_ready(kube, ns, "wiki", status="False", reason="SecretNotFound")
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert f"Secret {ns}/confluence-token does not exist" in message and "kubectl" in message
    assert condition(obj, "Stalled")["reason"] == "SecretNotFound"  # type: ignore[index]
    assert obj["status"]["consecutiveFailures"] >= 1
    assert meili.docs(f"{ns}/wiki") == []
    warnings = wait_for("warning event", lambda: [e for e in kube.events(ns, "wiki") if e.type == "Warning"])
    assert warnings[0].reason == "SecretNotFound"
    # Fixing the cause is enough: the retry (with backoff) recovers without any other action.
    kube.apply(secret(ns, CLOUD_TOKEN))
    obj = wait_ready(kube, ns, "wiki", timeout=60)
    assert obj["status"]["documents"] == 3 and condition(obj, "Stalled") is None


def test_unknown_connector(kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    obj = datasource(ns, "wiki", cloud.endpoint, "NOSEC")
    obj["spec"]["connector"]["id"] = "sharepoint"
    kube.apply(secret(ns, CLOUD_TOKEN), obj)
    got = wait_ready(kube, ns, "wiki", status="False", reason="ConnectorNotFound")
    assert "Connector 'sharepoint' does not exist" in condition(got, "Ready")["message"]  # type: ignore[index]


def test_wrong_token_keeps_indexed_documents(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    _space(cloud, "AUTHX", pages=4)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "AUTHX"))
    wait_ready(kube, ns, "wiki")
    assert len(meili.docs(f"{ns}/wiki")) == 4
    kube.apply(secret(ns, "revoked-token"))
    request_sync(kube, ns, "wiki")
    obj = wait_ready(kube, ns, "wiki", status="False", reason="AuthenticationFailed")
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "refused the credentials" in message and "API token" in message
    assert obj["status"]["lastError"].startswith("AuthenticationFailed")
    # A failed run deletes nothing.
    assert len(meili.docs(f"{ns}/wiki")) == 4
    assert obj["status"]["documents"] == 4


def test_unknown_space(kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "NOPE"))
    obj = wait_ready(kube, ns, "wiki", status="False", reason="SpaceNotFound")
    assert "space 'NOPE' does not exist" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert meili.docs(f"{ns}/wiki") == []


def test_suspend_and_disable(kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    _space(cloud, "SUSP", pages=2)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "SUSP"))
    wait_ready(kube, ns, "wiki")
    kube.kubectl("-n", ns, "patch", "datasource", "wiki", "--type=merge", "-p", '{"spec":{"sync":{"enabled":false}}}')
    obj = wait_ready(kube, ns, "wiki", status="False", reason="Suspended")
    assert "sync.enabled is false" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "nextSyncTime" not in obj["status"]
    # A sync request on a suspended Datasource does not run it.
    runs_before = obj["status"]["lastSyncTime"]
    kube.kubectl("-n", ns, "patch", "datasource", "wiki", "--type=merge", "-p", '{"spec":{"enabled":false}}')
    wait_ready(kube, ns, "wiki", status="False", reason="Disabled")
    kube.kubectl(
        "-n",
        ns,
        "patch",
        "datasource",
        "wiki",
        "--type=merge",
        "-p",
        '{"spec":{"enabled":true,"sync":{"enabled":true}}}',
    )
    obj = wait_ready(kube, ns, "wiki", status="True")
    # Resuming after a spec change runs again (the spec changed since the last run).
    assert obj["status"]["lastSyncTime"] >= runs_before


def test_spec_change_picked_up_without_restart(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    _space(cloud, "SPCA", pages=2)
    _space(cloud, "SPCB", pages=5)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "SPCA"))
    assert wait_ready(kube, ns, "wiki")["status"]["documents"] == 2
    kube.apply(datasource(ns, "wiki", cloud.endpoint, "SPCB"))
    obj = wait_for(
        "documents of the new space",
        lambda: (o := wait_ready(kube, ns, "wiki")) and o["status"].get("documents") == 5 and o,
    )
    # The old space's documents left this Datasource.
    assert obj["status"]["lastSync"]["deleted"] == 2
    assert {d["metadata"]["space_key"] for d in meili.docs(f"{ns}/wiki")} == {"SPCB"}
    token = request_sync(kube, ns, "wiki")
    assert wait_handled(kube, ns, "wiki", token)["status"]["lastSync"]["deleted"] == 0
