"""Faults survived, end to end on the real API server, with an operator of the module's own (f-* namespaces)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import (
    CLOUD_EMAIL,
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    condition,
    datasource,
    make_namespace,
    own_meili,
    own_operator,
    own_wiki,
    request_sync,
    secret,
    wait_for,
    wait_handled,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator

pytestmark = pytest.mark.e2e
ROTATED_TOKEN = "rotated-token-7f3a9c"
WRONG_TOKEN = "wrong-token-b2e8d1"


@pytest.fixture(scope="module")
def fmeili() -> Iterator[Meili]:
    with own_meili("fault-key", "fault_docs") as meili:
        yield meili


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceEmulator]:
    with own_wiki() as emu:
        yield emu


@pytest.fixture(scope="module")
def fop(kube: Kube, fmeili: Meili, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with own_operator(
        kube,
        fmeili,
        tmp_path_factory,
        "f-*",
        COCO_RETRY_DELAY_IN_MS="500",
        COCO_RETRY_MAX_DELAY_SECONDS="3",
        COCO_CONFLUENCE_MAX_RETRY_SECONDS="15",
    ) as op:
        yield op


@pytest.fixture
def fns(kube: Kube, request: pytest.FixtureRequest) -> str:
    return make_namespace(kube, "f", request.node.name)


def _space(wiki: ConfluenceEmulator, key: str, pages: int) -> list[str]:
    wiki.state.add_space(key, f"Space {key}")
    return [wiki.state.add_page(key, f"{key} {i}", f"<p>{key} body {i} kestrel</p>") for i in range(pages)]


def _indexed(meili: Meili, ds_id: str) -> list[str]:
    return [d["metadata"]["content_id"] for d in meili.docs(ds_id)]


def test_sigkill_mid_run_then_restart_converges_exactly(
    kube: Kube, wiki: ConfluenceEmulator, fmeili: Meili, fop: Operator, fns: str
) -> None:
    ids = _space(wiki, "KILL", 40)
    state = wiki.state
    state.cloud_body_cap, state.latency_s = 4, 0.1
    try:
        kube.apply(secret(fns, CLOUD_TOKEN), datasource(fns, "wiki", wiki.endpoint, "KILL"))
        wait_for(
            "the run indexing",
            lambda: (
                ((kube.datasource(fns, "wiki") or {}).get("status") or {}).get("progress", {}).get("phase")
                == "Indexing"
            ),
            timeout=30,
            interval=0.05,
        )
        fop.kill()
    finally:
        state.cloud_body_cap, state.latency_s = 50, 0
    killed = kube.datasource(fns, "wiki")
    assert killed and "watermark" not in killed["status"]  # nothing claimed for a run that never finished
    fop.start()
    obj = wait_ready(kube, fns, "wiki", timeout=60)
    got = _indexed(fmeili, f"{fns}/wiki")
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    assert obj["status"]["documents"] == 40
    # And it keeps converging: a change and a deletion after the restart.
    state.update_page(ids[0], body="<p>after the crash: osprey</p>")
    state.purge(ids[1])
    token = request_sync(kube, fns, "wiki")
    wait_handled(kube, fns, "wiki", token)
    got = _indexed(fmeili, f"{fns}/wiki")
    assert sorted(got) == sorted(ids[:1] + ids[2:])
    assert fmeili.search("osprey", f"{fns}/wiki")


def test_failed_meilisearch_task_fails_the_run_with_its_message(
    kube: Kube, wiki: ConfluenceEmulator, fmeili: Meili, fop: Operator, fns: str
) -> None:
    _space(wiki, "TASK", 3)
    assert fmeili.emulator is not None
    kube.apply(secret(fns, CLOUD_TOKEN), datasource(fns, "wiki", wiki.endpoint, "TASK"))
    wait_ready(kube, fns, "wiki")
    wiki.state.update_page(wiki.state.add_page("TASK", "new", "<p>n</p>"), body="<p>x</p>")
    fmeili.emulator.fail_next_tasks.append(("invalid_document_fields", "The document has a field that is refused."))
    request_sync(kube, fns, "wiki")
    # The failed run is retried quickly, so read it from the history and its Event rather than a transient status.
    wait_for(
        "a run failed with IndexingFailed",
        lambda: any(
            h["reason"] == "IndexingFailed"
            for h in ((kube.datasource(fns, "wiki") or {}).get("status") or {}).get("history", [])
        ),
        timeout=30,
    )
    events = wait_for(
        "IndexingFailed event", lambda: [e for e in kube.events(fns, "wiki") if e.reason == "IndexingFailed"]
    )
    message = events[0].message
    assert "The document has a field that is refused." in message and "invalid_document_fields" in message
    # Retried with backoff; the next attempt succeeds by itself.
    obj = wait_ready(kube, fns, "wiki", timeout=30)
    assert obj["status"]["documents"] == 4


def test_api_server_restart_is_survived_without_double_runs(
    kube: Kube, wiki: ConfluenceEmulator, fop: Operator, fns: str
) -> None:
    if kube.controlplane is None:
        pytest.skip("restarting the API server needs the harness's own control plane")
    _space(wiki, "APIR", 2)
    kube.apply(secret(fns, CLOUD_TOKEN), datasource(fns, "wiki", wiki.endpoint, "APIR", interval="1h"))
    before = wait_ready(kube, fns, "wiki")["status"]
    kube.controlplane.restart_apiserver()
    time.sleep(3)
    assert fop.proc.poll() is None, "the operator must not exit when the API server goes away"
    token = request_sync(kube, fns, "wiki")
    after = wait_handled(kube, fns, "wiki", token, timeout=90)["status"]
    time.sleep(2)
    final = kube.datasource(fns, "wiki")
    assert final is not None
    # Exactly one more run: the one requested; the restart itself triggered none.
    assert len(final["status"]["history"]) == len(before["history"]) + 1 == len(after["history"])


def test_secret_rotation_is_used_without_restart(kube: Kube, wiki: ConfluenceEmulator, fop: Operator, fns: str) -> None:
    _space(wiki, "ROT", 2)
    kube.apply(secret(fns, CLOUD_TOKEN), datasource(fns, "wiki", wiki.endpoint, "ROT"))
    wait_ready(kube, fns, "wiki")
    # Confluence now accepts only the new token (one token per account in the emulator).
    wiki.state.add_cloud_token(CLOUD_EMAIL, ROTATED_TOKEN)
    try:
        kube.apply(secret(fns, ROTATED_TOKEN))
        token = request_sync(kube, fns, "wiki")
        obj = wait_handled(kube, fns, "wiki", token)
    finally:
        wiki.state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
        kube.kubectl("-n", fns, "delete", "datasource", "wiki", "--wait=false")
    assert condition(obj, "Ready")["status"] == "True"  # type: ignore[index]
    last = [r for r in wiki.state.requests if r.route == "v2.spaces" and r.query.get("keys") == "ROT"][-1]
    assert last.status == 200


def test_two_datasources_on_one_space_keep_their_own_documents(
    kube: Kube, wiki: ConfluenceEmulator, fmeili: Meili, fop: Operator, fns: str
) -> None:
    _space(wiki, "TWIN", 5)
    kube.apply(
        secret(fns, CLOUD_TOKEN),
        datasource(fns, "one", wiki.endpoint, "TWIN"),
        datasource(fns, "two", wiki.endpoint, "TWIN"),
    )
    wait_ready(kube, fns, "one")
    wait_ready(kube, fns, "two")
    for name in ("one", "two"):
        token = request_sync(kube, fns, name)
        assert wait_handled(kube, fns, name, token)["status"]["documents"] == 5
    assert len(fmeili.docs(f"{fns}/one")) == 5 and len(fmeili.docs(f"{fns}/two")) == 5
    kube.kubectl("-n", fns, "delete", "datasource", "one")
    wait_for("one gone", lambda: kube.datasource(fns, "one") is None)
    assert fmeili.docs(f"{fns}/one") == [] and len(fmeili.docs(f"{fns}/two")) == 5


def test_no_token_leaks_anywhere(kube: Kube, wiki: ConfluenceEmulator, fmeili: Meili, fop: Operator, fns: str) -> None:
    _space(wiki, "LEAK", 2)
    kube.apply(secret(fns, CLOUD_TOKEN), datasource(fns, "good", wiki.endpoint, "LEAK"))
    wait_ready(kube, fns, "good")
    bad = datasource(fns, "bad", wiki.endpoint, "LEAK")
    bad["spec"]["connector"]["config"]["tokenSecretRef"]["name"] = "wrong"
    kube.apply(secret(fns, WRONG_TOKEN, name="wrong"), bad)
    wait_ready(kube, fns, "bad", status="False", reason="AuthenticationFailed")
    texts = {
        "operator log": fop.log.read_text(errors="replace"),
        "status": str(kube.datasource(fns, "good")) + str(kube.datasource(fns, "bad")),
        "events": " ".join(str(e.message) for e in kube.events(fns, "good") + kube.events(fns, "bad")),
        "metrics": httpx.get(fop.metrics_url, timeout=5).text,
    }
    for where, text in texts.items():
        for token in (CLOUD_TOKEN, WRONG_TOKEN):
            assert token not in text, f"a token leaked into the {where}"


def test_plain_http_refused_unless_allowed(
    kube: Kube, wiki: ConfluenceEmulator, fmeili: Meili, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with own_operator(
        kube, fmeili, tmp_path_factory, "s-*", COCO_ALLOW_HTTP="false", COCO_ALLOWED_HOSTS="*.atlassian.net"
    ):
        sns = make_namespace(kube, "s", "http")
        _space(wiki, "HTTP", 1)
        kube.apply(secret(sns, CLOUD_TOKEN), datasource(sns, "wiki", wiki.endpoint, "HTTP"))
        obj = wait_ready(kube, sns, "wiki", status="False", reason="EndpointNotAllowed")
        assert "plain http" in condition(obj, "Ready")["message"]  # type: ignore[index]
        assert condition(obj, "Stalled") is not None
        ssrf = datasource(sns, "ssrf", "https://169.254.169.254/latest", "X")
        kube.apply(ssrf)
        obj = wait_ready(kube, sns, "ssrf", status="False", reason="EndpointNotAllowed")
        # The egress policy refuses a cloud metadata address whatever the host list says.
        assert "it is a cloud metadata address" in condition(obj, "Ready")["message"]  # type: ignore[index]
        other = datasource(sns, "other", "https://wiki.internal.example/latest", "X")
        kube.apply(other)
        obj = wait_ready(kube, sns, "other", status="False", reason="EndpointNotAllowed")
        message = condition(obj, "Ready")["message"]  # type: ignore[index]
        assert "not in the operator's allowed hosts (*.atlassian.net)" in message and "COCO_ALLOWED_HOSTS" in message
        assert not [r for r in wiki.state.requests if "HTTP" in r.path + str(r.query)]  # space HTTP never asked for


def test_confluence_faults_are_waited_out_or_reported_without_deleting(
    kube: Kube, wiki: ConfluenceEmulator, fmeili: Meili, fop: Operator, fns: str
) -> None:
    _space(wiki, "FLAKY", 6)
    kube.apply(secret(fns, CLOUD_TOKEN), datasource(fns, "wiki", wiki.endpoint, "FLAKY"))
    wait_ready(kube, fns, "wiki")
    state = wiki.state
    # A stretch of throttling and server errors, and one malformed answer: the run waits them out.
    state.rate_limit_next, state.retry_after = 2, "1"
    state.fail_next = [500, 503]
    state.malformed_next = 1
    token = request_sync(kube, fns, "wiki")
    obj = wait_handled(kube, fns, "wiki", token, timeout=60)
    assert condition(obj, "Ready")["status"] == "True"  # type: ignore[index]
    assert {429, 500, 503} <= {r.status for r in state.requests}
    # An outage longer than the retry budget: the run fails with a clear reason and deletes nothing.
    state.fail_next = [503] * 10_000
    try:
        token = request_sync(kube, fns, "wiki")
        obj = wait_handled(kube, fns, "wiki", token, timeout=90)
        ready = condition(obj, "Ready")
        assert ready and ready["reason"] == "ConfluenceUnavailable" and "kept failing" in ready["message"]
        assert len(fmeili.docs(f"{fns}/wiki")) == 6
    finally:
        state.fail_next = []
    wait_ready(kube, fns, "wiki", timeout=60)
