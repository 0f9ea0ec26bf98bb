"""A Confluence space synced into Meilisearch by the operator, on the real API server."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    DC_PAT,
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


def _seed_space(cloud: ConfluenceEmulator, key: str) -> dict[str, str]:
    state = cloud.state
    state.add_space(key, f"Space {key}")
    home = state.add_page(key, "Home", "<p>Welcome to the space.</p>")
    ids = {"home": home}
    ids["install"] = state.add_page(
        key,
        "Install guide",
        "<h2>Steps</h2><p>Run the quantum flux capacitor installer.</p><ul><li>one</li><li>two</li></ul>",
        parent_id=home,
        labels=["howto"],
    )
    ids["faq"] = state.add_page(key, "FAQ", "<p>Frequently asked questions about zebras.</p>", parent_id=home)
    ids["post"] = state.add_blogpost(key, "Release notes", "<p>We shipped the marmalade release.</p>")
    ids["att"] = state.add_attachment(ids["install"], "notes.txt", b"attachment text about pelicans", "text/plain")
    return ids


def test_sync_end_to_end_cloud(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    ids = _seed_space(cloud, "E2E1")
    ds_id = f"{ns}/wiki"
    kube.apply(
        secret(ns, CLOUD_TOKEN),
        datasource(ns, "wiki", cloud.endpoint, "E2E1", blogposts=True, attachments=True),
    )
    obj = wait_ready(kube, ns, "wiki")
    status = obj["status"]
    expected = {"pages": 3, "blogposts": 1, "attachments": 1, "deleted": 0, "skipped": 0, "dropped": 0}
    assert {k: status["lastSync"][k] for k in expected} == expected
    assert status["documents"] == 5
    assert status["lastSyncResult"] == "Succeeded"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    for key in ("lastSyncStartTime", "lastSyncTime", "lastSuccessfulSyncTime", "nextSyncTime", "lastSyncDuration"):
        assert status.get(key), key
    assert condition(obj, "Stalled") is None

    docs = meili.docs(ds_id)
    assert len(docs) == 5
    assert {d["type"] for d in docs} == {"page", "blogpost", "attachment"}
    hits = meili.search("flux capacitor", ds_id)
    assert [h["title"] for h in hits] == ["Install guide"]
    install = hits[0]
    assert install["categories"] == ["Home"] and install["tags"] == ["howto"]
    assert install["url"].startswith(cloud.endpoint)
    assert meili.search("pelicans", ds_id)[0]["type"] == "attachment"

    # kubectl get shows the columns a platform engineer reads.
    out = kube.kubectl("-n", ns, "get", "datasources").stdout
    header, row = out.splitlines()[0], out.splitlines()[1]
    for column in ("CONNECTOR", "SPACE", "READY", "STATUS", "DOCUMENTS", "LAST SYNC", "AGE"):
        assert column in header
    assert "confluence" in row and "E2E1" in row and "True" in row

    # An Event says the run succeeded, with its counts.
    events = wait_for(
        "SyncSucceeded event", lambda: [e for e in kube.events(ns, "wiki") if e.reason == "SyncSucceeded"]
    )
    assert "5 indexed" in events[0].message
    started = [e for e in kube.events(ns, "wiki") if e.reason == "SyncStarted"]
    assert started and "full sync of space E2E1" in started[0].message

    # A change in Confluence shows after the next run.
    cloud.state.update_page(ids["faq"], body="<p>Frequently asked questions about giraffes.</p>")
    token = request_sync(kube, ns, "wiki")
    obj = wait_handled(kube, ns, "wiki", token)
    assert condition(obj, "Ready")["status"] == "True"  # type: ignore[index]
    assert [h["title"] for h in meili.search("giraffes", ds_id)] == ["FAQ"]
    assert meili.search("zebras", ds_id) == []

    # Deleted content leaves the index.
    cloud.state.purge(ids["post"])
    cloud.state.trash(ids["faq"])
    token = request_sync(kube, ns, "wiki")
    obj = wait_handled(kube, ns, "wiki", token)
    assert obj["status"]["lastSync"]["deleted"] == 2
    assert obj["status"]["documents"] == 3
    assert {d["title"] for d in meili.docs(ds_id)} == {"Home", "Install guide", "notes.txt"}

    # Deleting the Datasource removes its documents, then the object goes.
    kube.kubectl("-n", ns, "delete", "datasource", "wiki", "--wait=false")
    wait_for("Datasource gone", lambda: kube.datasource(ns, "wiki") is None, timeout=60)
    assert meili.docs(ds_id) == []


def test_sync_data_center_with_pat(
    kube: Kube, meili: Meili, datacenter: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    state = datacenter.state
    state.add_space("OPS", "Operations")
    for i in range(7):
        state.add_page("OPS", f"Runbook {i}", f"<p>Restart procedure number {i} for the ingest pipeline.</p>")
    kube.apply(secret(ns, DC_PAT), datasource(ns, "ops", datacenter.endpoint, "OPS", username=None))
    obj = wait_ready(kube, ns, "ops")
    assert obj["status"]["lastSync"]["pages"] == 7
    hits = meili.search("ingest pipeline", f"{ns}/ops")
    assert len(hits) == 7
    assert all(h["url"].startswith(datacenter.endpoint) for h in hits)
    # Every request carried the PAT as a Bearer token.
    assert any(r.path.startswith("/confluence/rest/api/content") for r in state.requests)


def test_connector_reports_ready_and_usage(kube: Kube, operator: Operator) -> None:
    obj = wait_for(
        "Connector confluence Ready", lambda: (c := kube.connector("confluence")) and condition(c, "Ready") and c
    )
    ready = condition(obj, "Ready")
    assert ready and ready["status"] == "True"
    out = kube.kubectl("get", "connectors").stdout
    assert "PROCESSOR" in out.splitlines()[0] and "confluence" in out
