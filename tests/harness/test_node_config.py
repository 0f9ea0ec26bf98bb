"""The test node's configuration (tests/harness/node_config.py): the properties the node relies on, checked
without starting anything."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml

from tests.harness import node_config as cfg
from tests.harness.controlplane import SERVICE_CIDR

PATHS = cfg.NodePaths(Path("/var/lib/coco-node"), Path("/run/coco-node"), Path("/tmp/logs"))


def test_containerd_runs_runc_without_lowering_oom_scores() -> None:
    config = tomllib.loads(cfg.containerd_toml(PATHS, "localhost/coco-pause:v1"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    # Without CAP_SYS_RESOURCE runc cannot write oom_score_adj; crun refuses the hybrid cgroup layout.
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "localhost/coco-pause:v1"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2" and runc["options"]["BinaryName"] == "runc"
    assert config["grpc"]["address"] == str(PATHS.containerd_socket)
    assert cri["cni"]["conf_dir"] == str(PATHS.cni_conf_dir)


def test_pods_reach_only_the_bridge_and_the_service_range() -> None:
    conf = json.loads(cfg.cni_conflist(PATHS))
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == cfg.BRIDGE and bridge["isGateway"] is True
    assert bridge["ipMasq"] is False  # nothing is translated towards other networks
    assert bridge["ipam"]["ranges"] == [[{"subnet": cfg.POD_CIDR, "gateway": cfg.GATEWAY}]]
    # No default route: a pod has nowhere to send but the bridge and the Services (kube-proxy's DNAT to GATEWAY).
    assert bridge["ipam"]["routes"] == [{"dst": SERVICE_CIDR}]


def test_kubelet_and_kube_proxy_listen_on_the_node_address_only() -> None:
    kubelet = yaml.safe_load(cfg.kubelet_yaml(PATHS))
    assert kubelet["address"] == cfg.GATEWAY and kubelet["readOnlyPort"] == 0 and kubelet["healthzPort"] == 0
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{PATHS.containerd_socket}"
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["failSwapOn"] is False
    proxy = yaml.safe_load(cfg.kube_proxy_yaml(Path("/k")))
    assert proxy["mode"] == "iptables" and proxy["clusterCIDR"] == cfg.POD_CIDR
    assert proxy["healthzBindAddress"] == "" and proxy["metricsBindAddress"] == ""
    assert proxy["nodePortAddresses"] == [f"{cfg.GATEWAY}/32"]
    # Zero: kube-proxy leaves the machine's conntrack sysctls as they are.
    assert proxy["conntrack"]["maxPerCore"] == 0
    argv = cfg.kubelet_argv(Path("/bin"), PATHS, Path("/k"))
    assert f"--node-ip={cfg.GATEWAY}" in argv and f"--hostname-override={cfg.NODE_NAME}" in argv
