"""Confluence permissions in the index (issue 15), on the real API server: a Datasource in the default `sync` mode,
its status counting restricted items, and searches with tokens minted by `coco-operator search-token`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import meilisearch
import pytest

from coco_operator.search.signing import KEY_NAME
from tests.e2e.conftest import (
    CLOUD_EMAIL,
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


@pytest.fixture
def search_key_cleanup(meili: Meili) -> Iterator[None]:
    yield
    client = meili.client()
    for key in client.get_keys({"limit": 1000}).results:
        if key.name == KEY_NAME:
            with contextlib.suppress(Exception):
                client.delete_key(key.uid)


def _token(meili: Meili, user: str, *groups: str) -> str:
    args = ["search-token", "--user", user, "--index", meili.index]
    for g in groups:
        args += ["--group", g]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEILI_", "COCO_"))}
    env.update({"COCO_MEILI_URL": meili.url, "COCO_MEILI_API_KEY": meili.key})
    proc = subprocess.run(
        [sys.executable, "-m", "coco_operator.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _titles(meili: Meili, token: str, ds_id: str) -> set[str]:
    index = meilisearch.Client(meili.url, token).index(meili.index)
    return {h["title"] for h in index.search("", {"filter": f'source.id = "{ds_id}"', "limit": 100})["hits"]}


@pytest.mark.usefixtures("search_key_cleanup")
def test_sync_mode_end_to_end(kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    state = cloud.state
    bot = state.user_by_email(CLOUD_EMAIL)
    assert bot is not None
    state.add_member("finance", bot)
    bob = state.add_user("Bob E2E", "bob-e2e@example.com")
    fay = state.add_user("Fay E2E", "fay-e2e@example.com", groups=["finance"])
    state.add_space("PERM", "Permissions")
    state.add_page("PERM", "Expense policy", "<p>open</p>")
    budget = state.add_page("PERM", "Budget 2027", "<p>finance only</p>")
    state.add_attachment(budget, "budget.csv", b"a,b\n1,2\n", "text/csv")
    state.set_restrictions(budget, read_groups=["finance"])
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "perm", cloud.endpoint, "PERM", attachments=True))
    obj = wait_ready(kube, ns, "perm")
    last = obj["status"]["lastSync"]
    assert (last["pages"], last["attachments"], last["restricted"], last["skipped"]) == (2, 1, 2, 0)

    ds_id = f"{ns}/perm"
    everyone = state.groups["confluence-users"].id
    finance = state.groups["finance"].id
    assert _titles(meili, _token(meili, bob.account_id, everyone), ds_id) == {"Expense policy"}
    assert _titles(meili, _token(meili, fay.account_id, everyone, finance), ds_id) == {
        "Expense policy",
        "Budget 2027",
        "budget.csv",
    }

    # The restriction is lifted in Confluence (no new version): the next run opens the page and its attachment.
    state.clear_restrictions(budget)
    obj = wait_handled(kube, ns, "perm", request_sync(kube, ns, "perm"))
    assert obj["status"]["lastSync"]["restricted"] == 0
    assert _titles(meili, _token(meili, bob.account_id, everyone), ds_id) == {
        "Expense policy",
        "Budget 2027",
        "budget.csv",
    }
    row = kube.kubectl("-n", ns, "get", "datasource", "perm", "-o", "json").stdout
    assert json.loads(row)["spec"].get("permissions") is None  # the default is not written into the object


def test_a_pipeline_cannot_set_permissions(kube: Kube, ns: str) -> None:
    obj = datasource(ns, "widen", "https://x.atlassian.net/wiki", "DOCS")
    obj["spec"]["enrichment"] = [{"type": "set", "set": {"fields": {"permissions": "public"}}}]
    proc = kube.apply(obj, check=False)
    assert proc.returncode != 0 and "may not write" in proc.stderr and "permissions" in proc.stderr
    obj["spec"]["enrichment"] = None
    obj["spec"]["permissions"] = {"mode": "everyone"}
    proc = kube.apply(obj, check=False)
    assert proc.returncode != 0 and "spec.permissions.mode" in proc.stderr
