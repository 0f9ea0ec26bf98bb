"""spec.enrichment through the operator on the real API server: processors applied, counts in status, a failing
webhook named in the condition, bad pipelines refused at admission."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    condition,
    datasource,
    request_sync,
    secret,
    wait_handled,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator

pytestmark = pytest.mark.e2e
HOOK_TOKEN = "hook-token-5d1e"


class _Hook(BaseHTTPRequestHandler):
    mode = "ok"
    seen_auth: list[str] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Hook.seen_auth.append(self.headers.get("Authorization", ""))
        if _Hook.mode == "broken":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"documents": [')
            return
        docs = body["documents"]
        for doc in docs:
            doc["summary"] = f"summary of {doc['title']}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"documents": docs}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/enrich"
    server.shutdown()


def _pipeline(hook: str, on_failure: str = "Fail") -> list[dict[str, Any]]:
    return [
        {"type": "exclude", "exclude": {"labels": ["no-index"]}},
        {"type": "set", "set": {"fields": {"team": "platform"}, "tags": ["wiki"], "fromLabels": {"env": "env"}}},
        {"type": "chunk", "chunk": {"size": 500, "overlap": 50}},
        {
            "type": "webhook",
            "webhook": {
                "url": hook,
                "timeoutSeconds": 5,
                "retries": 0,
                "tokenSecretRef": {"name": "hook-token", "key": "token"},
                "onFailure": on_failure,
            },
        },
    ]


def test_pipeline_applied_and_counted(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str, hook: str
) -> None:
    state = cloud.state
    state.add_space("ENR", "Enriched")
    state.add_page("ENR", "Long page", "<p>" + "words about flamingos. " * 200 + "</p>")
    state.add_page("ENR", "Short page", "<p>short</p>")
    hidden = state.add_page("ENR", "Hidden", "<p>do not index</p>", labels=["no-index"])
    ds = datasource(ns, "wiki", cloud.endpoint, "ENR")
    ds["metadata"]["labels"] = {"env": "prod"}
    ds["spec"]["enrichment"] = _pipeline(hook)
    hook_secret = secret(ns, HOOK_TOKEN, name="hook-token")
    _Hook.mode = "ok"
    kube.apply(secret(ns, CLOUD_TOKEN), hook_secret, ds)
    obj = wait_ready(kube, ns, "wiki")
    counts = obj["status"]["lastSync"]
    assert counts["dropped"] == 1 and counts["chunked"] == 1 and counts["enriched"] >= 2
    docs = {d["title"]: d for d in meili.docs(f"{ns}/wiki")}
    assert set(docs) == {"Long page", "Short page"} and hidden not in {
        d["metadata"]["content_id"] for d in docs.values()
    }
    long = docs["Long page"]
    assert long["team"] == "platform" and long["env"] == "prod" and "wiki" in long["tags"]
    assert long["summary"] == "summary of Long page"
    assert len(long["document_chunk"]) > 1
    assert f"Bearer {HOOK_TOKEN}" in _Hook.seen_auth

    # A webhook answering malformed JSON fails the run (onFailure: Fail) and is named in the condition.
    _Hook.mode = "broken"
    state.update_page(state.add_page("ENR", "New", "<p>new</p>"), body="<p>newer</p>")
    request_sync(kube, ns, "wiki")
    failed = wait_ready(kube, ns, "wiki", status="False", reason="EnrichmentFailed")
    message = condition(failed, "Ready")["message"]  # type: ignore[index]
    assert "webhook" in message and HOOK_TOKEN not in message
    assert len(meili.docs(f"{ns}/wiki")) == 2  # nothing lost

    # With onFailure: Skip the run indexes unenriched and says so.
    kube.kubectl(
        "-n", ns, "patch", "datasource", "wiki", "--type=json",
        "-p", '[{"op":"replace","path":"/spec/enrichment/3/webhook/onFailure","value":"Skip"}]',
    )  # fmt: skip
    obj = wait_ready(kube, ns, "wiki", timeout=60)
    assert obj["status"]["enrichmentWarnings"] and "webhook" in obj["status"]["enrichmentWarnings"][0]
    _Hook.mode = "ok"
    token = request_sync(kube, ns, "wiki")
    assert "enrichmentWarnings" not in wait_handled(kube, ns, "wiki", token)["status"]


@pytest.mark.parametrize(
    ("processor", "expect"),
    [
        ({"type": "translate"}, "spec.enrichment[0].type"),
        ({"type": "chunk"}, "needs its options under `chunk:`"),
        ({"type": "chunk", "chunk": {"size": 500, "overlap": 600}}, "overlap"),
        ({"type": "chunk", "chunk": {"size": 500, "overlap": 251}}, "at most half of chunk.size"),
        ({"type": "exclude", "exclude": {"titlePatterns": ["^(?!Draft)"]}}, "RE2 regular expressions"),
        ({"type": "exclude", "exclude": {"titlePatterns": ["(a)\\1"]}}, "RE2 regular expressions"),
        ({"type": "set", "set": {"fields": {"id": "x"}}}, "id"),
        ({"type": "exclude", "exclude": {"labels": ["x"]}, "chunk": {"size": 500}}, "belong to a processor"),
        ({"type": "webhook", "webhook": {"url": "ftp://x"}}, "spec.enrichment[0].webhook.url"),
    ],
)
def test_bad_pipelines_refused(kube: Kube, ns: str, processor: dict[str, Any], expect: str) -> None:
    ds = datasource(ns, "bad", "https://x.atlassian.net/wiki", "DOCS")
    ds["spec"]["enrichment"] = [processor]
    proc = kube.apply(ds, check=False)
    assert proc.returncode != 0 and expect in proc.stderr, proc.stderr
