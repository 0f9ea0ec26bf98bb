"""The node harness itself: one node per machine, and a second start leaves the running one alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Kube
from tests.harness.node import Node, NodeError
from tests.harness.node_config import BRIDGE, NODE_NAME
from tests.node.conftest import ExternalNode

pytestmark = pytest.mark.node


def test_a_second_node_is_refused_and_the_first_keeps_running(
    node: Node | ExternalNode, kube: Kube, tmp_path: Path
) -> None:
    if isinstance(node, ExternalNode):
        pytest.skip("the harness' own node only")
    second = Node(tmp_path, node.artifacts)
    with pytest.raises(NodeError, match="another test node runs on this machine"):
        second.start()
    second.stop()  # nothing to undo: it never took the machine
    assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, check=False).returncode == 0
    ready = kube.core.read_node(NODE_NAME).status.conditions
    assert any(c.type == "Ready" and c.status == "True" for c in ready)
