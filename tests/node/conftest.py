"""Fixtures for the tests on a real node (tests/harness/node.py): the node with its API server, the emulators
served on the node's bridge address (where pods reach them), helm, and the chart installed with the image built
from this tree (hack/setup-node.sh).

Another cluster (kind, docs/kind.md): COCO_NODE_KUBECONFIG names it, COCO_NODE_HOST_ADDRESS the address its pods
reach this machine at (the emulators listen there), COCO_NODE_CTR the command that runs containerd's `ctr` on its
node (e.g. `docker exec coco-control-plane ctr`); the image localhost/coco-operator:test must be loaded there."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.ci import unavailable
from tests.e2e.conftest import CLOUD_EMAIL, CLOUD_TOKEN, Kube, Meili, wait_for
from tests.e2e.test_chart import Helm
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState
from tests.emulators.meilisearch import MeiliEmulator
from tests.harness.node import Node, NodeError, prepare_node
from tests.harness.node_config import GATEWAY
from tests.unit.test_chart_render import CHART, helm_env, helm_or_skip

pytestmark = pytest.mark.node
RELEASE, RELEASE_NS = "coco", "coco-system"
MEILI_KEY = "node-master-key"


# Where pods reach this machine: the node's bridge address, or what COCO_NODE_HOST_ADDRESS says for another cluster.
HOST = os.environ.get("COCO_NODE_HOST_ADDRESS", GATEWAY)


@dataclass
class ExternalNode:
    """A cluster the tests did not start (COCO_NODE_KUBECONFIG): what they need of a node, through `ctr` on it."""

    kubeconfig: Path
    ctr_command: list[str]
    controlplane: None = None

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self.ctr_command, "-n", "k8s.io", *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{self.ctr_command} {args}: {proc.stderr}"
        return proc

    def tag_image(self, source: str, target: str) -> None:
        self.ctr("images", "tag", "--force", source, target)


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node | ExternalNode]:
    external = os.environ.get("COCO_NODE_KUBECONFIG")
    if external:
        yield ExternalNode(Path(external), shlex.split(os.environ.get("COCO_NODE_CTR", "ctr")))
        return
    try:
        artifacts = prepare_node()
    except NodeError as exc:
        unavailable(f"the test node cannot be prepared: {exc}")
    started = Node(tmp_path_factory.mktemp("node"), artifacts)
    try:
        started.start()
    except NodeError as exc:
        unavailable(f"the test node could not start: {exc}")
    yield started
    started.stop()


@pytest.fixture(scope="session")
def kube(node: Node | ExternalNode) -> Kube:
    return Kube(node.kubeconfig, node.controlplane)


@pytest.fixture(scope="session")
def meili() -> Iterator[Meili]:
    """The emulator on the bridge address; or MEILI_URL (its loopback host replaced by the bridge address, where
    pods reach the host: the server must listen there or on 0.0.0.0)."""
    index = f"node_{secrets.token_hex(4)}"
    url, key = os.environ.get("MEILI_URL"), os.environ.get("MEILI_MASTER_KEY")
    if url and key:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname in ("127.0.0.1", "localhost"):
            parts = parts._replace(netloc=f"{HOST}:{parts.port or 7700}")
        yield Meili(urllib.parse.urlunsplit(parts), key, None, index)
        return
    emu = MeiliEmulator(master_key=MEILI_KEY, host=HOST)
    emu.start()
    yield Meili(emu.url, MEILI_KEY, emu, index)
    emu.stop()


def cloud_wiki(spaces: dict[str, int]) -> ConfluenceEmulator:
    """A Cloud Confluence emulator on the bridge address with the suite's account and `spaces` seeded."""
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    for key, pages in spaces.items():
        state.add_space(key, f"Space {key}")
        for i in range(pages):
            state.add_page(key, f"{key} page {i}", f"<p>{key} body {i}: ocelots in pods</p>")
    emu = ConfluenceEmulator(state, edition="cloud", host=HOST)
    emu.start()
    return emu


@pytest.fixture(scope="session")
def helm(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_or_skip(), kube, helm_env(tmp_path_factory.mktemp("helm")))


@dataclass
class Release:
    """The chart installed on the node, and what the tests read about its pods."""

    kube: Kube
    helm: Helm
    node: Node | ExternalNode
    name: str = RELEASE
    namespace: str = RELEASE_NS

    def install(self, *args: str, upgrade: bool = False) -> str:
        verb = ["upgrade", "--reuse-values"] if upgrade else ["install"]
        return self.helm(
            *verb, self.name, str(CHART), "-n", self.namespace, "--wait", "--timeout", "120s", *args
        ).stdout

    def pods(self, selector: str | None = None) -> list[Any]:
        core = kubernetes.client.CoreV1Api(self.kube.api)
        label = selector or f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=coco-operator"
        return list(core.list_namespaced_pod(self.namespace, label_selector=label).items)

    def operator_pod(self) -> Any:
        """The one running, ready operator pod (waits for it)."""

        def ready() -> Any:
            found = [p for p in self.pods() if p.metadata.deletion_timestamp is None and _ready(p)]
            return found[0] if len(found) == 1 else None

        return wait_for("one ready operator pod", ready, timeout=90)

    def deployment(self) -> Any:
        return kubernetes.client.AppsV1Api(self.kube.api).read_namespaced_deployment(self.name, self.namespace)

    def logs(self, pod: Any) -> str:
        return self.kube.kubectl("-n", pod.metadata.namespace, "logs", pod.metadata.name, "--all-containers").stdout


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def values_args(meili: Meili, *extra_env: tuple[str, str], **sets: str) -> list[str]:
    """The chart pointed at this tree's image and the emulators; settings that make tests quick."""
    env = [
        {"name": "COCO_RETRY_MAX_DELAY_SECONDS", "value": "4"},
        {"name": "COCO_PROGRESS_INTERVAL_SECONDS", "value": "0.5"},
        *({"name": k, "value": v} for k, v in extra_env),
    ]
    args = [
        "--set",
        "image.repository=localhost/coco-operator",
        "--set",
        "image.tag=test",
        "--set",
        f"meilisearch.url={meili.url}",
        "--set",
        f"meilisearch.index={meili.index}",
        "--set",
        "dispatcher.retryDelayInMs=1000",
        # The emulators speak plain http on the host's bridge address, a private one: allow exactly that address.
        "--set",
        "egress.allowHttp=true",
        "--set-json",
        f"egress.allowedCidrs={json.dumps([urllib.parse.urlsplit(meili.url).hostname + '/32'])}",
        "--set-json",
        f"extraEnv={json.dumps(env)}",
    ]
    for key, value in sets.items():
        args += ["--set", f"{key.replace('__', '.')}={value}"]
    return args


def meili_key_secret(kube: Kube, namespace: str, key: str) -> None:
    kube.namespace(namespace)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "meilisearch-key", "namespace": namespace},
            "stringData": {"key": key},
        }
    )


def container_id(pod: Any) -> str:
    """containerd's id of the pod's first container (for `ctr tasks kill`)."""
    status = pod.status.container_statuses[0]
    return str(status.container_id).removeprefix("containerd://")
