"""The control-plane harness itself: a real kube-apiserver + etcd, RBAC via TokenRequest, restart, CLI."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from .controlplane import REPO_ROOT, ControlPlane, ControlPlaneError, KubectlError, api_client_for

pytestmark = pytest.mark.e2e

NS = "harness-test"

RBAC = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: reader, namespace: {NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: configmap-getter, namespace: {NS}}}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-getter}}
subjects:
  - {{kind: ServiceAccount, name: reader, namespace: {NS}}}
"""


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(workdir=tmp_path_factory.mktemp("controlplane"))
    t0 = time.monotonic()
    plane.start()
    print(f"control plane started in {time.monotonic() - t0:.1f}s at {plane.server}")
    yield plane
    plane.stop()


@pytest.fixture(scope="module")
def configmap(cp: ControlPlane) -> str:
    cp.kubectl("create", "namespace", NS)
    cp.kubectl("-n", NS, "create", "configmap", "greeting", "--from-literal=hello=world")
    return "greeting"


def _port_open(server: str) -> bool:
    port = int(server.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_version_and_tls_verified_kubeconfig(cp: ControlPlane) -> None:
    # The kubeconfig verifies the serving cert against cert-dir/apiserver.crt (no insecure-skip-tls-verify).
    with cp.api_client() as api:
        assert api.configuration.verify_ssl
        assert kubernetes.client.VersionApi(api).get_code().git_version == "v1.34.4"


def test_default_namespace_and_ensure_namespace(cp: ControlPlane) -> None:
    cp.ensure_namespace("on-demand")
    cp.ensure_namespace("on-demand")  # idempotent
    names = cp.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/on-demand"} <= set(names)


def test_kubectl_reads_configmap(cp: ControlPlane, configmap: str) -> None:
    out = cp.kubectl("-n", NS, "get", "configmap", configmap, "-o", "jsonpath={.data.hello}").stdout
    assert out == "world"


def test_kubectl_error_carries_stderr(cp: ControlPlane) -> None:
    with pytest.raises(KubectlError, match="NotFound"):
        cp.kubectl("-n", NS, "get", "configmap", "does-not-exist")
    assert cp.kubectl("get", "configmap", "does-not-exist", check=False).returncode != 0


def test_service_account_token_has_only_its_rbac(cp: ControlPlane, configmap: str, tmp_path: Path) -> None:
    cp.kubectl("apply", "-f", "-", input=RBAC)
    token = cp.create_service_account_token(NS, "reader", duration_s=600)
    kc = cp.write_kubeconfig_for_token(token, tmp_path / "reader.kubeconfig")

    whoami = cp.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kc).stdout
    assert whoami == f"system:serviceaccount:{NS}:reader"
    got = cp.kubectl("-n", NS, "get", "configmap", configmap, "-o", "jsonpath={.data.hello}", kubeconfig=kc)
    assert got.stdout == "world"

    denied = cp.kubectl("-n", NS, "get", "secrets", kubeconfig=kc, check=False)
    assert denied.returncode != 0
    assert 'cannot list resource "secrets"' in denied.stderr
    # Only `get` was granted, so even listing configmaps is forbidden.
    assert cp.kubectl("-n", NS, "get", "configmaps", kubeconfig=kc, check=False).returncode != 0

    with api_client_for(kc) as api:
        core = kubernetes.client.CoreV1Api(api)
        assert core.read_namespaced_config_map(configmap, NS).data == {"hello": "world"}
        with pytest.raises(ApiException) as err:
            core.list_namespaced_secret(NS)
        assert err.value.status == 403


def test_restart_apiserver_keeps_data_and_tokens(cp: ControlPlane, configmap: str, tmp_path: Path) -> None:
    cp.kubectl("apply", "-f", "-", input=RBAC)
    token = cp.create_service_account_token(NS, "reader")
    kc = cp.write_kubeconfig_for_token(token, tmp_path / "r.kubeconfig")
    server = cp.server

    cp.restart_apiserver()

    assert cp.server == server
    assert cp.running
    got = cp.kubectl("-n", NS, "get", "configmap", configmap, "-o", "jsonpath={.data.hello}")
    assert got.stdout == "world"
    # Same signing key, so a ServiceAccount token issued before the restart still authenticates.
    assert cp.kubectl("-n", NS, "get", "configmap", configmap, kubeconfig=kc).returncode == 0


def test_start_failure_reports_log_tail(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("etcd", "kube-apiserver"):
        script = bin_dir / name
        script.write_text("#!/bin/sh\necho 'fake failure: boom' >&2\nexit 3\n")
        script.chmod(0o755)
    plane = ControlPlane(workdir=tmp_path / "work", bin_dir=bin_dir)
    with pytest.raises(ControlPlaneError, match=r"etcd exited with 3(.|\n)*fake failure: boom"):
        plane.start(timeout_s=10)
    assert not plane.running


def test_cli_up_runs_until_sigterm(tmp_path: Path) -> None:
    workdir = tmp_path / "cli"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.controlplane", "up", "--dir", str(workdir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"KUBECONFIG={workdir.resolve() / 'kubeconfig'}"
        kubeconfig = line.split("=", 1)[1]
        ns = subprocess.run(
            ["/usr/bin/kubectl", "--kubeconfig", kubeconfig, "get", "namespace", "default", "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert ns.stdout.strip() == "namespace/default"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Its kube-apiserver went down with it rather than being orphaned.
    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    assert not _port_open(server)


def test_stop_is_idempotent(cp: ControlPlane) -> None:
    # Deliberately last in the module (pytest runs in file order); the fixture's stop() is then a no-op.
    server = cp.server
    cp.stop()
    assert not cp.running
    assert not _port_open(server)
    cp.stop()
