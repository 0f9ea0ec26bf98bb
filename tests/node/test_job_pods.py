"""Job mode on a real node: the chart installed with runMode=Job, each run a batch/v1 Job whose pod runs
`coco-operator sync --datasource NS/NAME --run-id ID` under the chart's sync ServiceAccount: one that succeeds, one
that fails (a wrong token) and one that runs out of time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    condition,
    datasource,
    secret,
    wait_for,
    wait_ready,
)
from tests.e2e.test_chart import Helm
from tests.emulators.confluence import ConfluenceEmulator
from tests.harness.node import Node
from tests.node.conftest import ExternalNode, Release, cloud_wiki, meili_key_secret, values_args

pytestmark = pytest.mark.node
NS = "wiki-jobs"
# An index the namespace owns: only its own minted key goes into a Job (a shared index runs in the operator).
INDEX = f"{NS}_docs"


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceEmulator]:
    emu = cloud_wiki({"JOBS": 5})
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def slow_wiki() -> Iterator[ConfluenceEmulator]:
    emu = cloud_wiki({"SLOW": 30})
    # Every request outlasts the Job's 8 s deadline, so no machine is fast enough to finish the run in time.
    emu.state.latency_s = 12.0
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def release(kube: Kube, helm: Helm, node: Node | ExternalNode, meili: Meili) -> Iterator[Release]:
    rel = Release(kube, helm, node)
    meili_key_secret(kube, rel.namespace, meili.key)
    # The watched namespace exists first; the chart gives it the sync ServiceAccount and its RoleBinding.
    meili_key_secret(kube, NS, meili.key)
    kube.apply(secret(NS, CLOUD_TOKEN))
    rel.install(
        *values_args(meili, ("COCO_JOB_POLL_SECONDS", "1")),
        "--set",
        "runMode=Job",
        "--set-json",
        f'watchNamespaces=["{NS}"]',
    )
    yield rel
    helm("uninstall", rel.name, "-n", rel.namespace, check=False)


def jobs_of(kube: Kube, name: str) -> list[Any]:
    batch = kubernetes.client.BatchV1Api(kube.api)
    return list(batch.list_namespaced_job(NS, label_selector=f"coco.rs/datasource={name}").items)


def pods_of(kube: Kube, job: Any) -> list[Any]:
    core = kubernetes.client.CoreV1Api(kube.api)
    return list(core.list_namespaced_pod(NS, label_selector=f"job-name={job.metadata.name}").items)


def finished_job(kube: Kube, name: str, timeout: float = 120) -> Any:
    """The Datasource's Job once Complete or Failed (set after its pod terminated, unlike FailureTarget)."""

    def done() -> Any:
        found = [
            j
            for j in jobs_of(kube, name)
            if any(c.type in ("Complete", "Failed") and c.status == "True" for c in (j.status.conditions or []))
        ]
        return found[0] if found else None

    try:
        return wait_for(f"the sync Job of {NS}/{name} finished", done, timeout=timeout)
    except AssertionError:
        jobs = [(j.metadata.name, j.status.conditions, j.status.terminating) for j in jobs_of(kube, name)]
        pods = [
            (p.metadata.name, p.status.phase, p.status.container_statuses)
            for j in jobs_of(kube, name)
            for p in pods_of(kube, j)
        ]
        print(f"jobs: {jobs}\npods: {pods}\nstatus: {(kube.datasource(NS, name) or {}).get('status')}")
        raise


def test_a_sync_job_runs_to_completion(release: Release, wiki: ConfluenceEmulator, meili: Meili, kube: Kube) -> None:
    kube.apply(datasource(NS, "ok", wiki.endpoint, "JOBS", index=INDEX))
    job = finished_job(kube, "ok")
    assert job.status.succeeded == 1, job.status
    pod = pods_of(kube, job)[0]
    container = pod.spec.containers[0]
    run_id = job.metadata.annotations["coco.rs/run-id"]
    assert container.args == ["sync", "--datasource", f"{NS}/ok", "--run-id", run_id]
    assert container.image == "localhost/coco-operator:test"
    assert pod.spec.service_account_name == "coco-operator-sync"
    assert container.security_context.read_only_root_filesystem is True
    assert pod.status.phase == "Succeeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    obj = wait_ready(kube, NS, "ok", timeout=60)
    assert obj["status"]["lastSyncRunId"] == run_id
    assert obj["status"]["documents"] == 5
    assert len(meili.docs(f"{NS}/ok", INDEX)) == 5
    wait_for("SyncSucceeded event", lambda: [e for e in kube.events(NS, "ok") if e.reason == "SyncSucceeded"])


def test_a_sync_job_that_fails_shows_the_reason(release: Release, wiki: ConfluenceEmulator, kube: Kube) -> None:
    bad = secret(NS, "not-the-token", name="wrong-token")
    ds = datasource(NS, "bad", wiki.endpoint, "JOBS", index=INDEX)
    ds["spec"]["connector"]["config"]["tokenSecretRef"]["name"] = "wrong-token"
    kube.apply(bad, ds)
    job = finished_job(kube, "bad")
    assert job.status.failed == 1 and not job.status.succeeded, job.status
    pod = pods_of(kube, job)[0]
    assert pod.status.container_statuses[0].state.terminated.exit_code != 0
    obj = wait_ready(kube, NS, "bad", status="False", timeout=60)
    ready = condition(obj, "Ready")
    assert ready is not None and ready["reason"] == "AuthenticationFailed", ready
    assert "refused the credentials" in ready["message"] and "tokenSecretRef" in ready["message"]
    assert "not-the-token" not in ready["message"]
    assert obj["status"]["lastError"]


def test_a_sync_job_over_its_timeout_is_stopped(
    release: Release, slow_wiki: ConfluenceEmulator, meili: Meili, kube: Kube
) -> None:
    ds = datasource(NS, "slow", slow_wiki.endpoint, "SLOW", index=INDEX)
    ds["spec"]["sync"]["timeout"] = "8s"
    kube.apply(ds)
    job = finished_job(kube, "slow")
    assert job.spec.active_deadline_seconds == 8
    failed = {c.type: c for c in job.status.conditions or []}.get("Failed")
    assert failed is not None and failed.status == "True", job.status
    assert failed.reason == "DeadlineExceeded", failed
    # The Job controller stopped its pod.
    wait_for(
        "the slow Job's pod stopped",
        lambda: all(
            p.status.phase in ("Failed", "Succeeded") or p.metadata.deletion_timestamp for p in pods_of(kube, job)
        ),
        timeout=60,
    )
    try:
        obj = wait_ready(kube, NS, "slow", status="False", timeout=90)
    except AssertionError:
        print(f"status: {(kube.datasource(NS, 'slow') or {}).get('status')}")
        raise
    ready = condition(obj, "Ready")
    assert ready is not None and ready["reason"] in ("SyncTimeout", "JobFailed"), ready
    assert "8s" in ready["message"] or "deadline" in ready["message"].lower(), ready
    assert len(meili.docs(f"{NS}/slow", INDEX)) < 30
