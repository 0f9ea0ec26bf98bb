"""A real Kubernetes node for tests: containerd + runc, a CNI bridge, kubelet and kube-proxy, with
kube-controller-manager and kube-scheduler beside the harness' API server. Pods run for real: Deployments roll,
Jobs finish, probes are probed, ServiceAccount tokens are mounted, and pods reach the API server (through the
`kubernetes` Service) and anything a test serves on GATEWAY (the node's address on the pod bridge).

Needs root (a node configures the network and mounts) and what hack/setup-node.sh installs and builds. One node at
a time per machine (a lock): the bridge, iptables rules and containerd's state are machine-wide. State that is
worth keeping (imported images) lives in COCO_NODE_ROOT (default /var/lib/coco-node); logs in the given workdir.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from tests.harness import node_config as cfg
from tests.harness.controlplane import (
    REPO_ROOT,
    SERVICE_CIDR,
    ControlPlane,
    _log_tail,
    _terminate,
)

SETUP_SCRIPT = REPO_ROOT / "hack" / "setup-node.sh"
NODE_ROOT = Path(os.environ.get("COCO_NODE_ROOT", "/var/lib/coco-node"))
RUN_ROOT = Path("/run/coco-node")
REQUIRED_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip", "mount", "umount")
DRAIN_TIMEOUT_S = 60.0
# The iptables chains the kubelet makes (kube-proxy removes its own with --cleanup): (table, chain, parents).
KUBELET_CHAINS = (
    ("filter", "KUBE-FIREWALL", ("INPUT", "OUTPUT")),
    ("filter", "KUBE-KUBELET-CANARY", ()),
    ("nat", "KUBE-KUBELET-CANARY", ()),
    ("mangle", "KUBE-KUBELET-CANARY", ()),
    ("mangle", "KUBE-IPTABLES-HINT", ()),
)


class NodeError(RuntimeError):
    """The node could not be prepared or started (the message names what is missing or the failing component)."""


@dataclass(frozen=True)
class NodeArtifacts:
    """What hack/setup-node.sh made: the binaries' directory and the images (name and OCI archive)."""

    bin_dir: Path
    pause_image: str
    pause_archive: Path
    operator_image: str
    operator_archive: Path


def prepare_node() -> NodeArtifacts:
    """Build (or find cached) everything the node needs; packages must be installed already (the script says which
    are missing). Rebuilds the operator image when the tree changed."""
    if os.geteuid() != 0:
        raise NodeError("a test node needs root (it configures a bridge, iptables rules and mounts)")
    proc = subprocess.run(["bash", str(SETUP_SCRIPT), "--no-install"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-20:])
        raise NodeError(f"hack/setup-node.sh failed ({proc.returncode}):\n{tail}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing or not (cfg.CNI_BIN_DIR / "bridge").exists():
        raise NodeError(f"missing on this machine: {missing or 'CNI plugins'}; run hack/setup-node.sh")
    return NodeArtifacts(
        bin_dir=Path(values["BIN"]),
        pause_image=values["PAUSE_IMAGE"],
        pause_archive=Path(values["PAUSE_ARCHIVE"]),
        operator_image=values["OPERATOR_IMAGE"],
        operator_archive=Path(values["OPERATOR_ARCHIVE"]),
    )


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=120)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _archive_digest(archive: Path) -> str:
    """The manifest digest an OCI archive holds (to skip importing an image containerd has already)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise NodeError(f"{archive} has no index.json: not an OCI archive")
        return str(json.load(member)["manifests"][0]["digest"])


@dataclass
class Node:
    workdir: Path
    artifacts: NodeArtifacts
    root: Path = NODE_ROOT
    run: Path = RUN_ROOT
    controlplane: ControlPlane = field(init=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)
    _lock: int | None = field(default=None, init=False, repr=False)
    _ip_forward: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir = self.workdir.resolve()
        self.paths = cfg.NodePaths(self.root, self.run, self.workdir / "logs")
        self.controlplane = ControlPlane(
            workdir=self.workdir / "controlplane", bin_dir=self.artifacts.bin_dir, pod_address=cfg.GATEWAY
        )

    @property
    def kubeconfig(self) -> Path:
        return self.controlplane.kubeconfig

    def log(self, component: str) -> Path:
        return self.paths.logs / f"{component}.log"

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        self._take_lock()  # before touching anything: the machine may have another node
        try:
            self._prepare_host()
            self.controlplane.start()
            self._spawn("containerd", cfg.containerd_argv(self.paths), self._containerd_ready, deadline)
            self._kill_leftover_tasks()
            self._import(self.artifacts.pause_archive, self.artifacts.pause_image)
            self._import(self.artifacts.operator_archive, self.artifacts.operator_image)
            admin, cp = self.kubeconfig, self.controlplane
            kcm = cfg.controller_manager_argv(self.artifacts.bin_dir, admin, cp.service_account_key, cp.ca_file)
            self._spawn("kube-controller-manager", kcm, None, deadline)
            self._spawn("kube-scheduler", cfg.scheduler_argv(self.artifacts.bin_dir, admin), None, deadline)
            self.paths.kube_proxy_config.write_text(cfg.kube_proxy_yaml(admin))
            self._spawn("kube-proxy", cfg.kube_proxy_argv(self.artifacts.bin_dir, self.paths), None, deadline)
            kubelet = cfg.kubelet_argv(self.artifacts.bin_dir, self.paths, admin)
            self._spawn("kubelet", kubelet, None, deadline)
            self._wait("node Ready", self._node_ready, deadline)
            self._wait("kube-proxy's rules for the kubernetes Service", self._service_rules, deadline)
            self._wait("the default ServiceAccount", self._default_service_account, deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Pods torn down by the kubelet (network, mounts), then every component; the host as it was."""
        if self._lock is None:
            return  # never started, or stopped already: nothing here is ours to undo
        for name in ("kube-controller-manager", "kube-scheduler"):
            _terminate(self._procs.pop(name, None))
        if "kubelet" in self._procs and self.controlplane.running:
            with contextlib.suppress(Exception):
                self._drain()
        for name in ("kubelet", "kube-proxy"):
            _terminate(self._procs.pop(name, None))
        if self._procs.get("containerd") is not None:
            self._kill_leftover_tasks()
        _terminate(self._procs.pop("containerd", None))
        self._restore_host()
        self.controlplane.stop()
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    # -------------------------------------------------------------------------------------------- actions

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """containerd's CLI on this node's socket, in the namespace the kubelet uses."""
        return _run("ctr", "--address", str(self.paths.containerd_socket), "--namespace", "k8s.io", *args, check=check)

    def tag_image(self, source: str, target: str) -> None:
        """Another name for an image the node has (e.g. a new tag for `helm upgrade`)."""
        self.ctr("images", "tag", "--force", source, target)

    # ------------------------------------------------------------------------------------------ internals

    def _take_lock(self) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise NodeError(f"another test node runs on this machine ({self.run / 'lock'} is held)") from None
        self._lock = fd

    def _prepare_host(self) -> None:
        for d in (self.root, self.paths.cni_conf_dir, self.paths.logs, self.paths.pod_logs):
            d.mkdir(parents=True, exist_ok=True)
        self._unmount_under(self.paths.kubelet_dir)
        # Pods of an earlier run are unknown to this run's (fresh) API server: their directories go.
        shutil.rmtree(self.paths.kubelet_dir, ignore_errors=True)
        self.paths.containerd_config.write_text(cfg.containerd_toml(self.paths, self.artifacts.pause_image))
        (self.paths.cni_conf_dir / "10-coco.conflist").write_text(cfg.cni_conflist(self.paths))
        self.paths.kubelet_config.write_text(cfg.kubelet_yaml(self.paths))
        # The bridge with the node's address exists before the API server binds to that address; the CNI plugin
        # takes it over as it is. The bridge plugin turns IP forwarding on; it is restored on stop.
        self._ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        if _run("ip", "link", "show", cfg.BRIDGE, check=False).returncode != 0:
            _run("ip", "link", "add", cfg.BRIDGE, "type", "bridge")
        _run("ip", "addr", "replace", f"{cfg.GATEWAY}/{cfg.POD_CIDR.split('/')[1]}", "dev", cfg.BRIDGE)
        _run("ip", "link", "set", cfg.BRIDGE, "up")
        # Service addresses never leave the machine, even before kube-proxy has written its rules.
        _run("ip", "route", "replace", "blackhole", SERVICE_CIDR)

    def _restore_host(self) -> None:
        if (self.artifacts.bin_dir / "kube-proxy").exists():
            # Removes every iptables rule and chain kube-proxy made.
            _run(str(self.artifacts.bin_dir / "kube-proxy"), "--cleanup", check=False)
        for tool in ("iptables", "ip6tables"):
            for table, chain, parents in KUBELET_CHAINS:
                for parent in parents:
                    _run(tool, "-t", table, "-D", parent, "-j", chain, check=False)
                _run(tool, "-t", table, "-F", chain, check=False)
                _run(tool, "-t", table, "-X", chain, check=False)
        self._unmount_under(self.paths.kubelet_dir)
        self._unmount_under(self.run)
        _run("ip", "link", "del", cfg.BRIDGE, check=False)
        _run("ip", "route", "del", "blackhole", SERVICE_CIDR, check=False)
        if self._ip_forward is not None:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self._ip_forward)
            self._ip_forward = None

    @staticmethod
    def _unmount_under(path: Path) -> None:
        """Unmount `path` and everything below it (the kubelet bind-mounts its root dir onto itself)."""
        top = str(path.resolve())
        mounts = [
            point
            for point in (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
            if point == top or point.startswith(top + "/")
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            _run("umount", "-l", mount, check=False)

    def _spawn(
        self, name: str, argv: list[str], ready: Callable[[], bool] | None, deadline: float
    ) -> subprocess.Popen[bytes]:
        log = self.log(name)
        with log.open("ab") as f:
            f.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            f.flush()
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._procs[name] = proc
        if ready is not None:
            self._wait(name, ready, deadline)
        return proc

    def _wait(self, what: str, ready: Callable[[], bool], deadline: float) -> None:
        while True:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    log = self.log(name)
                    raise NodeError(f"{name} exited with {proc.returncode}; {log}:\n{_log_tail(log)}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {n}:\n{_log_tail(self.log(n), 15)}" for n in self._procs)
                raise NodeError(f"the node was not ready in time: waiting for {what}\n{tails}")
            time.sleep(0.25)

    def _containerd_ready(self) -> bool:
        return self.paths.containerd_socket.exists() and self.ctr("version", check=False).returncode == 0

    def _import(self, archive: Path, image: str) -> None:
        listed = self.ctr("images", "ls", f"name=={image}").stdout.splitlines()[1:]
        if listed and listed[0].split()[2] == _archive_digest(archive):
            return
        self.ctr("images", "import", str(archive))

    def _kill_leftover_tasks(self) -> None:
        """Containers still running (an interrupted earlier run, or a pod the kubelet did not stop): SIGKILL by id;
        the kubelet then tears their sandboxes down as pods it does not know."""
        for task in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)

    def _drain(self) -> None:
        with self.controlplane.api_client() as api:
            core = kubernetes.client.CoreV1Api(api)
            for pod in core.list_pod_for_all_namespaces().items:
                with contextlib.suppress(ApiException):
                    core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=1)
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while core.list_pod_for_all_namespaces().items and time.monotonic() < deadline:
                time.sleep(0.5)

    def _node_ready(self) -> bool:
        with self.controlplane.api_client() as api:
            node = kubernetes.client.CoreV1Api(api).read_node(cfg.NODE_NAME)
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    def _service_rules(self) -> bool:
        rules = _run("iptables", "-t", "nat", "-S", "KUBE-SERVICES", check=False).stdout
        return "default/kubernetes:https" in rules

    def _default_service_account(self) -> bool:
        with self.controlplane.api_client() as api:
            kubernetes.client.CoreV1Api(api).read_namespaced_service_account("default", "default")
        return True
