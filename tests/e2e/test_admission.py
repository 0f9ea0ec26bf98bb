"""Invalid specs are refused by the API server itself (schema and CEL), with a message that says what to do."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Kube, datasource

pytestmark = pytest.mark.e2e


def _refused(kube: Kube, obj: dict) -> str:
    proc = kube.apply(obj, check=False)
    assert proc.returncode != 0, f"accepted: {proc.stdout}"
    return proc.stderr


@pytest.mark.parametrize(
    ("interval", "expect"),
    [("5s", "sync.interval must be at least 10s"), ("5 minutes", "spec.sync.interval"), ("10", "spec.sync.interval")],
)
def test_bad_interval_refused(kube: Kube, ns: str, interval: str, expect: str) -> None:
    err = _refused(kube, datasource(ns, "bad", "https://x.atlassian.net/wiki", "DOCS", interval=interval))
    assert expect in err


def test_good_intervals_accepted(kube: Kube, ns: str) -> None:
    for i, interval in enumerate(("10s", "90s", "5m", "1h30m", "2h")):
        kube.apply(datasource(ns, f"ok{i}", "https://x.atlassian.net/wiki", "DOCS", interval=interval))
        kube.kubectl("-n", ns, "patch", "datasource", f"ok{i}", "--type=merge", "-p", '{"spec":{"enabled":false}}')


def test_inline_token_refused_with_advice(kube: Kube, ns: str) -> None:
    obj = datasource(ns, "tok", "https://x.atlassian.net/wiki", "DOCS")
    obj["spec"]["connector"]["config"]["token"] = "s3cr3t"
    err = _refused(kube, obj)
    assert "inline token is not allowed" in err and "tokenSecretRef" in err


@pytest.mark.parametrize(
    ("field", "value", "expect"),
    [
        ("endpoint", "ftp://x.example.com", "spec.connector.config.endpoint"),
        ("endpoint", "not a url", "spec.connector.config.endpoint"),
        ("space", "DO CS", "spec.connector.config.space"),
        ("space", 'DOCS" OR space = "X', "spec.connector.config.space"),
        ("exclude_labels", ["two words"], "spec.connector.config.exclude_labels[0]"),
        ("exclude_labels", [f"l{i}" for i in range(51)], "spec.connector.config.exclude_labels"),
    ],
)
def test_bad_config_refused(kube: Kube, ns: str, field: str, value: object, expect: str) -> None:
    obj = datasource(ns, "cfg", "https://x.atlassian.net/wiki", "DOCS")
    obj["spec"]["connector"]["config"][field] = value
    assert expect in _refused(kube, obj)


def test_cloud_without_username_refused(kube: Kube, ns: str) -> None:
    obj = datasource(ns, "nouser", "https://x.atlassian.net/wiki", "DOCS", username=None)
    assert "needs username" in _refused(kube, obj)


def test_missing_token_ref_and_unknown_field_refused(kube: Kube, ns: str) -> None:
    obj = datasource(ns, "noref", "https://dc.example.com", "DOCS", username=None)
    del obj["spec"]["connector"]["config"]["tokenSecretRef"]
    assert "tokenSecretRef" in _refused(kube, obj)
    obj = datasource(ns, "typo", "https://dc.example.com", "DOCS", username=None)
    obj["spec"]["connector"]["config"]["enable_blogpost"] = True
    assert "enable_blogpost" in _refused(kube, obj)
