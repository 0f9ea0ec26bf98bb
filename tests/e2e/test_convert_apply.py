"""`coco-operator convert` output is accepted by the real API server: Coco's docs JSON -> kubectl apply."""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.ci import unavailable
from tests.e2e.conftest import Kube

pytestmark = pytest.mark.e2e

from tests.unit.test_convert import REFERENCE  # noqa: E402  (one place that knows where shared/ is)

DOCS_TOKEN = "your-confluence-api-token"


def _convert_command() -> list[str]:
    """`coco-operator convert` through the main CLI once it has the subcommand, else the module on its own."""
    from coco_operator import cli

    parser = cli.build_parser()
    wired = any(
        isinstance(action, argparse._SubParsersAction) and "convert" in action.choices for action in parser._actions
    )
    return (
        [sys.executable, "-m", "coco_operator.cli", "convert"]
        if wired
        else [sys.executable, "-m", "coco_operator.convert"]
    )


def convert(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_convert_command(), *args], input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def docs_json() -> str:
    if not REFERENCE.exists():
        unavailable(f"Coco's Confluence connector docs are not at {REFERENCE}")
    bodies = re.findall(r"-d '(\{.*?\})'", REFERENCE.read_text(), re.S)
    assert len(bodies) == 2, "the docs' PUT /connector and POST /datasource/ curl bodies"
    return "\n".join(bodies)  # as when someone cats the two bodies together


@pytest.fixture
def cleanup(kube: Kube) -> Iterator[list[tuple[str, str, str]]]:
    """(namespace, kind, name) to delete afterwards, so nothing keeps syncing against the docs' fake endpoint."""
    created: list[tuple[str, str, str]] = []
    yield created
    for ns, kind, name in created:
        kube.kubectl("-n", ns, "delete", kind, name, "--wait=false", "--ignore-not-found", check=False)


def secret_token(kube: Kube, ns: str, name: str) -> str:
    secret = kube.core.read_namespaced_secret(name, ns)
    assert secret.type == "Opaque"
    return base64.b64decode((secret.data or {})["token"]).decode()


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_docs_json_converts_and_applies(
    kube: Kube, ns: str, docs_json: str, cleanup: list[tuple[str, str, str]]
) -> None:
    proc = convert("--namespace", ns, stdin=docs_json)
    assert proc.returncode == 0, proc.stderr
    assert DOCS_TOKEN not in proc.stderr
    manifests = _docs(proc.stdout)
    assert [d["kind"] for d in manifests] == ["Connector", "Secret", "Datasource"]
    connector, _, datasource = manifests
    cleanup.append((ns, "datasource", datasource["metadata"]["name"]))
    cleanup.append((ns, "secret", "my-confluence-wiki-confluence-token"))

    # The session's Connector `confluence` already exists with this very spec: applying it again succeeds.
    applied = kube.kubectl("apply", "--server-side", "--field-manager=coco-convert-e2e", "-f", "-", input=proc.stdout)
    assert "connector.coco.rs/confluence" in applied.stdout, applied.stdout
    again = kube.kubectl("apply", "-f", "-", input=proc.stdout)  # plain apply too, and idempotent
    assert f"datasource.coco.rs/{datasource['metadata']['name']}" in again.stdout

    live_connector = kube.connector("confluence")
    assert live_connector is not None
    assert {k: live_connector["spec"].get(k) for k in connector["spec"]} == connector["spec"]

    assert secret_token(kube, ns, "my-confluence-wiki-confluence-token") == DOCS_TOKEN

    live = kube.datasource(ns, "my-confluence-wiki")
    assert live is not None
    config = live["spec"]["connector"]["config"]
    assert config["tokenSecretRef"] == {"name": "my-confluence-wiki-confluence-token", "key": "token"}
    assert "token" not in config
    assert config["endpoint"] == "https://your-company.atlassian.net/wiki" and config["space"] == "DOCS"
    assert live["spec"]["sync"]["interval"] == "5m"
    assert live["spec"]["name"] == "My Confluence Wiki"


def test_no_secrets_then_create_secret_as_told(kube: Kube, ns: str, cleanup: list[tuple[str, str, str]]) -> None:
    """A Data Center datasource with every field, converted without its token; the user follows the comment."""
    body = {
        "id": "cs8e3gp5ksl4bmcq5ss0",
        "name": "Operations Wiki (Data Center)",
        "type": "connector",
        "enabled": False,  # never sync against a host that does not exist
        "connector": {
            "id": "confluence",
            "config": {
                "endpoint": "https://confluence.example.com/confluence",
                "username": "",
                "token": "dc-pat-never-printed",
                "space": "OPS",
                "enable_blogposts": True,
                "enable_attachments": True,
                "unknown_setting": 1,
            },
        },
        "sync": {"enabled": False, "interval": "15m", "timeout": "20m"},
        "index": "ops_docs",
    }
    proc = convert("--namespace", ns, "--no-secrets", "--name", "ops-wiki", stdin=json.dumps(body))
    assert proc.returncode == 0, proc.stderr
    assert "dc-pat-never-printed" not in proc.stdout + proc.stderr
    assert "connector.config.unknown_setting is not a field of the confluence connector; dropped" in proc.stderr
    cleanup.append((ns, "datasource", "ops-wiki"))
    cleanup.append((ns, "secret", "ops-wiki-confluence-token"))

    (command,) = [line[len("#   ") :] for line in proc.stdout.splitlines() if "create secret generic" in line]
    assert command == f"kubectl -n {ns} create secret generic ops-wiki-confluence-token --from-literal=token=..."
    kube.kubectl(*command.replace("=...", "=dc-pat-from-the-user").split()[1:])
    (label,) = [line[len("#   ") :] for line in proc.stdout.splitlines() if " label secret " in line]
    assert label == f"kubectl -n {ns} label secret ops-wiki-confluence-token coco.rs/usable-by-datasources=true"
    kube.kubectl(*label.split()[1:])
    kube.kubectl("apply", "--server-side", "--field-manager=coco-convert-e2e", "-f", "-", input=proc.stdout)

    live = kube.datasource(ns, "ops-wiki")
    assert live is not None
    spec = live["spec"]
    assert spec["index"] == "ops_docs" and spec["enabled"] is False
    assert spec["sync"] == {"enabled": False, "interval": "15m", "timeout": "20m"}
    assert "username" not in spec["connector"]["config"]
    assert spec["connector"]["config"]["tokenSecretRef"]["name"] == "ops-wiki-confluence-token"
    assert secret_token(kube, ns, "ops-wiki-confluence-token") == "dc-pat-from-the-user"
