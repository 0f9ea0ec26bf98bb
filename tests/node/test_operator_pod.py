"""The chart's operator pod on a real node, in the default run mode (syncs in the operator's process): installed
with the image built from this tree, it runs under the chart's security context and ServiceAccount, syncs a
Datasource against the emulators on the host, survives a SIGKILL mid-run, rolls on `helm upgrade` and leaves the
CRDs on `helm uninstall`. The tests run in order on one release."""

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
from tests.e2e.test_chart import CRDS, FORBIDDEN, Helm, get
from tests.emulators.confluence import ConfluenceEmulator
from tests.harness.node import Node
from tests.node.conftest import ExternalNode, Release, cloud_wiki, container_id, meili_key_secret, values_args

pytestmark = pytest.mark.node
NS = "wiki-team"
BIG = 400  # pages of the space that is synced while the operator is killed


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceEmulator]:
    emu = cloud_wiki({"POD": 3, "BIG": BIG})
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def release(kube: Kube, helm: Helm, node: Node | ExternalNode, meili: Meili) -> Iterator[Release]:
    rel = Release(kube, helm, node)
    meili_key_secret(kube, rel.namespace, meili.key)
    kube.namespace(NS)
    kube.apply(secret(NS, CLOUD_TOKEN))
    rel.install(*values_args(meili))
    yield rel
    helm("uninstall", rel.name, "-n", rel.namespace, check=False)


def test_the_deployment_becomes_available_under_the_charts_security_context(release: Release) -> None:
    deployment = release.deployment()
    available = {c.type: c.status for c in deployment.status.conditions}
    assert available.get("Available") == "True", deployment.status
    pod = release.operator_pod()
    spec = pod.spec
    assert spec.service_account_name == release.name
    assert spec.security_context.run_as_non_root is True
    assert spec.security_context.run_as_user == 65532
    assert spec.security_context.seccomp_profile.type == "RuntimeDefault"
    sc = spec.containers[0].security_context
    assert sc.read_only_root_filesystem is True and sc.allow_privilege_escalation is False
    assert sc.capabilities.drop == ["ALL"]
    # The image is the one built from this tree, and the pod really runs as 65532 with nothing writable but /tmp.
    assert spec.containers[0].image == "localhost/coco-operator:test"
    probe = (
        "import os, pathlib\n"
        "print(os.getuid(), os.getgid())\n"
        "for d in ('/', '/opt/venv', '/tmp'):\n"
        "    try:\n"
        "        pathlib.Path(d, 'probe').write_text('x'); print(d, 'writable')\n"
        "    except OSError as e:\n"
        "        print(d, e.strerror)\n"
    )
    out = release.kube.kubectl(
        "-n", release.namespace, "exec", pod.metadata.name, "--", "python", "-c", probe
    ).stdout.splitlines()
    assert out[0] == "65532 65532"
    assert out[1:] == ["/ Read-only file system", "/opt/venv Read-only file system", "/tmp writable"]


def test_probes_pass_and_nothing_restarts(release: Release) -> None:
    pod = release.operator_pod()
    container = pod.spec.containers[0]
    for probe in (container.startup_probe, container.liveness_probe, container.readiness_probe):
        assert probe.http_get.path == "/healthz"
    # The kubelet's probes reach the operator's health endpoint and get 200s.
    probed = wait_for(
        "a kubelet probe answered 200 in the operator's log",
        lambda: [line for line in release.logs(pod).splitlines() if "kube-probe" in line and '" 200 ' in line],
        timeout=60,
    )
    assert probed
    events = release.kube.core.list_namespaced_event(
        release.namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    # Until Python and kopf listen, the startup probe is refused (that is its job); no other probe ever fails.
    failed = [
        e.message
        for e in events
        if e.reason in ("BackOff", "Failed", "Killing")
        or (e.reason == "Unhealthy" and not e.message.startswith("Startup probe failed"))
    ]
    assert not failed, failed
    pod = release.operator_pod()
    assert pod.status.container_statuses[0].restart_count == 0


def test_a_datasource_is_synced_by_the_operator_pod(
    release: Release, wiki: ConfluenceEmulator, meili: Meili, kube: Kube
) -> None:
    # The release holds no Connector: the operator pod registered the builtin one when it started.
    connector = get(kube, "connector", "confluence")
    assert connector and connector["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "coco-operator"
    kube.apply(datasource(NS, "pod", wiki.endpoint, "POD"))
    obj = wait_ready(kube, NS, "pod", timeout=90)
    assert obj["status"]["documents"] == 3
    assert len(meili.docs(f"{NS}/pod")) == 3
    assert meili.search("ocelots", f"{NS}/pod")
    assert [e for e in kube.events(NS, "pod") if e.reason == "SyncSucceeded"]
    # Everything under the chart's ServiceAccount: nothing was refused.
    denied = [line for line in release.logs(release.operator_pod()).splitlines() if FORBIDDEN.search(line)]
    assert not denied, denied[:10]


def test_sigkill_mid_run_the_deployment_replaces_the_pod_and_the_index_converges(
    release: Release, wiki: ConfluenceEmulator, meili: Meili, kube: Kube, node: Node | ExternalNode
) -> None:
    # Each Confluence request takes a second: the run lasts several seconds, and the kill lands inside it.
    wiki.state.latency_s = 1.0
    kube.apply(datasource(NS, "big", wiki.endpoint, "BIG"))

    def running() -> bool:
        status = (kube.datasource(NS, "big") or {}).get("status") or {}
        rec = condition({"status": status}, "Reconciling")
        return bool(rec and rec["status"] == "True" and rec["reason"] == "Progressing" and "progress" in status)

    wait_for("the big run under way (progress reported)", running, timeout=60, interval=0.1)
    victim = release.operator_pod()
    # SIGKILL: no cleanup, no status written; then the pod is gone and the ReplicaSet makes another.
    node.ctr("tasks", "kill", "--signal", "SIGKILL", container_id(victim))
    kube.kubectl("-n", release.namespace, "delete", "pod", victim.metadata.name, "--grace-period=0", "--force")
    wiki.state.latency_s = 0.0
    successor = wait_for(
        "a new operator pod",
        lambda: [p for p in release.pods() if p.metadata.name != victim.metadata.name and _ready_pod(p)],
        timeout=90,
    )[0]
    assert successor.metadata.uid != victim.metadata.uid
    obj = wait_ready(kube, NS, "big", timeout=120)
    assert obj["status"]["documents"] == BIG
    wait_for(f"{BIG} documents in Meilisearch", lambda: len(meili.docs(f"{NS}/big")) == BIG, timeout=30)


def _ready_pod(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def test_helm_upgrade_to_a_new_image_tag_rolls_the_pod(release: Release, node: Node | ExternalNode, kube: Kube) -> None:
    before = release.operator_pod()
    node.tag_image("localhost/coco-operator:test", "localhost/coco-operator:test-upgrade")
    release.install("--set", "image.tag=test-upgrade", upgrade=True)
    after = release.operator_pod()
    assert after.metadata.uid != before.metadata.uid
    assert after.spec.containers[0].image == "localhost/coco-operator:test-upgrade"
    assert after.status.container_statuses[0].restart_count == 0
    # Recreate: the old pod is gone, never two operators at once.
    assert [p.metadata.name for p in release.pods()] == [after.metadata.name]
    # The new pod serves the same Datasources: a sync request is handled.
    kube.kubectl("-n", NS, "annotate", "--overwrite", "datasource/pod", "coco.rs/sync-requested-at=after-upgrade")
    wait_for(
        "the sync request handled by the upgraded pod",
        lambda: (
            ((kube.datasource(NS, "pod") or {}).get("status") or {}).get("lastHandledSyncRequest") == "after-upgrade"
        ),
        timeout=60,
    )


def test_helm_uninstall_keeps_the_crds_and_the_datasources(release: Release, kube: Kube, helm: Helm) -> None:
    helm("uninstall", release.name, "-n", release.namespace)
    for crd in CRDS:
        assert get(kube, "crd", crd), f"{crd} was deleted by helm uninstall"
    assert kube.datasource(NS, "pod") is not None
    assert get(kube, "deployment", release.name, release.namespace) is None
    wait_for("the operator pod gone", lambda: not release.pods(), timeout=60)
    apps = kubernetes.client.AppsV1Api(kube.api)
    assert not apps.list_namespaced_replica_set(release.namespace).items
