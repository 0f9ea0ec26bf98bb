"""Job mode on the real API server. No kubelet runs here, so the test plays the pod: it runs the Job's own command
with the Job's environment (Secret references resolved as the kubelet would).

The operator's Meilisearch key never reaches a tenant namespace: the Job gets a key of its namespace's own, minted by
the operator and limited to the namespace's indexes, which the tests use against the Meilisearch emulator's real key
semantics."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import meilisearch
import pytest
from meilisearch.errors import MeilisearchApiError

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    condition,
    datasource,
    make_namespace,
    own_meili,
    own_operator,
    own_wiki,
    play_job_pod,
    request_sync,
    secret,
    wait_for,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator

pytestmark = pytest.mark.e2e
MEILI_KEY = "job-meili-key"


@pytest.fixture(scope="module")
def job_meili() -> Iterator[Meili]:
    with own_meili(MEILI_KEY, "job_docs") as meili:
        yield meili


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceEmulator]:
    with own_wiki({"JOBS": 6}) as emu:
        yield emu


@pytest.fixture(scope="module")
def job_operator(kube: Kube, job_meili: Meili, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with own_operator(
        kube,
        job_meili,
        tmp_path_factory,
        "j-*",
        COCO_RUN_MODE="Job",
        COCO_JOB_IMAGE="registry.example/coco-operator:test",
        COCO_JOB_POLL_SECONDS="0.5",
    ) as op:
        yield op


@pytest.fixture
def jns(kube: Kube, request: pytest.FixtureRequest) -> str:
    return make_namespace(kube, "j", request.node.name)


def _jobs(kube: Kube, ns: str) -> list[Any]:
    import kubernetes

    return list(kubernetes.client.BatchV1Api(kube.api).list_namespaced_job(ns).items)


def _namespace_key(meili: Meili, ns: str) -> list[dict[str, Any]]:
    keys = meili.client().http.get("keys?limit=1000")["results"]
    return [k for k in keys if k["name"] == f"coco-operator:{ns}"]


def test_job_mode_runs_the_sync_as_a_job(
    kube: Kube, wiki: ConfluenceEmulator, job_meili: Meili, job_operator: Operator, jns: str
) -> None:
    index = f"{jns}_docs"  # an index the namespace owns: the Job's own key reaches it
    ds = datasource(jns, "wiki", wiki.endpoint, "JOBS", index=index)
    ds["spec"]["sync"]["timeout"] = "15m"
    kube.apply(secret(jns, CLOUD_TOKEN), ds)
    jobs = wait_for("a sync Job", lambda: _jobs(kube, jns), timeout=30)
    job = jobs[0]
    obj = kube.datasource(jns, "wiki")
    assert obj is not None
    pod = job.spec.template.spec
    container = pod.containers[0]
    run_id = job.metadata.annotations["coco.rs/run-id"]
    assert container.image == "registry.example/coco-operator:test"
    assert container.args == ["sync", "--datasource", f"{jns}/wiki", "--run-id", run_id]
    assert job.spec.active_deadline_seconds == 900
    assert job.spec.backoff_limit == 0
    assert pod.restart_policy == "Never" and pod.enable_service_links is False
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Datasource", "wiki", obj["metadata"]["uid"], True)
    token_env = next(e for e in container.env if e.name == "CONFLUENCE_TOKEN")
    assert token_env.value_from.secret_key_ref.name == "confluence-token"
    assert all((e.value or "") not in (CLOUD_TOKEN, MEILI_KEY) for e in container.env)  # never inline
    assert container.security_context.read_only_root_filesystem is True
    running = condition(obj, "Reconciling")
    assert running and running["status"] == "True"

    # The Meilisearch key: the namespace's own, in the operator-managed Secret; never the operator's key.
    key_env = next(e for e in container.env if e.name == "COCO_MEILI_API_KEY")
    assert key_env.value_from.secret_key_ref.name == "coco-operator-meili-key"
    managed = kube.core.read_namespaced_secret("coco-operator-meili-key", jns)
    assert managed.metadata.labels["app.kubernetes.io/managed-by"] == "coco-operator"
    ns_key = base64.b64decode(managed.data["key"]).decode()
    assert ns_key != MEILI_KEY
    for item in kube.core.list_namespaced_secret(jns).items:
        assert MEILI_KEY not in [base64.b64decode(v).decode() for v in (item.data or {}).values()]
    (minted,) = _namespace_key(job_meili, jns)
    assert sorted(minted["indexes"]) == sorted([jns, f"{jns}_*"])
    assert "settings.update" not in minted["actions"] and "keys.create" not in minted["actions"]
    # The index and its settings exist before the Job: its key may not create or change them.
    assert job_meili.client().get_index(index).primary_key == "id"

    proc = play_job_pod(kube, job, kube.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    obj = wait_ready(kube, jns, "wiki")
    status = obj["status"]
    assert status["lastSyncRunId"] == run_id
    assert status["lastSync"]["pages"] == 6 and status["documents"] == 6
    assert len(status["history"]) == 1
    assert len(job_meili.docs(f"{jns}/wiki", index)) == 6
    wait_for("SyncSucceeded event", lambda: [e for e in kube.events(jns, "wiki") if e.reason == "SyncSucceeded"])

    # What the tenant can do with the key it can read: its own indexes only, no settings, no keys.
    tenant = meilisearch.Client(job_meili.url, ns_key)
    assert tenant.index(index).get_documents({"limit": 1}).total == 6
    for attempt in (
        lambda: tenant.index(job_meili.index).add_documents([{"id": "x"}]),  # the shared index
        lambda: tenant.index("another-team_docs").get_documents({"limit": 1}),
        lambda: tenant.index(index).update_settings({"embedders": {"x": {"source": "userProvided", "dimensions": 2}}}),
        lambda: tenant.get_keys(),
    ):
        with pytest.raises(MeilisearchApiError) as denied:
            attempt()
        assert denied.value.status_code == 403

    # Deleting the Secret rotates the key: the next run mints another before its Job starts, and the old one is gone.
    kube.core.delete_namespaced_secret("coco-operator-meili-key", jns)
    token = request_sync(kube, jns, "wiki")
    second = wait_for(
        "a second Job",
        lambda: [j for j in _jobs(kube, jns) if j.metadata.annotations["coco.rs/run-id"] != run_id],
        timeout=30,
    )[0]
    (rotated,) = _namespace_key(job_meili, jns)
    assert rotated["uid"] != minted["uid"] and rotated["key"] != ns_key
    with pytest.raises(MeilisearchApiError):
        tenant.index(index).get_documents({"limit": 1})

    # A Job that disappears before reporting is a failed run, retried with backoff.
    kube.kubectl("-n", jns, "delete", "job", second.metadata.name, "--wait=false")
    failed = wait_ready(kube, jns, "wiki", status="False", reason="JobVanished", timeout=30)
    assert "disappeared" in condition(failed, "Ready")["message"]  # type: ignore[index]
    assert failed["status"]["lastHandledSyncRequest"] == token

    # The namespace's last Datasource goes: its key and the Secret go with it.
    kube.kubectl("-n", jns, "delete", "datasource", "wiki", "--wait=false")
    wait_for("Datasource deleted", lambda: kube.datasource(jns, "wiki") is None, 30)
    assert _namespace_key(job_meili, jns) == []
    assert not [s for s in kube.core.list_namespaced_secret(jns).items if s.metadata.name == "coco-operator-meili-key"]


def test_job_mode_into_a_shared_index_runs_in_the_operator(
    kube: Kube, wiki: ConfluenceEmulator, job_meili: Meili, job_operator: Operator, jns: str
) -> None:
    """The default index is shared: no key of the namespace could reach it, and the operator's never goes there. The
    run happens in the operator (job.sharedIndex: InProcess, the default)."""
    kube.apply(secret(jns, CLOUD_TOKEN), datasource(jns, "wiki", wiki.endpoint, "JOBS"))
    obj = wait_ready(kube, jns, "wiki")
    assert obj["status"]["documents"] == 6 and obj["status"]["index"] == job_meili.index
    assert _jobs(kube, jns) == [] and _namespace_key(job_meili, jns) == []
    assert not [s for s in kube.core.list_namespaced_secret(jns).items if s.metadata.name == "coco-operator-meili-key"]
