"""What GitOps tools see on a live API server: `kubectl wait`, no churn, no spec writes, and the Argo CD health
checks of docs/argocd/ evaluated on the objects the operator actually left there."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Operator,
    condition,
    datasource,
    secret,
    wait_for,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator
from tests.unit.test_argocd_health import Health, argo_health

pytestmark = pytest.mark.e2e

QUIET_SECONDS = 5.0
# Managers of the writes this test makes itself (kubectl apply/patch/annotate); every other manager is the operator.
TEST_MANAGERS = ("kubectl",)
# What the operator writes as: its own status writes and kopf's finalizer/annotation bookkeeping. Other managers
# (kubectl, other tests' server-side applies) are users.
OPERATOR_MANAGERS = ("coco-operator", "kopf")


def _space(cloud: ConfluenceEmulator, key: str, pages: int = 2) -> None:
    cloud.state.add_space(key, f"Space {key}")
    for i in range(pages):
        cloud.state.add_page(key, f"Page {i} of {key}", f"<p>Body {i} about herons.</p>")


def _get(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    obj = kube.datasource(ns, name)
    assert obj is not None, f"Datasource {ns}/{name} is gone"
    return obj


def _diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Leaf paths that differ, for a readable failure message."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            out += _diff(before.get(key), after.get(key), f"{path}.{key}")
        return out
    return [] if before == after else [f"{path}: {json.dumps(before)} -> {json.dumps(after)}"]


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    strip = ("resourceVersion", "managedFields")
    b = {**before, "metadata": {k: v for k, v in before["metadata"].items() if k not in strip}}
    a = {**after, "metadata": {k: v for k, v in after["metadata"].items() if k not in strip}}
    return _diff(b, a) or ["(no visible field changed: a no-op write)"]


def _assert_unchanged(before: dict[str, Any], after: dict[str, Any], why: str) -> None:
    if after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]:
        what = f"{after['kind']} {after['metadata'].get('namespace', '')}/{after['metadata']['name']}"
        pytest.fail(f"{what} was rewritten {why}:\n" + "\n".join(_changes(before, after)))


def _assert_quiet(kube: Kube, ns: str, name: str, seconds: float = QUIET_SECONDS) -> dict[str, Any]:
    """Nothing happened, so nothing may be written: resourceVersion stays put for `seconds`."""
    before = _get(kube, ns, name)
    time.sleep(seconds)
    after = _get(kube, ns, name)
    _assert_unchanged(before, after, f"within {seconds}s although nothing happened")
    return after


def _settled_connector(kube: Kube, name: str, still_for: float = 2.5, timeout: float = 30) -> dict[str, Any]:
    """The Connector once its resourceVersion has not moved for `still_for` seconds."""
    deadline = time.monotonic() + timeout
    last = kube.connector(name)
    assert last is not None, f"Connector {name} is missing"
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        current = kube.connector(name)
        assert current is not None, f"Connector {name} is gone"
        if current["metadata"]["resourceVersion"] != last["metadata"]["resourceVersion"]:
            last, since = current, time.monotonic()
        elif time.monotonic() - since >= still_for:
            return current
    raise AssertionError(f"Connector {name} kept changing for {timeout}s")


def _assert_operator_writes_only_status(obj: dict[str, Any]) -> None:
    """The operator's field managers (every manager but the test's kubectl) own status, written through the status
    subresource, and on the main resource at most the finalizer and annotations (kopf's bookkeeping); spec is owned
    by the test's kubectl alone."""
    what = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    all_entries = obj["metadata"].get("managedFields") or []
    entries = [e for e in all_entries if str(e.get("manager", "")) in OPERATOR_MANAGERS]
    managers = sorted({(str(e.get("manager")), str(e.get("subresource", ""))) for e in entries})
    assert any("f:status" in (e.get("fieldsV1") or {}) for e in entries), (
        f"no operator field manager owns the status of {what}; managers: {managers}"
    )
    for entry in entries:
        fields = entry.get("fieldsV1") or {}
        where = f"{what}: manager {entry.get('manager')!r} (subresource {entry.get('subresource', '-')!r})"
        assert set(fields) <= {"f:status", "f:metadata"}, f"{where} owns {sorted(fields)}"
        if entry.get("subresource") == "status":
            assert set(fields) <= {"f:status"}, f"{where} owns {sorted(fields)}"
        assert set(fields.get("f:metadata") or {}) <= {"f:finalizers", "f:annotations"}, (
            f"{where} owns metadata fields {sorted(fields['f:metadata'])}"
        )
    spec_owners = {str(e.get("manager")) for e in all_entries if "f:spec" in (e.get("fieldsV1") or {})}
    assert not spec_owners & set(OPERATOR_MANAGERS), f"spec owners of {what}: {spec_owners}"


def test_kubectl_wait_for_ready_after_sync(kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    _space(cloud, "GOWAIT")
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "GOWAIT"))
    proc = kube.kubectl("-n", ns, "wait", "--for=condition=Ready", "datasource/wiki", "--timeout=60s", check=False)
    assert proc.returncode == 0, f"kubectl wait failed ({proc.returncode}): {proc.stderr}{proc.stdout}"
    obj = _get(kube, ns, "wiki")
    assert obj["status"]["documents"] == 2
    assert argo_health(obj).status == "Healthy"

    # After a spec change kubectl wait must not return on the Ready condition of the old generation: every condition
    # carries observedGeneration, which kubectl compares with metadata.generation.
    kube.kubectl("-n", ns, "patch", "datasource", "wiki", "--type=merge", "-p", '{"spec":{"name":"Renamed wiki"}}')
    proc = kube.kubectl("-n", ns, "wait", "--for=condition=Ready", "datasource/wiki", "--timeout=60s", check=False)
    assert proc.returncode == 0, f"kubectl wait failed ({proc.returncode}): {proc.stderr}{proc.stdout}"
    obj = _get(kube, ns, "wiki")
    ready = condition(obj, "Ready")
    assert obj["metadata"]["generation"] == 2
    assert ready is not None and ready["observedGeneration"] == 2 and ready["status"] == "True"


def test_no_churn_and_no_spec_writes(kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    _space(cloud, "GOQUIET", pages=3)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "GOQUIET", interval="1h"))
    applied = wait_for("the Datasource", lambda: kube.datasource(ns, "wiki"))
    obj = wait_ready(kube, ns, "wiki")
    assert obj["status"]["documents"] == 3

    # Nothing is due for an hour, so nothing may be written: no heartbeat, no nextSyncTime refresh, no no-op patch.
    before = obj
    # The Connector recounts its Datasources about a second after one appears: let that legitimate write land first.
    connector = _settled_connector(kube, "confluence")
    time.sleep(QUIET_SECONDS)
    after = _get(kube, ns, "wiki")
    _assert_unchanged(before, after, f"within {QUIET_SECONDS}s after its sync although nothing happened")

    # The operator never writes spec: same spec as applied, generation still 1.
    assert after["spec"] == applied["spec"]
    assert after["metadata"]["generation"] == 1

    _assert_operator_writes_only_status(after)

    # Nor was the Connector rewritten meanwhile.
    later = kube.connector("confluence")
    assert later is not None
    _assert_unchanged(connector, later, f"within {QUIET_SECONDS}s although no Datasource or Connector changed")
    _assert_operator_writes_only_status(later)


def test_argo_health_on_live_objects(kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    _space(cloud, "GOHEALTH")
    # A synced Datasource is Healthy, with the operator's own message.
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "synced", cloud.endpoint, "GOHEALTH"))
    obj = wait_ready(kube, ns, "synced")
    health = argo_health(obj)
    assert health == Health("Healthy", condition(obj, "Ready")["message"])  # type: ignore[index]
    assert health.message.startswith("Synced")

    # A missing Secret: Degraded, with what to fix.
    missing = datasource(ns, "nosecret", cloud.endpoint, "GOHEALTH")
    missing["spec"]["connector"]["config"]["tokenSecretRef"]["name"] = "no-such-secret"
    kube.apply(missing)
    obj = wait_ready(kube, ns, "nosecret", status="False", reason="SecretNotFound")
    health = argo_health(obj)
    assert health.status == "Degraded", health
    assert health.message.startswith("SecretNotFound: ") and f"Secret {ns}/no-such-secret does not exist" in (
        health.message
    )

    # sync.enabled: false: Suspended, and the paused object stays quiet.
    kube.kubectl("-n", ns, "patch", "datasource", "synced", "--type=merge", "-p", '{"spec":{"sync":{"enabled":false}}}')
    # The wait docs/argocd-health.md suggests for "paused" works on this kubectl.
    proc = kube.kubectl(
        "-n",
        ns,
        "wait",
        """--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=Suspended""",
        "datasource/synced",
        "--timeout=60s",
        check=False,
    )
    assert proc.returncode == 0, f"kubectl wait failed ({proc.returncode}): {proc.stderr}{proc.stdout}"
    obj = wait_ready(kube, ns, "synced", status="False", reason="Suspended")
    health = argo_health(obj)
    assert health.status == "Suspended", health
    assert health.message.startswith("Suspended: sync.enabled is false")
    assert argo_health(_assert_quiet(kube, ns, "synced", 3)).status == "Suspended"

    # The Connector the Datasources use is Healthy.
    connector = wait_for(
        "Connector confluence Ready",
        lambda: (c := kube.connector("confluence")) and (condition(c, "Ready") or {}).get("status") == "True" and c,
    )
    health = argo_health(connector)
    assert health.status == "Healthy", health
    assert health.message.startswith(condition(connector, "Ready")["message"])  # type: ignore[index]
