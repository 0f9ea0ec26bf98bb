"""Bad input, table-driven: refused at admission with a message that names the field, or reported at runtime with
an exact reason and a message that says what to fix. Nothing is indexed or deleted by mistake."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.e2e.conftest import CLOUD_TOKEN, Kube, Meili, Operator, condition, datasource, secret, wait_ready
from tests.emulators.confluence import ConfluenceEmulator

pytestmark = pytest.mark.e2e
BASE = datasource("placeholder", "bad", "https://acme.atlassian.net/wiki", "DOCS")


def _with(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = obj
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return obj


_DELETE = object()

ADMISSION = [
    ("spec.enabled", "yes", "spec.enabled: Invalid value"),
    ("spec.sync.interval", 300, "spec.sync.interval: Invalid value"),
    ("spec.sync.interval", "2s", "sync.interval must be at least 10s"),
    ("spec.sync.interval", "five minutes", "spec.sync.interval"),
    ("spec.connector.config.enable_blogposts", "sometimes", "spec.connector.config.enable_blogposts"),
    ("spec.connector.config.endpoint", "acme.atlassian.net", "spec.connector.config.endpoint"),
    ("spec.connector.config.endpoint", "file:///etc/passwd", "spec.connector.config.endpoint"),
    ("spec.connector.config.space", 'DOCS" OR type = "page', "spec.connector.config.space"),
    ("spec.connector.config.token", "abc", "inline token is not allowed"),
    ("spec.connector.config.tokenSecretRef", _DELETE, "tokenSecretRef: Required value"),
    ("spec.connector.config.space", _DELETE, "space: Required value"),
    ("spec.connector.id", _DELETE, "spec.connector.id: Required value"),
    ("spec.name", _DELETE, "spec.name: Required value"),
    ("spec.index", "docs index!", "spec.index"),
    (
        "spec.connector.config.tokenSecretRef",
        {"name": "t", "namespace": "other"},
        'unknown field "spec.connector.config.tokenSecretRef.namespace"',
    ),
    ("spec.colour", "blue", 'unknown field "spec.colour"'),
    ("spec.connector.config.cql", "type = page order by title", "must not contain ORDER BY"),
]


@pytest.mark.parametrize(("path", "value", "expect"), ADMISSION, ids=[f"{p}={v!r}"[:60] for p, v, _ in ADMISSION])
def test_refused_at_admission(kube: Kube, ns: str, path: str, value: Any, expect: str) -> None:
    obj = _with(path, value)
    obj["metadata"]["namespace"] = ns
    proc = kube.apply(obj, check=False)
    assert proc.returncode != 0, f"accepted: {proc.stdout}"
    assert expect in proc.stderr, proc.stderr
    assert kube.datasource(ns, "bad") is None


def test_missing_secret_key(kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    cloud.state.add_space("KEYX", "Key")
    ds = datasource(ns, "wiki", cloud.endpoint, "KEYX")
    ds["spec"]["connector"]["config"]["tokenSecretRef"]["key"] = "api-token"
    kube.apply(secret(ns, CLOUD_TOKEN), ds)
    obj = wait_ready(kube, ns, "wiki", status="False", reason="SecretKeyNotFound")
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert "has no key 'api-token'" in message and "keys: token" in message and "tokenSecretRef.key" in message
    assert meili.docs(f"{ns}/wiki") == []


def test_unbalanced_cql_filter_reported(kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    ds = datasource(ns, "wiki", cloud.endpoint, "KEYX")
    ds["spec"]["connector"]["config"]["cql"] = 'label = "a") OR (space = "OTHER"'
    kube.apply(secret(ns, CLOUD_TOKEN), ds)
    obj = wait_ready(kube, ns, "wiki", status="False", reason="InvalidSpec")
    assert "closes a parenthesis it did not open" in condition(obj, "Ready")["message"]  # type: ignore[index]
