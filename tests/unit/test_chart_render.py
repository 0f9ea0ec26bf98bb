"""The Helm chart rendered without a cluster (`helm template` / `helm lint`), and `manifests/default` kept equal to it.

helm comes from `hack/build-control-plane.sh helm` (built once into a cache outside the repository). Without it the
module is skipped, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci import unavailable

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "coco-operator"
KUSTOMIZE_DIR = REPO / "manifests" / "default"
BUILD_SCRIPT = REPO / "hack" / "build-control-plane.sh"
RELEASE, NAMESPACE = "coco-operator", "coco-system"

Obj = dict[str, Any]


@functools.cache
def find_helm() -> Path:
    """helm from the build script's bin directory (the script prints it; building is a no-op when cached)."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), "helm"], capture_output=True, text=True, timeout=900, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{BUILD_SCRIPT} helm failed ({proc.returncode}): {proc.stderr[-2000:]}")
    helm = Path(lines[-1]) / "helm"
    if not helm.is_file():
        raise RuntimeError(f"{BUILD_SCRIPT} helm printed {lines[-1]}, which has no helm binary")
    return helm


def helm_or_skip() -> Path:
    try:
        return find_helm()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"helm could not be built (needs Go and the module proxy): {exc}")


def helm_env(home: Path) -> dict[str, str]:
    """helm with its config, cache and data (and the kube discovery cache) under `home`, not the user's."""
    env = dict(os.environ)
    for var in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
        env[var] = str(home / var.lower())
    env["KUBECACHEDIR"] = str(home / "kube-cache")
    return env


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_or_skip()


@pytest.fixture(scope="module")
def henv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return helm_env(tmp_path_factory.mktemp("helm"))


def _set_args(values: dict[str, str] | None) -> list[str]:
    args: list[str] = []
    for key, value in (values or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def run_helm(helm: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def template(helm: Path, env: dict[str, str], *extra: str, values: dict[str, str] | None = None) -> list[Obj]:
    proc = run_helm(helm, env, "template", RELEASE, str(CHART), "-n", NAMESPACE, *_set_args(values), *extra)
    assert proc.returncode == 0, f"helm template failed: {proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def template_error(helm: Path, env: dict[str, str], values: dict[str, str]) -> str:
    proc = run_helm(helm, env, "template", RELEASE, str(CHART), "-n", NAMESPACE, *_set_args(values))
    assert proc.returncode != 0, f"helm template accepted {values}"
    return proc.stderr


def kinds(objs: list[Obj]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objs}


def one(objs: list[Obj], kind: str, name: str | None = None, namespace: str | None = None) -> Obj:
    found = [
        o
        for o in objs
        if o["kind"] == kind
        and (name is None or o["metadata"]["name"] == name)
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {sorted(kinds(objs))}, found {len(found)}"
    return found[0]


def rules(role: Obj) -> set[tuple[str, str, str]]:
    """RBAC rules flattened to (apiGroup, resource, verb) triples, so that grouping does not matter."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule["verbs"]
    }


def expand(table: dict[tuple[str, str], str]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for (g, r), verbs in table.items() for v in verbs.split()}


# What the operator calls (controller/kube.py) and what kopf calls for it; see charts/coco-operator/README.md.
CLUSTER_SCOPED_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): "list watch",
    # create: builtinConnector (the default), the operator creates the builtin Connector when it is missing.
    ("coco.rs", "connectors"): "get list watch create",
    ("coco.rs", "connectors/status"): "patch",
}
DATASOURCE_RULES = {
    ("coco.rs", "datasources"): "list watch patch",
    ("coco.rs", "datasources/status"): "patch",
    ("", "secrets"): "get",
    ("", "configmaps"): "get",
    ("", "events"): "create",
}
NAMESPACE_RULES = {("", "namespaces"): "list watch"}
# runMode: Job. The operator starts, polls and stops Jobs and reads the status they wrote; the Jobs' pods read their
# Datasource and write its status.
JOB_RULES = {
    ("batch", "jobs"): "create get delete",
    ("coco.rs", "datasources"): "get",
    ("coco.rs", "datasources/finalizers"): "update",
    # Each namespace's own Meilisearch key, in the one Secret the operator manages there.
    ("", "secrets"): "create patch delete",
}
MANAGED_SECRET = "coco-operator-meili-key"
SYNC_RULES = {("coco.rs", "datasources"): "get", ("coco.rs", "datasources/status"): "patch"}

CHART_ENV = [
    "COCO_MEILI_URL",
    "COCO_MEILI_INDEX",
    "COCO_MEILI_API_KEY",
    "COCO_MAX_RUNNING_TIMEOUT_IN_SECONDS",
    "COCO_RETRY_DELAY_IN_MS",
    "COCO_MAX_CONCURRENT_RUNS",
    "COCO_PRUNE_INTERVAL_SECONDS",
    "COCO_CONFLUENCE_CONCURRENCY",
    "COCO_TEXT_WORKERS",
    "COCO_ALLOW_HTTP",
    "COCO_ALLOW_PRIVATE_NETWORKS",
    "COCO_LINK_ALLOWED_HOSTS",
    "COCO_CONFLUENCE_GATEWAY_URL",
    "COCO_CONFLUENCE_AUTH_URL",
    "COCO_SHARED_INDEXES",
    "COCO_MAX_DELETIONS_FRACTION",
    "COCO_MAX_DELETIONS_MIN",
    "COCO_LOG_FORMAT",
    "COCO_METRICS_PORT",
    "COCO_HEALTH_PORT",
    "COCO_BUILTIN_CONNECTOR",
]


def env_of(deployment: Obj) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- lint and the default render ------------------------------------------------------------------------------


def test_lint(helm: Path, henv: dict[str, str]) -> None:
    variants = [
        [],
        ["--set", "watchNamespaces={team-a,team-b}", "--set", "metrics.serviceMonitor.enabled=true"],
        ["--set", "runMode=Job"],
    ]
    for extra in variants:
        proc = run_helm(helm, henv, "lint", "--strict", str(CHART), *extra)
        assert proc.returncode == 0, f"helm lint {extra} failed:\n{proc.stdout}{proc.stderr}"


def test_default_render(helm: Path, henv: dict[str, str]) -> None:
    objs = template(helm, henv)
    assert kinds(objs) == {
        ("CustomResourceDefinition", "connectors.coco.rs"),
        ("CustomResourceDefinition", "datasources.coco.rs"),
        ("ServiceAccount", RELEASE),
        ("ClusterRole", RELEASE),
        ("ClusterRoleBinding", RELEASE),
        ("Deployment", RELEASE),
        ("Service", f"{RELEASE}-metrics"),
        ("ValidatingAdmissionPolicy", f"{RELEASE}-datasource-indexes"),
        ("ValidatingAdmissionPolicyBinding", f"{RELEASE}-datasource-indexes"),
    }
    cluster_scoped = ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Connector")
    for o in objs:
        if o["kind"] not in cluster_scoped and not o["kind"].startswith("ValidatingAdmissionPolicy"):
            assert o["metadata"]["namespace"] == NAMESPACE, o["kind"]

    deployment = one(objs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == RELEASE
    assert pod["enableServiceLinks"] is False
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/coco-operator/coco-operator:0.1.0"
    assert container["args"] == ["run"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 8000, "health": 8080}
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert env_of(deployment) == {
        "COCO_MEILI_URL": "http://meilisearch:7700",
        "COCO_MEILI_INDEX": "coco_documents",
        "COCO_MEILI_API_KEY": {"secretKeyRef": {"name": "meilisearch-key", "key": "key"}},
        "COCO_MAX_RUNNING_TIMEOUT_IN_SECONDS": "1200",
        "COCO_RETRY_DELAY_IN_MS": "10000",
        "COCO_MAX_CONCURRENT_RUNS": "4",
        "COCO_PRUNE_INTERVAL_SECONDS": "3600",
        "COCO_CONFLUENCE_CONCURRENCY": "8",
        "COCO_TEXT_WORKERS": "2",
        "COCO_ALLOW_HTTP": "false",
        "COCO_ALLOW_PRIVATE_NETWORKS": "false",
        "COCO_LINK_ALLOWED_HOSTS": "api.media.atlassian.com",
        "COCO_CONFLUENCE_GATEWAY_URL": "https://api.atlassian.com",
        "COCO_CONFLUENCE_AUTH_URL": "https://auth.atlassian.com",
        "COCO_SHARED_INDEXES": "coco_documents",
        "COCO_MAX_DELETIONS_FRACTION": "0.1",
        "COCO_MAX_DELETIONS_MIN": "50",
        "COCO_LOG_FORMAT": "json",
        "COCO_METRICS_PORT": "8000",
        "COCO_HEALTH_PORT": "8080",
        "COCO_BUILTIN_CONNECTOR": "true",
    }
    # Every variable the chart sets is a setting the operator reads.
    from coco_operator.settings import Settings

    known = {f"COCO_{name.upper()}" for name in Settings.model_fields}
    assert set(CHART_ENV) <= known, set(CHART_ENV) - known

    service = one(objs, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8000, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_pod_security_context_is_restricted(helm: Path, henv: dict[str, str]) -> None:
    pod = one(template(helm, henv), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True
        assert "privileged" not in sc
    assert "hostNetwork" not in pod and "hostPID" not in pod


def test_crds_are_the_generated_files_with_keep(helm: Path, henv: dict[str, str]) -> None:
    objs = template(helm, henv)
    for path in sorted((REPO / "crds").glob("*.yaml")):
        expected = yaml.safe_load(path.read_text())
        rendered = one(objs, "CustomResourceDefinition", expected["metadata"]["name"])
        meta = rendered["metadata"]
        assert meta["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        stripped = {**rendered, "metadata": {k: v for k, v in meta.items() if k not in ("annotations", "labels")}}
        assert stripped == expected, f"templated CRD differs from {path}"
    # The chart's crds/ (a copy the unit tests keep identical) is what the template reads; Helm must not also
    # install it the crds/-way, or the templated CRDs would clash with what it created.
    assert (CHART / "files" / "crds").resolve() == (CHART / "crds").resolve()
    assert "/crds/" in (CHART / ".helmignore").read_text().splitlines()


def test_packaged_chart_carries_the_crds_as_files(helm: Path, henv: dict[str, str], tmp_path: Path) -> None:
    import tarfile

    proc = run_helm(helm, henv, "package", str(CHART), "-d", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (archive,) = tmp_path.glob("coco-operator-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {
        "coco-operator/files/crds/connectors.coco.rs.yaml",
        "coco-operator/files/crds/datasources.coco.rs.yaml",
    } <= names
    assert not [n for n in names if n.startswith("coco-operator/crds/")]
    assert {"coco-operator/values.schema.json", "coco-operator/templates/NOTES.txt", "coco-operator/README.md"} <= names
    # The archive renders the same CRDs as the directory.
    proc = run_helm(
        helm, henv, "template", RELEASE, str(archive), "-n", NAMESPACE, "--show-only", "templates/crds.yaml"
    )
    assert proc.returncode == 0, proc.stderr
    assert len([d for d in yaml.safe_load_all(proc.stdout) if d]) == 2


def test_cluster_wide_rbac_is_least_privilege(helm: Path, henv: dict[str, str]) -> None:
    objs = template(helm, henv)
    role = one(objs, "ClusterRole")
    assert rules(role) == expand(CLUSTER_SCOPED_RULES | DATASOURCE_RULES)
    assert not [o for o in objs if o["kind"] in ("Role", "RoleBinding")]
    binding = one(objs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RELEASE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    for _, resource, verb in rules(role):
        assert "*" not in (resource, verb)
        assert verb not in ("delete", "deletecollection", "update", "escalate", "bind", "impersonate")
        if verb == "create":
            assert resource in ("events", "connectors")  # connectors: the builtin one, when missing


def test_watch_namespaces_uses_roles(helm: Path, henv: dict[str, str]) -> None:
    objs = template(helm, henv, values={"watchNamespaces": "{team-a,team-b}"})
    cluster_role = one(objs, "ClusterRole")
    assert rules(cluster_role) == expand(CLUSTER_SCOPED_RULES | NAMESPACE_RULES)
    assert not {r for _, r, _ in rules(cluster_role)} & {"secrets", "configmaps", "datasources", "events"}
    for ns in ("team-a", "team-b"):
        role = one(objs, "Role", RELEASE, namespace=ns)
        assert rules(role) == expand(DATASOURCE_RULES)
        binding = one(objs, "RoleBinding", RELEASE, namespace=ns)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    assert len([o for o in objs if o["kind"] == "Role"]) == 2
    container = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["run", "--namespace", "team-a", "--namespace", "team-b"]


def test_job_mode(helm: Path, henv: dict[str, str]) -> None:
    objs = template(helm, henv, values={"runMode": "Job", "job.memoryLimit": "1Gi"})
    assert rules(one(objs, "ClusterRole", RELEASE)) == expand(CLUSTER_SCOPED_RULES | DATASOURCE_RULES) | expand(
        JOB_RULES
    )
    assert rules(one(objs, "ClusterRole", f"{RELEASE}-sync")) == expand(SYNC_RULES)
    # Watching all namespaces, the chart cannot know where Jobs will run: no ServiceAccount or binding for them.
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"] == [RELEASE]
    assert not [o for o in objs if o["kind"] == "RoleBinding"]
    env = env_of(one(objs, "Deployment"))
    assert list(env)[: len(CHART_ENV)] == CHART_ENV
    assert {k: v for k, v in env.items() if k not in CHART_ENV} == {
        "COCO_RUN_MODE": "Job",
        "COCO_JOB_IMAGE": "ghcr.io/coco-operator/coco-operator:0.1.0",
        "COCO_JOB_SERVICE_ACCOUNT": "coco-operator-sync",
        "COCO_JOB_SHARED_INDEX": "InProcess",
        "COCO_JOB_TTL_SECONDS": "3600",
        "COCO_JOB_CPU_REQUEST": "100m",
        "COCO_JOB_MEMORY_LIMIT": "1Gi",
    }
    from coco_operator.settings import Settings

    known = {f"COCO_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known, set(env) - known

    objs = template(helm, henv, values={"runMode": "Job", "watchNamespaces": "{team-a}"})
    role = one(objs, "Role", RELEASE, namespace="team-a")
    assert rules(role) == expand(DATASOURCE_RULES) | expand(JOB_RULES)
    # Only the operator's own Secret may be changed or deleted (create cannot be limited by name).
    for rule in role["rules"]:
        if "secrets" in rule["resources"] and {"patch", "delete"} & set(rule["verbs"]):
            assert rule["resourceNames"] == [MANAGED_SECRET]
    from coco_operator.settings import Settings as OperatorSettings

    assert OperatorSettings().job_meili_key_secret_name == MANAGED_SECRET
    assert one(objs, "ServiceAccount", "coco-operator-sync", namespace="team-a")
    binding = one(objs, "RoleBinding", f"{RELEASE}-sync", namespace="team-a")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{RELEASE}-sync",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "coco-operator-sync", "namespace": "team-a"}]
    # In-process mode has none of it.
    default = template(helm, henv)
    assert not {(g, r) for g, r, _ in rules(one(default, "ClusterRole"))} & {("batch", "jobs")}
    assert ("ClusterRole", f"{RELEASE}-sync") not in kinds(default)


def test_tenancy_values_reach_the_settings_and_the_admission_policy(helm: Path, henv: dict[str, str]) -> None:
    from coco_operator.settings import Settings

    objs = template(
        helm,
        henv,
        values={
            "watchNamespaces": "{team-a,team-b}",
            "tenancy.sharedIndexes": "{handbook}",
            "tenancy.indexGrants.team-a": "{archive,legacy_*}",
            "tenancy.maxDeletionsPerRun.fraction": "0.25",
            "tenancy.maxDeletionsPerRun.minimum": "10",
            "embedderProfiles.small.settings.source": "userProvided",
            "embedderProfiles.small.settings.dimensions": "3",
            "embedderProfiles.openai.settings.source": "openAi",
            "embedderProfiles.openai.apiKeySecret.name": "openai",
            "embedderProfiles.openai.apiKeySecret.key": "apiKey",
        },
    )
    env = env_of(one(objs, "Deployment"))
    # The key comes from the operator's own Secret, into the variable the profile names; never inline.
    assert env["COCO_EMBEDDER_KEY_OPENAI"] == {"secretKeyRef": {"name": "openai", "key": "apiKey"}}
    settings = Settings(**{k.removeprefix("COCO_").lower(): v for k, v in env.items() if isinstance(v, str)})
    assert settings.shared_index_names == ["coco_documents", "handbook"]
    assert settings.index_grants == {"team-a": ["archive", "legacy_*"]}
    assert (settings.max_deletions_fraction, settings.max_deletions_min) == (0.25, 10)
    assert settings.embedder_profiles == {
        "small": {"source": "userProvided", "dimensions": 3},
        "openai": {"source": "openAi", "apiKeyEnv": "COCO_EMBEDDER_KEY_OPENAI"},
    }
    policy = one(objs, "ValidatingAdmissionPolicy")["spec"]
    variables = {v["name"]: v["expression"] for v in policy["variables"]}
    assert variables["shared"] == "variables.index in ['coco_documents', 'handbook']"
    assert variables["grants"] == "{'team-a': ['archive', 'legacy_*']}"
    assert policy["validations"][2]["expression"] == "variables.profiles.all(p, p in ['openai', 'small'])"
    binding = one(objs, "ValidatingAdmissionPolicyBinding")["spec"]
    assert binding["validationActions"] == ["Deny"]
    assert binding["matchResources"]["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}
    ]
    # Off: no policy; sharing the default index off and nothing else shared: an explicit empty list.
    objs = template(helm, henv, values={"tenancy.admissionPolicy": "false", "tenancy.shareDefaultIndex": "false"})
    assert not [o for o in objs if o["kind"].startswith("ValidatingAdmissionPolicy")]
    env = env_of(one(objs, "Deployment"))
    assert Settings(shared_indexes=env["COCO_SHARED_INDEXES"]).shared_index_names == []


def test_toggles(helm: Path, henv: dict[str, str]) -> None:
    no_crds = kinds(template(helm, henv, values={"installCRDs": "false"}))
    assert not [k for k in no_crds if k[0] == "CustomResourceDefinition"]
    no_connector = template(helm, henv, values={"builtinConnector": "false"})
    assert env_of(one(no_connector, "Deployment"))["COCO_BUILTIN_CONNECTOR"] == "false"
    assert ("coco.rs", "connectors", "create") not in rules(one(no_connector, "ClusterRole"))
    assert ("CustomResourceDefinition", "connectors.coco.rs") in kinds(no_connector)
    no_metrics = template(helm, henv, values={"metrics.enabled": "false"})
    assert not [o for o in no_metrics if o["kind"] == "Service"]
    deployment = one(no_metrics, "Deployment")
    assert env_of(deployment)["COCO_METRICS_PORT"] == "0"
    assert [p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]] == ["health"]


def test_no_object_of_the_charts_own_kinds_and_no_hooks(helm: Path, henv: dict[str, str]) -> None:
    """Helm maps every object of a manifest (and of each hook) before creating it: an object of a kind the release's
    own CRDs define fails on a fresh cluster whenever the API server has not yet published the new kind when Helm
    asks (the post-install Connector hook did, now and then). So the chart holds none; the operator registers the
    builtin Connector at startup (COCO_BUILTIN_CONNECTOR, with `create` on connectors and nothing more)."""
    for args in ((), ("--api-versions", "coco.rs/v1alpha1/Connector")):
        objs = template(helm, henv, *args)
        assert not [o for o in objs if o["apiVersion"].startswith("coco.rs/")]
        assert not [o for o in objs if "helm.sh/hook" in (o["metadata"].get("annotations") or {})]
        deployment = one(objs, "Deployment")
        assert env_of(deployment)["COCO_BUILTIN_CONNECTOR"] == "true"
        assert ("coco.rs", "connectors", "create") in rules(one(objs, "ClusterRole"))
    # What the operator registers is the example users apply with kustomize.
    from coco_operator.api.connector import BUILTIN_CONNECTORS

    example = yaml.safe_load((REPO / "manifests" / "examples" / "connector-confluence.yaml").read_text())
    assert BUILTIN_CONNECTORS["confluence"] == example["spec"]


def test_values_reach_the_pod(helm: Path, henv: dict[str, str]) -> None:
    objs = template(
        helm,
        henv,
        "--set-string",
        "extraEnv[0].value=4",
        values={
            "image.tag": "v9",
            "meilisearch.url": "https://meili.search.svc:7700",
            "meilisearch.index": "docs",
            "meilisearch.apiKeySecret.name": "meili",
            "meilisearch.apiKeySecret.key": "admin",
            "dispatcher.maxRunningTimeoutInSeconds": "60",
            "dispatcher.retryDelayInMs": "500",
            "dispatcher.maxConcurrentRuns": "2",
            "sync.pruneIntervalSeconds": "0",
            "sync.confluenceConcurrency": "3",
            "sync.textWorkers": "0",
            "logFormat": "text",
            "nodeSelector.kubernetes\\.io/os": "linux",
            "tolerations[0].key": "dedicated",
            "tolerations[0].operator": "Exists",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[0].key": "pool",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
            ".matchExpressions[0].operator": "Exists",
            "podAnnotations.team": "search",
            "podLabels.cost-center": "42a",
            "imagePullSecrets[0].name": "regcred",
            "extraEnv[0].name": "COCO_HTTP_TIMEOUT_SECONDS",
            "priorityClassName": "platform",
            "serviceAccount.annotations.iam\\.example\\.com/role": "coco",
        },
    )
    deployment = one(objs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "ghcr.io/coco-operator/coco-operator:v9"
    env = env_of(deployment)
    assert env["COCO_MEILI_URL"] == "https://meili.search.svc:7700"
    assert env["COCO_MEILI_INDEX"] == "docs"
    assert env["COCO_MEILI_API_KEY"] == {"secretKeyRef": {"name": "meili", "key": "admin"}}
    assert (env["COCO_MAX_RUNNING_TIMEOUT_IN_SECONDS"], env["COCO_RETRY_DELAY_IN_MS"]) == ("60", "500")
    assert (env["COCO_MAX_CONCURRENT_RUNS"], env["COCO_LOG_FORMAT"]) == ("2", "text")
    assert env["COCO_PRUNE_INTERVAL_SECONDS"] == "0"
    assert (env["COCO_CONFLUENCE_CONCURRENCY"], env["COCO_TEXT_WORKERS"]) == ("3", "0")
    assert env["COCO_HTTP_TIMEOUT_SECONDS"] == "4"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == [{"matchExpressions": [{"key": "pool", "operator": "Exists"}]}]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"team": "search"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["cost-center"] == "42a"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["priorityClassName"] == "platform"
    assert one(objs, "ServiceAccount")["metadata"]["annotations"] == {"iam.example.com/role": "coco"}


def test_egress_values_reach_the_settings(helm: Path, henv: dict[str, str]) -> None:
    from coco_operator.settings import Settings

    objs = template(
        helm,
        henv,
        values={
            "egress.allowPrivateNetworks": "true",
            "egress.allowedCidrs": "{10.96.0.0/12,fd00:10::/64}",
            "egress.confluenceHosts": "{*.atlassian.net,wiki.corp.example}",
            "egress.linkHosts": "{api.media.atlassian.com,media.corp.example}",
            "egress.webhookHosts": "{enricher.search.svc}",
            "egress.allowHttp": "true",
        },
    )
    env = env_of(one(objs, "Deployment"))
    settings = Settings(**{k.removeprefix("COCO_").lower(): v for k, v in env.items() if isinstance(v, str)})
    assert settings.allow_private_networks and settings.allow_http
    assert settings.allowed_cidrs == ["10.96.0.0/12", "fd00:10::/64"]
    assert settings.allowed_hosts == ["*.atlassian.net", "wiki.corp.example"]
    assert settings.link_allowed_hosts == ["api.media.atlassian.com", "media.corp.example"]
    assert settings.webhook_allowed_hosts == ["enricher.search.svc"]
    assert not [o for o in objs if o["kind"] == "NetworkPolicy"]  # off unless asked for


def test_egress_network_policy(helm: Path, henv: dict[str, str]) -> None:
    policy = one(
        template(
            helm,
            henv,
            values={
                "networkPolicy.enabled": "true",
                "networkPolicy.kubernetesApi.cidrs": "{172.18.0.2/32}",
                "networkPolicy.extraEgress[0].to[0].ipBlock.cidr": "10.0.5.0/24",
                "networkPolicy.extraEgress[0].ports[0].port": "8090",
            },
        ),
        "NetworkPolicy",
    )
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "coco-operator",
                                                  "app.kubernetes.io/instance": RELEASE}  # fmt: skip
    dns, api, meili, allowed, extra = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert api == {"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}],
                   "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}  # fmt: skip
    assert meili["ports"] == [{"protocol": "TCP", "port": 7700}]
    assert meili["to"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "meilisearch"}}
    block = allowed["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0" and "169.254.0.0/16" in block["except"] and "10.0.0.0/8" in block["except"]
    assert allowed["ports"] == [{"protocol": "TCP", "port": 443}]
    assert extra == {"to": [{"ipBlock": {"cidr": "10.0.5.0/24"}}], "ports": [{"port": 8090}]}


def test_numbers_from_a_values_file_stay_integers(helm: Path, henv: dict[str, str], tmp_path: Path) -> None:
    """Values files give floats; 1000000 must not become "1e+06", which the operator's settings refuse."""
    values = tmp_path / "values.yaml"
    values.write_text(
        "dispatcher: {retryDelayInMs: 1000000, maxRunningTimeoutInSeconds: 86400000}\n"
        "runMode: Job\njob: {ttlSecondsAfterFinished: 2592000}\n"
    )
    env = env_of(one(template(helm, henv, "-f", str(values)), "Deployment"))
    assert env["COCO_RETRY_DELAY_IN_MS"] == "1000000"
    assert env["COCO_MAX_RUNNING_TIMEOUT_IN_SECONDS"] == "86400000"
    assert env["COCO_JOB_TTL_SECONDS"] == "2592000"


def test_service_monitor(helm: Path, henv: dict[str, str]) -> None:
    assert not [o for o in template(helm, henv) if o["kind"] == "ServiceMonitor"]
    objs = template(
        helm, henv, values={"metrics.serviceMonitor.enabled": "true", "metrics.serviceMonitor.labels.release": "kps"}
    )
    monitor = one(objs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["selector"]["matchLabels"] == one(objs, "Service")["spec"]["selector"]
    err = template_error(helm, henv, {"metrics.enabled": "false", "metrics.serviceMonitor.enabled": "true"})
    assert "metrics.serviceMonitor.enabled=true needs metrics.enabled=true" in err


# --- values.schema.json ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expect"),
    [
        ({"logFormat": "xml"}, "at '/logFormat': value must be one of 'json', 'text'"),
        ({"dispatcher.maxConcurrentRuns": "0"}, "at '/dispatcher/maxConcurrentRuns': minimum: got 0, want 1"),
        ({"dispatcher.retryDelayInMs": "5"}, "at '/dispatcher/retryDelayInMs': minimum: got 5, want 100"),
        ({"dispatcher.maxRunningTimeoutInSeconds": "abc"}, "at '/dispatcher/maxRunningTimeoutInSeconds': got string"),
        ({"meilisearch.url": "notaurl"}, "at '/meilisearch/url': 'notaurl' does not match pattern"),
        ({"meilisearch.url": "null"}, "at '/meilisearch': missing property 'url'"),
        ({"meilisearch.apiKeySecret.name": ""}, "at '/meilisearch/apiKeySecret/name'"),
        ({"watchNamespaces": "{Team_A}"}, "at '/watchNamespaces/0'"),
        ({"watchNamespace": "{a}"}, "additional properties 'watchNamespace' not allowed"),
        ({"metrics.port": "0"}, "at '/metrics/port': minimum: got 0, want 1"),
        ({"installCRDs": "yes"}, "at '/installCRDs': got string, want boolean"),
        ({"image.pullPolicy": "Sometimes"}, "at '/image/pullPolicy': value must be one of"),
        ({"runMode": "Pod"}, "at '/runMode': value must be one of 'InProcess', 'Job'"),
        ({"job.meiliKeySecret": "x/key"}, "additional properties 'meiliKeySecret' not allowed"),
        ({"job.sharedIndex": "Maybe"}, "at '/job/sharedIndex': value must be one of 'InProcess', 'Refuse'"),
        ({"tenancy.sharedIndexes": "{a.b}"}, "at '/tenancy/sharedIndexes/0'"),
        ({"tenancy.indexGrants.Team_A": "{x}"}, "invalid propertyName 'Team_A'"),
        ({"tenancy.maxDeletionsPerRun.fraction": "2"}, "at '/tenancy/maxDeletionsPerRun/fraction'"),
        (
            {"embedderProfiles.e.settings.source": "openAi", "embedderProfiles.e.settings.apiKey": "sk"},
            "at '/embedderProfiles/e/settings'",
        ),
        ({"egress.allowedCidrs": "{10.96.0.0}"}, "at '/egress/allowedCidrs/0'"),
        ({"egress.webhookHosts": "{http://x}"}, "at '/egress/webhookHosts/0'"),
        ({"egress.allowPrivateNetworks": "maybe"}, "at '/egress/allowPrivateNetworks': got string, want boolean"),
        ({"networkPolicy.kubernetesApi.ports": "{0}"}, "at '/networkPolicy/kubernetesApi/ports/0'"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, henv: dict[str, str], values: dict[str, str], expect: str) -> None:
    err = template_error(helm, henv, values)
    assert "values don't meet the specifications of the schema" in err
    assert expect in err, err


def test_chart_set_env_cannot_be_repeated_in_extra_env(helm: Path, henv: dict[str, str]) -> None:
    err = template_error(helm, henv, {"extraEnv[0].name": "COCO_MEILI_URL", "extraEnv[0].value": "x"})
    assert "extraEnv: COCO_MEILI_URL is set by the chart already" in err


# --- manifests/default == the chart's defaults -----------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomized() -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        unavailable("kubectl (with kustomize) is not installed")
    proc = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE_DIR)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"kubectl kustomize {KUSTOMIZE_DIR} failed: {proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_kustomize_uses_the_generated_crds(kustomized: list[Obj]) -> None:
    """manifests/default takes the CRDs from crds/ (a kustomize base), so there is exactly one copy of them."""
    from coco_operator.api.crd import all_crds

    kustomization = yaml.safe_load((KUSTOMIZE_DIR.parent.parent / "crds" / "Kustomization").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in (KUSTOMIZE_DIR.parent.parent / "crds").glob("*.yaml")
    )
    assert "../../crds" in yaml.safe_load((KUSTOMIZE_DIR / "kustomization.yaml").read_text())["resources"]
    rendered = {o["metadata"]["name"]: o for o in kustomized if o["kind"] == "CustomResourceDefinition"}
    for crd in all_crds():
        assert rendered[crd["metadata"]["name"]]["spec"] == crd["spec"]


def test_kustomize_matches_chart_defaults(helm: Path, henv: dict[str, str], kustomized: list[Obj]) -> None:
    chart = template(helm, henv)
    # Helm creates the namespace (--create-namespace); kustomize has to carry it.
    assert one(kustomized, "Namespace")["metadata"]["name"] == NAMESPACE
    assert kinds(kustomized) - {("Namespace", NAMESPACE)} == kinds(chart)
    for o in kustomized:
        if o["kind"] in ("ServiceAccount", "Deployment", "Service"):
            assert o["metadata"]["namespace"] == NAMESPACE

    assert rules(one(kustomized, "ClusterRole")) == rules(one(chart, "ClusterRole"))
    for kind in ("ClusterRoleBinding",):
        assert one(kustomized, kind)["subjects"] == one(chart, kind)["subjects"]
        assert one(kustomized, kind)["roleRef"] == one(chart, kind)["roleRef"]

    k_deploy, c_deploy = one(kustomized, "Deployment"), one(chart, "Deployment")
    k_container = k_deploy["spec"]["template"]["spec"]["containers"][0]
    c_container = c_deploy["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in k_container["env"]] == [e["name"] for e in c_container["env"]] == CHART_ENV
    # Not only the names: the whole pod spec, selector and strategy are the chart's.
    assert k_deploy["spec"]["template"]["spec"] == c_deploy["spec"]["template"]["spec"]
    for key in ("replicas", "strategy", "selector"):
        assert k_deploy["spec"][key] == c_deploy["spec"][key], key
    assert one(kustomized, "Service")["spec"] == one(chart, "Service")["spec"]
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        assert one(kustomized, kind)["spec"] == one(chart, kind)["spec"], kind
    for crd in ("connectors.coco.rs", "datasources.coco.rs"):
        assert (
            one(kustomized, "CustomResourceDefinition", crd)["spec"]
            == (one(chart, "CustomResourceDefinition", crd)["spec"])
        )
