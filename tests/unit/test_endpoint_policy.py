from __future__ import annotations

from coco_operator.settings import Settings
from coco_operator.sync import endpoint_problem


def test_plain_http_refused_unless_allowed() -> None:
    problem = endpoint_problem("http://wiki.internal/confluence", Settings())
    assert problem and "plain http" in problem and "COCO_ALLOW_HTTP" in problem
    assert endpoint_problem("http://wiki.internal/confluence", Settings(allow_http=True)) is None
    assert endpoint_problem("https://acme.atlassian.net/wiki", Settings()) is None


def test_allow_list_of_hosts() -> None:
    settings = Settings(allowed_hosts=["*.atlassian.net", "wiki.example.com"])
    assert endpoint_problem("https://acme.atlassian.net/wiki", settings) is None
    assert endpoint_problem("https://WIKI.example.com", settings) is None
    problem = endpoint_problem("https://wiki.corp.example/latest", settings)
    assert problem and "wiki.corp.example" in problem and "not in the operator's allowed hosts" in problem
    assert "COCO_ALLOWED_HOSTS" in problem
    # A metadata address is refused whatever the host list says (the egress policy's address rules).
    problem = endpoint_problem("https://169.254.169.254/latest", Settings(allowed_hosts=["*"]))
    assert problem and "cloud metadata" in problem
    # A look-alike suffix is not a match.
    assert endpoint_problem("https://acme.atlassian.net.evil.com/wiki", settings) is not None


def test_allowed_hosts_from_environment(monkeypatch: object) -> None:
    import os

    os.environ["COCO_ALLOWED_HOSTS"] = "*.atlassian.net, confluence.corp"
    try:
        assert Settings().allowed_hosts == ["*.atlassian.net", "confluence.corp"]
    finally:
        del os.environ["COCO_ALLOWED_HOSTS"]
