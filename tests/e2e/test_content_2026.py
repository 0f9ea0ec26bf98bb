"""Comments, folders and excluded labels of a 2026 Confluence Cloud, synced by the operator on the real API server."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    datasource,
    request_sync,
    secret,
    wait_handled,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator

pytestmark = pytest.mark.e2e


def test_comments_folders_and_excluded_labels(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    state = cloud.state
    state.add_space("C26", "Content 2026")
    folder = state.add_folder("C26", "Runbooks")
    page = state.add_page("C26", "Failover", "<p>Promote the replica.</p>", parent_id=folder)
    hidden = state.add_page("C26", "Salaries", "<p>numbers</p>", labels=["confidential"])
    state.add_comment(hidden, "<p>comment on a confidential page</p>")
    comment = state.add_comment(page, "<p>Check the lighthouse dashboard first.</p>")
    ds_id = f"{ns}/c26"
    obj = datasource(ns, "c26", cloud.endpoint, "C26")
    config = obj["spec"]["connector"]["config"]
    config.update({"enable_comments": True, "enable_tree_items": True, "exclude_labels": ["confidential"]})
    kube.apply(secret(ns, CLOUD_TOKEN), obj)

    status = wait_ready(kube, ns, "c26")["status"]
    assert {k: status["lastSync"][k] for k in ("pages", "comments", "treeItems")} == {
        "pages": 1,
        "comments": 1,
        "treeItems": 1,
    }
    hits = meili.search("lighthouse", ds_id)
    assert [h["type"] for h in hits] == ["comment"]
    assert hits[0]["categories"] == ["Runbooks", "Failover"] and f"focusedCommentId={comment}" in hits[0]["url"]
    assert meili.search("Promote", ds_id)[0]["categories"] == ["Runbooks"]
    assert meili.search("numbers", ds_id) == [] and meili.search("confidential", ds_id) == []

    # The page gains the excluded label (no new version): it leaves the index with its comment on the next run.
    state.add_labels(page, "confidential")
    obj = wait_handled(kube, ns, "c26", request_sync(kube, ns, "c26"))
    assert obj["status"]["lastSync"]["deleted"] == 2
    assert {d["type"] for d in meili.docs(ds_id)} == {"folder"}
