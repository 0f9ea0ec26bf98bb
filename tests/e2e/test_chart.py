"""The Helm chart and manifests/default on a real API server, and the chart's RBAC proven sufficient and minimal by
running the operator with nothing but the chart's ServiceAccount.

No kubelet runs on the harness' API server: the chart's Deployment is stored, never started, so the tests assert on
objects. The operator under test runs as a local process authenticated with a token of the chart's ServiceAccount.

Two clusters are used: the session's (CRDs and the `confluence` Connector already applied by the `kube` fixture, so
the release adopts the CRDs, as README.md tells users to) and a second, fresh one (when the harness started the
session's), where the first install has to create the CRDs itself. The chart holds no Connector: the operator
registers the builtin one when it starts (tests/node/ sees it happen in a pod).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    datasource,
    fresh_cluster,
    play_job_pod,
    secret,
    wait_for,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator
from tests.unit.test_chart_render import (
    CHART,
    CHART_ENV,
    CLUSTER_SCOPED_RULES,
    DATASOURCE_RULES,
    KUSTOMIZE_DIR,
    NAMESPACE_RULES,
    expand,
    helm_env,
    helm_or_skip,
    rules,
)

pytestmark = pytest.mark.e2e

CRDS = ("connectors.coco.rs", "datasources.coco.rs")
# What a missing permission looks like in the operator's log: kubernetes' ApiException "(403) Reason: Forbidden",
# kopf's APIForbiddenError and its "Not enough permissions to ..." fallback warnings.
FORBIDDEN = re.compile(r"forbidden|\(403\)|not enough permissions", re.IGNORECASE)


@dataclass
class Helm:
    binary: Path
    kube: Kube
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kube.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def manifest_kinds(self, release: str, ns: str) -> set[tuple[str, str]]:
        out = self("get", "manifest", release, "-n", ns).stdout
        return {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# Paths of the objects the tests read; the API is asked directly (a kubectl process per read is slow).
PATHS = {
    "crd": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
    "connector": "/apis/coco.rs/v1alpha1/connectors/{name}",
    "clusterrole": "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}",
    "clusterrolebinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}",
    "role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{name}",
    "deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "serviceaccount": "/api/v1/namespaces/{ns}/serviceaccounts/{name}",
    "service": "/api/v1/namespaces/{ns}/services/{name}",
    "namespace": "/api/v1/namespaces/{name}",
}


def get(kube: Kube, kind: str, name: str, ns: str | None = None) -> dict[str, Any] | None:
    method, url, headers, _, _ = kube.api.param_serialize(
        "GET", PATHS[kind].format(ns=ns, name=name), auth_settings=["BearerToken"]
    )
    response = kube.api.call_api(method, url, headers)
    data: bytes = response.read()  # type: ignore[no-untyped-call]
    if response.status == 404:
        return None
    assert response.status == 200, f"GET {url}: {response.status} {data!r}"
    obj: dict[str, Any] = json.loads(data)
    return obj


def can_i(kube: Kube, user: str, verb: str, resource: str, namespace: str | None = None) -> bool:
    """What `kubectl auth can-i VERB RESOURCE --as=USER` answers, as one SubjectAccessReview (no process per check).
    `resource` is `plural[.group][/subresource]`."""
    name, _, subresource = resource.partition("/")
    plural, _, group = name.partition(".")
    attributes = kubernetes.client.V1ResourceAttributes(
        verb=verb, resource=plural, group=group, subresource=subresource or None, namespace=namespace
    )
    review = kubernetes.client.AuthorizationV1Api(kube.api).create_subject_access_review(
        kubernetes.client.V1SubjectAccessReview(
            spec=kubernetes.client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attributes)
        )
    )
    return bool(review.status and review.status.allowed)


def kubectl_can_i(kube: Kube, user: str, *args: str) -> bool:
    proc = kube.kubectl("auth", "can-i", *args, f"--as={user}", check=False)
    assert proc.stdout.strip() in ("yes", "no"), f"kubectl auth can-i {args}: {proc.stderr}{proc.stdout}"
    return proc.stdout.strip() == "yes"


def adopt(kube: Kube, release: str, ns: str, *refs: str) -> None:
    """What README.md tells users with CRDs (or the Connector) from an earlier `kubectl apply`."""
    for ref in refs:
        kube.kubectl("label", ref, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        kube.kubectl(
            "annotate",
            ref,
            f"meta.helm.sh/release-name={release}",
            f"meta.helm.sh/release-namespace={ns}",
            "--overwrite",
        )


def service_account_kubeconfig(kube: Kube, ns: str, name: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a token from the TokenRequest API."""
    if kube.controlplane is not None:
        token = kube.controlplane.create_service_account_token(ns, name)
        return kube.controlplane.write_kubeconfig_for_token(token, path)
    token = kube.kubectl("-n", ns, "create", "token", name, "--duration=1h").stdout.strip()
    config = yaml.safe_load(kube.kubectl("config", "view", "--raw", "--minify", "--flatten").stdout)
    config["users"] = [{"name": f"{ns}-{name}", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = f"{ns}-{name}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def seed_space(cloud: ConfluenceEmulator, key: str) -> None:
    cloud.state.add_space(key, f"Space {key}")
    home = cloud.state.add_page(key, "Home", "<p>Platform teams install operators with Helm.</p>")
    cloud.state.add_page(key, "RBAC", "<p>Least privilege for the ocelot operator.</p>", parent_id=home)


def run_operator_as(kube: Kube, meili: Meili, kubeconfig: Path, log: Path, namespaces: str) -> Operator:
    """The real operator process, authenticated as the chart's ServiceAccount (COCO_NAMESPACES as the chart's
    `--namespace` flags would set it; empty is cluster-wide)."""
    op = Operator(Kube(kubeconfig, None), meili, log, extra_env={"COCO_NAMESPACES": namespaces})
    time.sleep(0.5)
    if op.proc.poll() is not None:
        pytest.fail(f"operator exited at start:\n{op.tail()}")
    return op


def sync_and_delete(kube: Kube, meili: Meili, cloud: ConfluenceEmulator, op: Operator, ns: str, space: str) -> None:
    """A Datasource becomes Ready with its documents indexed, and is deleted cleanly (finalizer released)."""
    seed_space(cloud, space)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, space))
    try:
        obj = wait_ready(kube, ns, "wiki", timeout=60)
    except AssertionError:
        print(f"----- operator log -----\n{op.tail(120)}")
        raise
    assert obj["status"]["documents"] == 2
    assert "coco.rs/cleanup" in obj["metadata"]["finalizers"]
    ds_id = f"{ns}/wiki"
    assert len(meili.docs(ds_id)) == 2
    # Events are posted by kopf's poster in the background, just after the status write.
    wait_for("a SyncSucceeded Event", lambda: [e for e in kube.events(ns, "wiki") if e.reason == "SyncSucceeded"], 15)

    kube.kubectl("-n", ns, "delete", "datasource", "wiki", "--wait=false")
    wait_for(f"Datasource {ds_id} gone (finalizer removed)", lambda: kube.datasource(ns, "wiki") is None, 30)
    assert meili.docs(ds_id) == []


def assert_no_forbidden(op: Operator) -> None:
    denied = [line for line in op.log.read_text(errors="replace").splitlines() if FORBIDDEN.search(line)]
    assert not denied, "the operator was denied something:\n" + "\n".join(denied[:20])


# --- the session's cluster: adopt existing CRDs, least privilege -------------------------------------------------


@pytest.fixture(scope="module")
def helm(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_or_skip(), kube, helm_env(tmp_path_factory.mktemp("helm")))


@dataclass
class Release:
    name: str
    namespace: str
    install_output: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@pytest.fixture(scope="module")
def release(kube: Kube, helm: Helm) -> Iterator[Release]:
    """The chart with default values (cluster-wide), adopting the session's CRDs."""
    name = ns = unique("coco-chart")
    kube.namespace(ns)
    adopt(kube, name, ns, *(f"crd/{crd}" for crd in CRDS))
    out = helm("install", name, str(CHART), "-n", ns).stdout
    yield Release(name, ns, out)
    helm("uninstall", name, "-n", ns, check=False)


def test_install_adopts_existing_crds(kube: Kube, helm: Helm, release: Release) -> None:
    status = yaml.safe_load(helm("status", release.name, "-n", release.namespace, "-o", "yaml").stdout)
    assert status["info"]["status"] == "deployed"
    for crd in CRDS:
        obj = get(kube, "crd", crd)
        assert obj and obj["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == release.name
    # No object of the chart's own kinds (the operator registers the builtin Connector) and so no hooks.
    assert not [k for k in helm.manifest_kinds(release.name, release.namespace) if k[0] == "Connector"]
    assert not helm("get", "hooks", release.name, "-n", release.namespace).stdout.strip()
    # NOTES: the Meilisearch key Secret is missing, and what to do next.
    notes = release.install_output
    assert f"kubectl -n {release.namespace} create secret generic meilisearch-key --from-literal=key=" in notes
    assert "kubectl get datasources -A -w" in notes
    assert "kubectl -n $NS wait --for=condition=Ready datasource/wiki" in notes


def test_notes_datasource_is_valid(release: Release) -> None:
    """The Datasource NOTES.txt suggests passes the operator's own model."""
    from coco_operator.api.datasource import DatasourceSpec

    text = release.install_output.split("<<'YAML'\n", 1)[1].split("\n     YAML", 1)[0]
    body = yaml.safe_load("\n".join(line.removeprefix("     ") for line in text.splitlines()))
    assert body["kind"] == "Datasource"
    DatasourceSpec.model_validate(body["spec"])


def test_cluster_wide_rbac_is_sufficient_and_minimal(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, release: Release, tmp_path: Path
) -> None:
    user = release.user
    other = unique("c-chart-other")
    kube.namespace(other)
    # (verb, resource, namespace); None: cluster-wide (all namespaces, or a cluster-scoped resource).
    allowed = [
        ("list", "datasources.coco.rs", None),
        ("watch", "datasources.coco.rs", None),
        ("patch", "datasources.coco.rs", other),
        ("patch", "datasources.coco.rs/status", other),
        ("get", "connectors.coco.rs", None),
        ("watch", "connectors.coco.rs", None),
        ("patch", "connectors.coco.rs/status", None),
        ("create", "connectors.coco.rs", None),  # builtinConnector: created when missing
        ("get", "secrets", other),
        ("create", "events", other),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io", None),
    ]
    denied = [
        ("list", "secrets", other),
        ("watch", "secrets", None),
        ("delete", "datasources.coco.rs", other),
        ("create", "datasources.coco.rs", other),
        ("update", "datasources.coco.rs", other),
        ("get", "datasources.coco.rs", other),
        ("patch", "connectors.coco.rs", None),
        ("delete", "connectors.coco.rs", None),
        ("update", "connectors.coco.rs", None),
        ("update", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("list", "namespaces", None),
        ("create", "pods", other),
        ("list", "configmaps", other),
        ("create", "jobs.batch", other),
        ("patch", "events", other),
    ]
    for verb, resource, ns in allowed:
        assert can_i(kube, user, verb, resource, ns), f"{user} should be allowed to {verb} {resource} in {ns}"
    for verb, resource, ns in denied:
        assert not can_i(kube, user, verb, resource, ns), f"{user} must not {verb} {resource} in {ns}"
    # The same answers from kubectl, as an administrator would check.
    assert kubectl_can_i(kube, user, "get", "secrets", "-n", other)
    assert not kubectl_can_i(kube, user, "list", "secrets", "-n", other)
    assert not kubectl_can_i(kube, user, "delete", "datasources.coco.rs", "-n", other)

    kubeconfig = service_account_kubeconfig(kube, release.namespace, release.name, tmp_path / "sa.kubeconfig")
    # The token really is the ServiceAccount's: it may not list Secrets.
    denied_list = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "secrets", "-A"], capture_output=True, text=True
    )
    assert denied_list.returncode != 0 and "forbidden" in denied_list.stderr.lower()

    ns = unique("c-chart-lp")
    kube.namespace(ns)
    op = run_operator_as(kube, meili, kubeconfig, tmp_path / "operator.log", namespaces="")
    try:
        sync_and_delete(kube, meili, cloud, op, ns, "HELM1")
    finally:
        op.stop()
    assert_no_forbidden(op)


def test_watch_namespaces_rbac_is_sufficient_and_scoped(
    kube: Kube, helm: Helm, meili: Meili, cloud: ConfluenceEmulator, tmp_path: Path
) -> None:
    """A second release (CRDs and Connector owned by the first) watching one namespace, with Roles only there."""
    name = unique("coco-ns")
    watched, unwatched = unique("c-chart-watched"), unique("c-chart-unwatched")
    for ns in (name, watched, unwatched):
        kube.namespace(ns)
    values = [
        "--set",
        "installCRDs=false",
        "--set",
        "builtinConnector=false",
        "--set",
        f"watchNamespaces={{{watched}}}",
    ]
    notes = helm("install", name, str(CHART), "-n", name, *values).stdout
    assert f"watches the namespaces {watched}." in notes and f"NS={watched}" in notes
    try:
        user = f"system:serviceaccount:{name}:{name}"
        role = get(kube, "role", name, watched)
        assert role and rules(role) == expand(DATASOURCE_RULES)
        cluster_role = get(kube, "clusterrole", name)
        # builtinConnector=false: no `create` on connectors.
        expected = expand(CLUSTER_SCOPED_RULES | NAMESPACE_RULES) - {("coco.rs", "connectors", "create")}
        assert cluster_role and rules(cluster_role) == expected
        assert get(kube, "role", name, unwatched) is None
        assert can_i(kube, user, "get", "secrets", watched)
        assert can_i(kube, user, "patch", "datasources.coco.rs/status", watched)
        assert can_i(kube, user, "list", "namespaces")
        assert can_i(kube, user, "get", "connectors.coco.rs")
        assert not can_i(kube, user, "get", "secrets", unwatched)
        assert not can_i(kube, user, "list", "datasources.coco.rs", unwatched)
        assert not can_i(kube, user, "list", "datasources.coco.rs")
        assert not can_i(kube, user, "create", "events", unwatched)
        deployment = get(kube, "deployment", name, name)
        assert deployment
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args == ["run", "--namespace", watched]

        kubeconfig = service_account_kubeconfig(kube, name, name, tmp_path / "sa.kubeconfig")
        # The unwatched namespace's Datasource is left alone (and could not even be read).
        seed_space(cloud, "HELM3")
        kube.apply(secret(unwatched, CLOUD_TOKEN), datasource(unwatched, "wiki", cloud.endpoint, "HELM3"))
        op = run_operator_as(kube, meili, kubeconfig, tmp_path / "operator.log", namespaces=watched)
        try:
            sync_and_delete(kube, meili, cloud, op, watched, "HELM2")
            untouched = kube.datasource(unwatched, "wiki")
            assert untouched is not None and not untouched.get("status")
            assert not (untouched["metadata"].get("finalizers") or [])
            tenant_boundaries(kube, cloud, name, watched, unwatched)
        finally:
            op.stop()
        assert_no_forbidden(op)
    finally:
        kube.kubectl("-n", unwatched, "delete", "datasource", "wiki", "--ignore-not-found", "--wait=false")
        helm("uninstall", name, "-n", name, check=False)


def tenant_boundaries(kube: Kube, cloud: ConfluenceEmulator, release: str, watched: str, unwatched: str) -> None:
    """In the namespaced install: the chart's admission policy refuses another namespace's index in a watched
    namespace (and only there), and the operator uses only Secrets that opted in."""
    foreign = datasource(watched, "foreign", cloud.endpoint, "HELM2", index=f"{unwatched}_docs")

    def refused() -> str | None:
        proc = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(foreign), check=False)
        return proc.stderr if proc.returncode != 0 else None

    err = wait_for("the admission policy in force", refused, timeout=30)
    assert f"IndexNotAllowed: namespace {watched} may not write into index {unwatched}_docs" in err
    # Bound to the watched namespaces only (another, cluster-wide release of this module has a policy of its own).
    path = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/{release}-datasource-indexes"
    binding = json.loads(kube.kubectl("get", "--raw", path).stdout)
    selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": [watched]}]
    kube.apply(secret(watched, CLOUD_TOKEN, "plain-token", opted_in=False))
    ds = datasource(watched, "plain", cloud.endpoint, "HELM2")
    ds["spec"]["connector"]["config"]["tokenSecretRef"]["name"] = "plain-token"
    kube.apply(ds)
    obj = wait_ready(kube, watched, "plain", status="False", reason="SecretNotOptedIn", timeout=30)
    assert f"kubectl -n {watched} label secret plain-token coco.rs/usable-by-datasources=true" in str(obj)
    kube.kubectl("-n", watched, "delete", "datasource", "plain", "--wait=false")
    wait_for("Datasource plain deleted", lambda: kube.datasource(watched, "plain") is None, 30)


def test_job_mode_rbac_is_sufficient(
    kube: Kube, helm: Helm, meili: Meili, cloud: ConfluenceEmulator, tmp_path: Path
) -> None:
    """runMode=Job with watchNamespaces: the operator starts the Job as the chart's ServiceAccount, and the Job's pod
    reports as the sync ServiceAccount the chart created in the watched namespace."""
    name, watched = unique("coco-job"), unique("c-chart-jobs")
    for ns in (name, watched):
        kube.namespace(ns)
    values = [
        "--set",
        "installCRDs=false",
        "--set",
        "builtinConnector=false",
        "--set",
        f"watchNamespaces={{{watched}}}",
    ]
    notes = helm("install", name, str(CHART), "-n", name, "--set", "runMode=Job", *values).stdout
    assert f"The chart created the ServiceAccount in {watched}." in notes
    try:
        sync_sa = "coco-operator-sync"
        user = f"system:serviceaccount:{watched}:{sync_sa}"
        assert can_i(kube, user, "get", "datasources.coco.rs", watched)
        assert can_i(kube, user, "patch", "datasources.coco.rs/status", watched)
        assert not can_i(kube, user, "get", "secrets", watched)
        assert not can_i(kube, user, "patch", "datasources.coco.rs", watched)
        operator_user = f"system:serviceaccount:{name}:{name}"
        assert can_i(kube, operator_user, "create", "jobs.batch", watched)
        assert not can_i(kube, operator_user, "create", "jobs.batch", name)
        # The namespace's own Meilisearch key: the operator creates its Secret, and may change only that one.
        assert can_i(kube, operator_user, "create", "secrets", watched)
        assert not can_i(kube, operator_user, "patch", "secrets", watched)
        assert not can_i(kube, operator_user, "create", "secrets", name)

        deployment = get(kube, "deployment", name, name)
        assert deployment
        chart_env = {
            e["name"]: e["value"]
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            if e["name"].startswith(("COCO_RUN_MODE", "COCO_JOB_"))
        }
        assert chart_env["COCO_RUN_MODE"] == "Job" and "COCO_JOB_MEILI_KEY_SECRET" not in chart_env
        seed_space(cloud, "HELM4")
        index = f"{watched}_docs"  # owned by the namespace: the run goes to a Job with the namespace's own key
        kube.apply(secret(watched, CLOUD_TOKEN), datasource(watched, "wiki", cloud.endpoint, "HELM4", index=index))
        kubeconfig = service_account_kubeconfig(kube, name, name, tmp_path / "sa.kubeconfig")
        op = Operator(
            Kube(kubeconfig, None),
            meili,
            tmp_path / "operator.log",
            extra_env={"COCO_NAMESPACES": watched, "COCO_JOB_POLL_SECONDS": "0.5", **chart_env},
        )
        try:
            batch = kubernetes.client.BatchV1Api(kube.api)
            job = wait_for("a sync Job", lambda: batch.list_namespaced_job(watched).items, timeout=30)[0]
            assert job.spec.template.spec.service_account_name == sync_sa
            sync_kubeconfig = service_account_kubeconfig(kube, watched, sync_sa, tmp_path / "sync.kubeconfig")
            proc = play_job_pod(kube, job, sync_kubeconfig)
            assert proc.returncode == 0, proc.stderr + proc.stdout
            obj = wait_ready(kube, watched, "wiki")
            assert obj["status"]["documents"] == 2
            assert len(meili.docs(f"{watched}/wiki", index)) == 2
            assert kube.core.read_namespaced_secret("coco-operator-meili-key", watched).data["key"]
            kube.kubectl("-n", watched, "delete", "datasource", "wiki", "--wait=false")
            wait_for("Datasource deleted", lambda: kube.datasource(watched, "wiki") is None, 30)
            secrets = kube.core.list_namespaced_secret(watched).items
            assert "coco-operator-meili-key" not in [s.metadata.name for s in secrets]
        finally:
            op.stop()
        assert_no_forbidden(op)
    finally:
        helm("uninstall", name, "-n", name, check=False)


# --- a fresh cluster: first install from nothing, upgrade, uninstall; kustomize ---------------------------------


@pytest.fixture(scope="module")
def fresh(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    with fresh_cluster(kube, tmp_path_factory) as cluster:
        yield cluster


def remove_crds(kube: Kube) -> None:
    """Back to a cluster without the CRDs (no Datasources exist on the fresh cluster, so this is quick)."""
    kube.kubectl("delete", "crd", *CRDS, "--ignore-not-found", "--timeout=60s")


def test_kustomize_on_a_fresh_cluster(fresh: Kube) -> None:
    remove_crds(fresh)
    fresh.kubectl("apply", "-k", str(KUSTOMIZE_DIR.parent.parent / "crds"))
    fresh.kubectl("wait", "--for=condition=Established", *(f"crd/{crd}" for crd in CRDS), "--timeout=60s")
    fresh.kubectl("apply", "-k", str(KUSTOMIZE_DIR))
    for kind, name in [
        ("namespace", "coco-system"),
        ("clusterrole", "coco-operator"),
        ("clusterrolebinding", "coco-operator"),
    ]:
        assert get(fresh, kind, name), f"{kind}/{name} missing"
    for kind, name in [("serviceaccount", "coco-operator"), ("deployment", "coco-operator")]:
        assert get(fresh, kind, name, "coco-system"), f"{kind}/{name} missing"
    assert get(fresh, "service", "coco-operator-metrics", "coco-system")
    cluster_role = get(fresh, "clusterrole", "coco-operator")
    assert cluster_role and rules(cluster_role) == expand(CLUSTER_SCOPED_RULES | DATASOURCE_RULES)
    user = "system:serviceaccount:coco-system:coco-operator"
    assert can_i(fresh, user, "patch", "datasources.coco.rs/status", "default")
    assert not can_i(fresh, user, "list", "secrets", "default")
    # Applying again (an upgrade) changes nothing.
    again = fresh.kubectl("apply", "-k", str(KUSTOMIZE_DIR)).stdout
    assert all(line.endswith("unchanged") for line in again.strip().splitlines()), again


def test_helm_lifecycle_on_a_fresh_cluster(fresh: Kube, tmp_path: Path) -> None:
    remove_crds(fresh)
    helm = Helm(helm_or_skip(), fresh, helm_env(tmp_path))
    name, ns = "coco", "coco-helm"
    helm("install", name, str(CHART), "-n", ns, "--create-namespace")

    # CRDs created by the release, kept on uninstall; no Connector and no hook (the operator registers it).
    for crd in CRDS:
        obj = get(fresh, "crd", crd)
        assert obj, crd
        assert obj["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert not helm("get", "hooks", name, "-n", ns).stdout.strip()

    deployment = get(fresh, "deployment", name, ns)
    assert deployment
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert [e["name"] for e in container["env"]] == CHART_ENV
    assert get(fresh, "serviceaccount", name, ns)
    cluster_role = get(fresh, "clusterrole", name)
    assert cluster_role and rules(cluster_role) == expand(CLUSTER_SCOPED_RULES | DATASOURCE_RULES)
    binding = get(fresh, "clusterrolebinding", name)
    assert binding and binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
    service = get(fresh, "service", f"{name}-metrics", ns)
    assert service and service["spec"]["ports"][0]["name"] == "metrics"

    # upgrade: values change the Deployment.
    helm("upgrade", name, str(CHART), "-n", ns, "--set", "dispatcher.maxConcurrentRuns=2")
    deployment = get(fresh, "deployment", name, ns)
    assert deployment
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["COCO_MAX_CONCURRENT_RUNS"] == "2"
    history = yaml.safe_load(helm("history", name, "-n", ns, "-o", "yaml").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]

    # uninstall: the operator and its RBAC go; the CRDs stay.
    out = helm("uninstall", name, "-n", ns).stdout
    assert "kept due to the resource policy" in out
    for crd in CRDS:
        assert get(fresh, "crd", crd), f"{crd} was deleted by helm uninstall"
    assert get(fresh, "deployment", name, ns) is None
    assert get(fresh, "clusterrole", name) is None
    assert get(fresh, "serviceaccount", name, ns) is None

    # The kept objects name the old release, so installing it again adopts them.
    helm("install", name, str(CHART), "-n", ns)
    assert {("CustomResourceDefinition", crd) for crd in CRDS} <= helm.manifest_kinds(name, ns)
    helm("uninstall", name, "-n", ns)


def test_helm_upgrade_applies_a_crd_change(fresh: Kube, tmp_path: Path) -> None:
    """The chart templates the CRDs, so an upgrade carries a changed CRD to the cluster (native crds/ would not)."""
    import shutil

    helm = Helm(helm_or_skip(), fresh, helm_env(tmp_path))
    # The release name of the lifecycle test above: the CRDs and Connector it kept name it, so they are adopted.
    name, ns = "coco", "coco-helm"
    helm("install", name, str(CHART), "-n", ns, "--create-namespace")
    changed = tmp_path / "chart"
    shutil.copytree(CHART, changed, symlinks=False)
    crd_file = changed / "crds" / "datasources.coco.rs.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(
        {"name": "Index", "type": "string", "jsonPath": ".status.index"}
    )
    text = yaml.safe_dump(crd, sort_keys=False)
    crd_file.write_text(text)
    (changed / "files" / "crds").unlink() if (changed / "files" / "crds").is_symlink() else None
    files_crd = changed / "files" / "crds" / "datasources.coco.rs.yaml"
    if files_crd.exists():
        files_crd.write_text(text)
    helm("upgrade", name, str(changed), "-n", ns)
    live = get(fresh, "crd", "datasources.coco.rs")
    assert live and "Index" in [c["name"] for c in live["spec"]["versions"][0]["additionalPrinterColumns"]]
    helm("upgrade", name, str(CHART), "-n", ns)
    live = get(fresh, "crd", "datasources.coco.rs")
    assert live and "Index" not in [c["name"] for c in live["spec"]["versions"][0]["additionalPrinterColumns"]]
    helm("uninstall", name, "-n", ns)


def test_rendered_manifests_pass_server_side_dry_run(fresh: Kube, tmp_path: Path) -> None:
    """helm template and the kustomize build, validated by the API server itself (schemas, CEL, RBAC objects)."""
    fresh.kubectl("apply", "-k", str(KUSTOMIZE_DIR.parent.parent / "crds"))
    fresh.kubectl("wait", "--for=condition=Established", *(f"crd/{crd}" for crd in CRDS), "--timeout=60s")
    fresh.kubectl("create", "namespace", "coco-system", check=False)
    helm = Helm(helm_or_skip(), fresh, helm_env(tmp_path))
    rendered = helm("template", "dry", str(CHART), "-n", "coco-system").stdout
    fresh.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", input=rendered)
    # The egress NetworkPolicy, with every part of it rendered.
    rendered = helm(
        "template", "dry", str(CHART), "-n", "coco-system", "--set", "networkPolicy.enabled=true",
        "--set", "networkPolicy.kubernetesApi.cidrs={172.18.0.2/32}", "--set", "egress.allowedCidrs={10.96.0.0/12}",
        "--set", "networkPolicy.extraEgress[0].to[0].ipBlock.cidr=10.0.5.0/24",
        "--set", "networkPolicy.extraEgress[0].ports[0].port=8090",
    ).stdout  # fmt: skip
    assert "kind: NetworkPolicy" in rendered
    fresh.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", input=rendered)
    built = fresh.kubectl("kustomize", str(KUSTOMIZE_DIR)).stdout
    fresh.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", input=built)
