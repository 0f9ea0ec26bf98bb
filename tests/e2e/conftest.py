"""End-to-end fixtures: a real API server (started here, or any cluster via COCO_E2E_KUBECONFIG), the emulators
on loopback (or a real Meilisearch via MEILI_URL/MEILI_MASTER_KEY), and the operator as a real process."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import meilisearch
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.ci import unavailable
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState
from tests.emulators.meilisearch import MeiliEmulator
from tests.harness.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "coco.rs", "v1alpha1"
CLOUD_EMAIL, CLOUD_TOKEN = "bot@example.com", "cloud-api-token"
DC_PAT = "dc-personal-access-token"

pytestmark = pytest.mark.e2e


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.25) -> Any:
    """Poll until `check()` returns something truthy; fail with `what` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ApiException as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@dataclass
class Kube:
    kubeconfig: Path
    controlplane: ControlPlane | None
    api: kubernetes.client.ApiClient = field(init=False)

    def __post_init__(self) -> None:
        self.api = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.core = kubernetes.client.CoreV1Api(self.api)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
        return proc

    def apply(self, *objects: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=check)

    def namespace(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.core.create_namespace({"metadata": {"name": name}})

    def datasource(self, ns: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "datasources", name)
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def connector(self, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.custom.get_cluster_custom_object(GROUP, VERSION, "connectors", name)
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def events(self, ns: str, name: str) -> list[Any]:
        items = self.core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
        return list(items)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    external = os.environ.get("COCO_E2E_KUBECONFIG")
    if external:
        env = Kube(Path(external), None)
    else:
        cp = ControlPlane(workdir=tmp_path_factory.mktemp("controlplane"))
        try:
            cp.start()
        except Exception as exc:
            cp.stop()
            unavailable(f"the control plane could not start: {exc}")
        env = Kube(cp.kubeconfig, cp)
    env.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for crd in ("connectors.coco.rs", "datasources.coco.rs"):
        env.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    env.kubectl("apply", "-f", str(REPO / "manifests/examples/connector-confluence.yaml"))
    yield env
    if env.controlplane:
        env.controlplane.stop()


@dataclass
class Meili:
    url: str
    key: str
    emulator: MeiliEmulator | None
    index: str

    def client(self) -> meilisearch.Client:
        return meilisearch.Client(self.url, self.key)

    def docs(self, datasource_id: str, index: str | None = None) -> list[dict[str, Any]]:
        idx = self.client().index(index or self.index)
        try:
            res = idx.get_documents({"filter": f'source.id = "{datasource_id}"', "limit": 10000})
        except meilisearch.errors.MeilisearchApiError as exc:
            if exc.code == "index_not_found":
                return []
            raise
        return [dict(d) for d in res.results]

    def search(self, q: str, datasource_id: str, index: str | None = None) -> list[dict[str, Any]]:
        res = self.client().index(index or self.index).search(q, {"filter": f'source.id = "{datasource_id}"'})
        return list(res["hits"])


@pytest.fixture(scope="session")
def meili() -> Iterator[Meili]:
    index = f"e2e_{secrets.token_hex(4)}"
    url, key = os.environ.get("MEILI_URL"), os.environ.get("MEILI_MASTER_KEY")
    if url and key:
        m = Meili(url, key, None, index)
        yield m
        with contextlib.suppress(Exception):
            m.client().delete_index(index)
        return
    emu = MeiliEmulator(master_key="e2e-master-key")
    emu.start()
    yield Meili(emu.url, "e2e-master-key", emu, index)
    emu.stop()


@pytest.fixture(scope="session")
def cloud() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    emu = ConfluenceEmulator(state, edition="cloud")
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def datacenter() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState(timezone="Europe/Berlin")
    state.add_pat(DC_PAT)
    emu = ConfluenceEmulator(state, edition="dc", context_path="/confluence")
    emu.start()
    yield emu
    emu.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Operator:
    def __init__(self, kube: Kube, meili: Meili, log: Path, extra_env: dict[str, str] | None = None) -> None:
        self.log = log
        self.metrics_port = _free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.kubeconfig = kube.kubeconfig
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(kube.kubeconfig),
                "COCO_MEILI_URL": meili.url,
                "COCO_MEILI_API_KEY": meili.key,
                "COCO_MEILI_INDEX": meili.index,
                "COCO_RETRY_DELAY_IN_MS": "1000",
                "COCO_RETRY_MAX_DELAY_SECONDS": "4",
                "COCO_CONFLUENCE_MAX_RETRY_SECONDS": "8",
                "COCO_HEALTH_PORT": "0",
                "COCO_ALLOW_HTTP": "true",  # the emulators speak plain http on loopback
                "COCO_ALLOW_PRIVATE_NETWORKS": "true",
                "COCO_METRICS_PORT": str(self.metrics_port),
                "COCO_PROGRESS_INTERVAL_SECONDS": "0.5",
                "NO_PROXY": "127.0.0.1,localhost",
                # The session's operator serves t-* namespaces; tests that need their own operator use others.
                "COCO_NAMESPACES": "t-*",
            }
        )
        env.pop("MEILI_URL", None)
        env.pop("MEILI_MASTER_KEY", None)
        env.update(extra_env or {})
        self.env = env
        self.start()

    def start(self) -> None:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coco_operator.cli", "run", "--verbose"],
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._out.close()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


@pytest.fixture(scope="session")
def operator(kube: Kube, meili: Meili, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(kube, meili, tmp_path_factory.mktemp("operator") / "operator.log")
    time.sleep(1)
    if op.proc.poll() is not None:
        pytest.fail(f"operator exited at start:\n{op.tail()}")
    yield op
    op.stop()


def make_namespace(kube: Kube, prefix: str, test_name: str) -> str:
    name = f"{prefix}-{test_name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c for c in name if c.isalnum() or c == "-")
    kube.namespace(name)
    return name


@pytest.fixture
def ns(kube: Kube, request: pytest.FixtureRequest) -> str:
    """A fresh namespace served by the session's operator."""
    return make_namespace(kube, "t", request.node.name)


@pytest.fixture(autouse=True)
def _operator_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "operator" in request.fixturenames:
        op: Operator = request.getfixturevalue("operator")
        print(f"\n----- operator log (tail) -----\n{op.tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


# --- components of a module's own (own settings, faults injected without touching other tests) ---------------


@contextlib.contextmanager
def own_meili(key: str, index: str) -> Iterator[Meili]:
    """A Meilisearch emulator of the module's own (faults like a stopped server stay inside the module)."""
    emu = MeiliEmulator(master_key=key)
    emu.start()
    try:
        yield Meili(emu.url, key, emu, index)
    finally:
        emu.stop()


@contextlib.contextmanager
def own_wiki(spaces: dict[str, int] | None = None) -> Iterator[ConfluenceEmulator]:
    """A Cloud Confluence emulator with the suite's account, and `spaces` (key -> number of pages) seeded."""
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    for key, pages in (spaces or {}).items():
        state.add_space(key, f"Space {key}")
        for i in range(pages):
            state.add_page(key, f"{key} page {i}", f"<p>{key} body {i}</p>")
    with ConfluenceEmulator(state, edition="cloud") as emu:
        yield emu


@contextlib.contextmanager
def own_operator(
    kube: Kube, meili: Meili, tmp_path_factory: pytest.TempPathFactory, namespaces: str, **env: str
) -> Iterator[Operator]:
    """An operator serving only `namespaces` (a glob), with extra COCO_* settings."""
    op = Operator(
        kube,
        meili,
        tmp_path_factory.mktemp("operator") / "operator.log",
        extra_env={"COCO_NAMESPACES": namespaces, **env},
    )
    try:
        yield op
    finally:
        op.stop()


@contextlib.contextmanager
def fresh_cluster(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """A second, empty API server (same binaries), for installs that must start from nothing."""
    if kube.controlplane is None:
        pytest.skip("a fresh cluster needs the harness' control plane (COCO_E2E_KUBECONFIG points at another)")
    cp = ControlPlane(workdir=tmp_path_factory.mktemp("fresh-controlplane"), bin_dir=kube.controlplane.bin_dir)
    cp.start()
    try:
        yield Kube(cp.kubeconfig, cp)
    finally:
        cp.stop()


def play_job_pod(kube: Kube, job: Any, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """No kubelet here: run the Job's container command as its pod would, authenticated as the Job's
    ServiceAccount, with the Secret references resolved as the kubelet would (with admin rights)."""
    ns = job.metadata.namespace
    container = job.spec.template.spec.containers[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COCO_", "MEILI_"))}
    for var in container.env:
        if var.value_from and var.value_from.secret_key_ref:
            ref = var.value_from.secret_key_ref
            data = kube.core.read_namespaced_secret(ref.name, ns).data or {}
            env[var.name] = base64.b64decode(data[ref.key]).decode()
        else:
            env[var.name] = var.value or ""
    env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "coco_operator.cli", *container.args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- object builders ---------------------------------------------------------------------------------------


def secret(ns: str, token: str, name: str = "confluence-token", *, opted_in: bool = True) -> dict[str, Any]:
    """A token Secret; `opted_in` gives it the label that lets Datasources use it."""
    labels = {"coco.rs/usable-by-datasources": "true"} if opted_in else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "stringData": {"token": token},
    }


def datasource(
    ns: str,
    name: str,
    endpoint: str,
    space: str,
    *,
    username: str | None = CLOUD_EMAIL,
    interval: str = "1h",
    blogposts: bool = False,
    attachments: bool = False,
    **spec_extra: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "endpoint": endpoint,
        "tokenSecretRef": {"name": "confluence-token", "key": "token"},
        "space": space,
        "enable_blogposts": blogposts,
        "enable_attachments": attachments,
    }
    if username:
        config["username"] = username
    spec: dict[str, Any] = {
        "name": f"Wiki {name}",
        "type": "connector",
        "enabled": True,
        "connector": {"id": "confluence", "config": config},
        "sync": {"enabled": True, "interval": interval},
    }
    spec.update(spec_extra)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Datasource",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return None


def settled(obj: dict[str, Any] | None) -> bool:
    """No run going or queued: Reconciling absent, or only saying a failed run will be retried (Flux's way)."""
    rec = condition(obj, "Reconciling")
    return rec is None or rec["reason"] == "ProgressingWithRetry"


def wait_ready(
    kube: Kube,
    ns: str,
    name: str,
    timeout: float = 60,
    status: str = "True",
    reason: str | None = None,
    generation: bool = True,
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = kube.datasource(ns, name)
        cond = condition(obj, "Ready")
        if not obj or not cond or cond["status"] != status:
            return None
        if reason and cond["reason"] != reason:
            return None
        if generation and obj["status"].get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        if not settled(obj):
            return None
        return obj

    return wait_for(f"Datasource {ns}/{name} Ready={status}{' ' + reason if reason else ''}", check, timeout)


def request_sync(kube: Kube, ns: str, name: str) -> str:
    token = uuid.uuid4().hex[:12]
    kube.kubectl("-n", ns, "annotate", "--overwrite", f"datasource/{name}", f"coco.rs/sync-requested-at={token}")
    return token


def wait_handled(kube: Kube, ns: str, name: str, token: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = kube.datasource(ns, name)
        if obj and (obj.get("status") or {}).get("lastHandledSyncRequest") == token and settled(obj):
            return obj
        return None

    return wait_for(f"sync request {token} on {ns}/{name} handled", check, timeout)
