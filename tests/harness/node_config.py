"""What the test node's components are told: containerd's config, the CNI bridge network, the kubelet's and
kube-proxy's configuration files and the command lines of every component. Pure: paths in, text and argv out.

The network: a bridge `coco0` with the node's address (GATEWAY) on it, pods in POD_CIDR behind it. Pods get a route
to the Service range and nothing else (no default route): they reach the API server (through the `kubernetes`
Service, which kube-proxy translates to GATEWAY) and whatever the tests serve on GATEWAY, and no other address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.harness.controlplane import SERVICE_CIDR

BRIDGE = "coco0"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
NODE_NAME = "coco-node"
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class NodePaths:
    """Where a node keeps its state: `root` survives between runs (images, so they are imported once), `run` is
    runtime state (sockets), `logs` holds the components' logs of this run."""

    root: Path
    run: Path
    logs: Path

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"


def containerd_toml(paths: NodePaths, pause_image: str) -> str:
    # restrict_oom_score_adj: the sandbox lacks CAP_SYS_RESOURCE, and runc fails ("can't get final child's PID from
    # pipe") when asked to lower a score. runc, not crun: crun refuses this machine's hybrid cgroup layout.
    return f"""version = 2
root = "{paths.root / "containerd"}"
state = "{paths.run / "containerd"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{paths.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{paths.cni_conf_dir}"
"""


def cni_conflist(paths: NodePaths) -> str:
    ipam = {
        "type": "host-local",
        "dataDir": str(paths.root / "cni-ipam"),
        "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
        # Only the Service range: pods have no default route, so nothing they send leaves this machine.
        "routes": [{"dst": SERVICE_CIDR}],
    }
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": ipam,
    }
    return json.dumps({"cniVersion": "0.4.0", "name": "coco", "plugins": [bridge]}, indent=2)


def kubelet_yaml(paths: NodePaths) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": GATEWAY,
        "readOnlyPort": 0,
        "healthzPort": 0,
        # The API server reaches the kubelet (logs, exec) without client certificates; nothing else can reach it.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "localStorageCapacityIsolation": False,
        "evictionHard": {},
        "imageGCHighThresholdPercent": 100,
        "podLogsDir": str(paths.pod_logs),
        "serializeImagePulls": False,
        # Pod status and deletions are noticed sooner than the defaults (tests wait for them).
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_yaml(kubeconfig: Path) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": "",
        "metricsBindAddress": "",
        "nodePortAddresses": [f"{GATEWAY}/32"],
        # Leave the machine's conntrack and localhost sysctls alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
    }
    return yaml.safe_dump(config, sort_keys=False)


def containerd_argv(paths: NodePaths) -> list[str]:
    return ["containerd", "--config", str(paths.containerd_config)]


def kubelet_argv(bin_dir: Path, paths: NodePaths, kubeconfig: Path) -> list[str]:
    return [
        str(bin_dir / "kubelet"),
        f"--config={paths.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={paths.kubelet_dir}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={GATEWAY}",
    ]


def controller_manager_argv(bin_dir: Path, kubeconfig: Path, sa_key: Path, ca_file: Path) -> list[str]:
    # Default ServiceAccounts, the kube-root-ca.crt ConfigMap, Deployments, Jobs, garbage collection: the
    # controllers a pod-running cluster needs, with the admin identity (no per-controller credentials).
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        "--secure-port=0",
        "--leader-elect=false",
        f"--service-account-private-key-file={sa_key}",
        f"--root-ca-file={ca_file}",
    ]


def scheduler_argv(bin_dir: Path, kubeconfig: Path) -> list[str]:
    return [str(bin_dir / "kube-scheduler"), f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--secure-port=0"]


def kube_proxy_argv(bin_dir: Path, paths: NodePaths) -> list[str]:
    return [str(bin_dir / "kube-proxy"), f"--config={paths.kube_proxy_config}"]
