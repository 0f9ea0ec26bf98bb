"""Job mode on the real API server. No kubelet runs here, so the test plays the pod: it runs the Job's own command
with the Job's environment (Secret references resolved as the kubelet would)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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
        COCO_JOB_MEILI_KEY_SECRET="meili-key/key",
        COCO_JOB_POLL_SECONDS="0.5",
    ) as op:
        yield op


@pytest.fixture
def jns(kube: Kube, request: pytest.FixtureRequest) -> str:
    return make_namespace(kube, "j", request.node.name)


def _jobs(kube: Kube, ns: str) -> list[Any]:
    import kubernetes

    return list(kubernetes.client.BatchV1Api(kube.api).list_namespaced_job(ns).items)


def test_job_mode_runs_the_sync_as_a_job(
    kube: Kube, wiki: ConfluenceEmulator, job_meili: Meili, job_operator: Operator, jns: str
) -> None:
    meili_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "meili-key", "namespace": jns},
        "stringData": {"key": MEILI_KEY},
    }
    ds = datasource(jns, "wiki", wiki.endpoint, "JOBS")
    ds["spec"]["sync"]["timeout"] = "15m"
    kube.apply(meili_secret, secret(jns, CLOUD_TOKEN), ds)
    jobs = wait_for("a sync Job", lambda: _jobs(kube, jns), timeout=30)
    job = jobs[0]
    obj = kube.datasource(jns, "wiki")
    assert obj is not None
    container = job.spec.template.spec.containers[0]
    run_id = job.metadata.annotations["coco.rs/run-id"]
    assert container.image == "registry.example/coco-operator:test"
    assert container.args == ["sync", "--datasource", f"{jns}/wiki", "--run-id", run_id]
    assert job.spec.active_deadline_seconds == 900
    assert job.spec.backoff_limit == 0
    assert job.spec.template.spec.restart_policy == "Never"
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Datasource", "wiki", obj["metadata"]["uid"], True)
    token_env = next(e for e in container.env if e.name == "CONFLUENCE_TOKEN")
    assert token_env.value_from.secret_key_ref.name == "confluence-token"
    assert all((e.value or "") != CLOUD_TOKEN for e in container.env)  # never inline
    assert container.security_context.read_only_root_filesystem is True
    running = condition(obj, "Reconciling")
    assert running and running["status"] == "True"

    proc = play_job_pod(kube, job, kube.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    obj = wait_ready(kube, jns, "wiki")
    status = obj["status"]
    assert status["lastSyncRunId"] == run_id
    assert status["lastSync"]["pages"] == 6 and status["documents"] == 6
    assert len(status["history"]) == 1
    assert len(job_meili.docs(f"{jns}/wiki")) == 6
    wait_for("SyncSucceeded event", lambda: [e for e in kube.events(jns, "wiki") if e.reason == "SyncSucceeded"])

    # A Job that disappears before reporting is a failed run, retried with backoff.
    token = request_sync(kube, jns, "wiki")
    second = wait_for(
        "a second Job",
        lambda: [j for j in _jobs(kube, jns) if j.metadata.annotations["coco.rs/run-id"] != run_id],
        timeout=30,
    )[0]
    kube.kubectl("-n", jns, "delete", "job", second.metadata.name, "--wait=false")
    failed = wait_ready(kube, jns, "wiki", status="False", reason="JobVanished", timeout=30)
    assert "disappeared" in condition(failed, "Ready")["message"]  # type: ignore[index]
    assert failed["status"]["lastHandledSyncRequest"] == token
