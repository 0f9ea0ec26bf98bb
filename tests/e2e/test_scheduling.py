"""Scheduling semantics with an operator of the module's own (own settings, own Meilisearch and Confluence), so
that faults injected here touch nothing else. It serves d-* namespaces; the session's operator serves t-*."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
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
CONCURRENCY = 3


@pytest.fixture(scope="module")
def meili_d() -> Iterator[Meili]:
    with own_meili("own-key", "own_docs") as meili:
        yield meili


@pytest.fixture(scope="module")
def wiki() -> Iterator[ConfluenceEmulator]:
    with own_wiki(dict.fromkeys(("SCHED", "CONC", "SLOW", "DOWN", "CONN", "RSTR", "LOGS"), 4)) as emu:
        yield emu


@pytest.fixture(scope="module")
def own(kube: Kube, meili_d: Meili, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with own_operator(
        kube,
        meili_d,
        tmp_path_factory,
        "d-*",
        COCO_MAX_CONCURRENT_RUNS=str(CONCURRENCY),
        COCO_RETRY_DELAY_IN_MS="1000",
        COCO_RETRY_MAX_DELAY_SECONDS="8",
        COCO_JITTER_RATIO="0",
        COCO_LOG_FORMAT="json",
    ) as op:
        yield op


@pytest.fixture
def dns(kube: Kube, request: pytest.FixtureRequest) -> str:
    return make_namespace(kube, "d", request.node.name)


def _gauge(op: Operator, name: str) -> float:
    for line in httpx.get(op.metrics_url, timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_each_datasource_runs_on_its_own_interval(
    kube: Kube, wiki: ConfluenceEmulator, own: Operator, dns: str
) -> None:
    kube.apply(
        secret(dns, CLOUD_TOKEN),
        datasource(dns, "fast", wiki.endpoint, "SCHED", interval="10s"),
        datasource(dns, "slow", wiki.endpoint, "SCHED", interval="1h"),
    )
    wait_ready(kube, dns, "fast")
    wait_ready(kube, dns, "slow")
    time.sleep(24)
    fast = kube.datasource(dns, "fast")
    slow = kube.datasource(dns, "slow")
    assert fast and slow
    fast_runs = fast["status"]["history"]
    assert len(fast_runs) >= 3, fast_runs
    assert len(slow["status"]["history"]) == 1
    # Measured from the end of one run to the start of the next: never sooner than the interval.
    starts = sorted(r["startTime"] for r in fast_runs)
    from datetime import datetime

    times = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in starts]
    assert all((b - a).total_seconds() >= 10 for a, b in itertools.pairwise(times))


def test_concurrency_limit_holds_under_20_datasources(
    kube: Kube, wiki: ConfluenceEmulator, own: Operator, dns: str
) -> None:
    wiki.state.latency_s = 0.15
    peak = {"running": 0.0, "queued": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["running"] = max(peak["running"], _gauge(own, "coco_sync_runs_in_progress"))
            peak["queued"] = max(peak["queued"], _gauge(own, "coco_sync_queue_depth"))
            time.sleep(0.03)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        names = [f"ds{i:02d}" for i in range(20)]
        kube.apply(secret(dns, CLOUD_TOKEN), *(datasource(dns, n, wiki.endpoint, "CONC") for n in names))
        queued_seen = wait_for(
            "a Datasource waiting for a slot",
            lambda: any(
                (c := condition(kube.datasource(dns, n), "Reconciling")) and c["reason"] == "Queued" for n in names
            ),
            timeout=30,
            interval=0.05,
        )
        assert queued_seen
        for name in names:
            wait_ready(kube, dns, name, timeout=90)
    finally:
        stop.set()
        sampler.join()
        wiki.state.latency_s = 0
    assert peak["running"] == CONCURRENCY, peak
    assert peak["queued"] >= 1, peak


def test_timeout_cancels_the_run_and_keeps_the_watermark(
    kube: Kube, wiki: ConfluenceEmulator, own: Operator, dns: str
) -> None:
    kube.apply(secret(dns, CLOUD_TOKEN), datasource(dns, "wiki", wiki.endpoint, "SLOW"))
    first = wait_ready(kube, dns, "wiki")
    watermark = first["status"]["watermark"]
    wiki.state.latency_s = 1.5
    try:
        kube.kubectl(
            "-n", dns, "patch", "datasource", "wiki", "--type=merge", "-p", '{"spec":{"sync":{"timeout":"2s"}}}'
        )
        obj = wait_ready(kube, dns, "wiki", status="False", reason="SyncTimeout", timeout=30)
    finally:
        wiki.state.latency_s = 0
    assert "longer than 2s" in condition(obj, "Ready")["message"]  # type: ignore[index]
    assert obj["status"]["watermark"] == watermark  # a cancelled run never advances it
    assert obj["status"]["history"][0]["reason"] == "SyncTimeout"


def test_backoff_after_failures_then_recovery(
    kube: Kube, wiki: ConfluenceEmulator, meili_d: Meili, own: Operator, dns: str
) -> None:
    assert meili_d.emulator is not None
    meili_d.emulator.stop()
    try:
        kube.apply(secret(dns, CLOUD_TOKEN), datasource(dns, "wiki", wiki.endpoint, "DOWN"))
        obj = wait_for(
            "four failed runs",
            lambda: (o := kube.datasource(dns, "wiki")) and (o.get("status") or {}).get("consecutiveFailures", 0) >= 4
            and o,
            timeout=40,
        )  # fmt: skip
        ready = condition(obj, "Ready")
        assert ready and ready["reason"] == "SearchBackendUnavailable" and "unreachable" in ready["message"]
        assert condition(obj, "Stalled") is None  # retried by itself, nothing for the user to fix
        retry = condition(obj, "Reconciling")  # and kstatus sees work in progress, as with Flux's controllers
        assert retry and retry["reason"] == "ProgressingWithRetry" and "retrying at" in retry["message"]
        history = obj["status"]["history"]
        from datetime import datetime

        starts = [datetime.fromisoformat(h["startTime"].replace("Z", "+00:00")) for h in list(reversed(history))[:4]]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
        # 1s, then 2s, then 4s (plus each run's own time; start times have whole seconds, so each gap may read up
        # to 1s off): exponential, not a tight loop and not the 1h interval.
        assert gaps[0] <= 2.5 and gaps[2] >= 3 and gaps[2] > gaps[0], gaps
    finally:
        meili_d.emulator.restart()
    obj = wait_ready(kube, dns, "wiki", timeout=30)
    assert obj["status"]["consecutiveFailures"] == 0 and obj["status"]["documents"] == 4


def test_connector_disable_pauses_and_enable_resumes(
    kube: Kube, wiki: ConfluenceEmulator, own: Operator, dns: str
) -> None:
    connector = {
        "apiVersion": "coco.rs/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "confluence-d"},
        "spec": {"name": "Second Confluence", "processor": {"enabled": True, "name": "confluence"}},
    }
    kube.apply(connector)
    obj = datasource(dns, "wiki", wiki.endpoint, "CONN")
    obj["spec"]["connector"]["id"] = "confluence-d"
    kube.apply(secret(dns, CLOUD_TOKEN), obj)
    wait_ready(kube, dns, "wiki")
    wait_for(
        "Connector counts its Datasource",
        lambda: ((kube.connector("confluence-d") or {}).get("status") or {}).get("datasources") == 1,
    )
    try:
        kube.kubectl(
            "patch", "connector", "confluence-d", "--type=merge", "-p", '{"spec":{"processor":{"enabled":false}}}'
        )
        paused = wait_ready(kube, dns, "wiki", status="False", reason="ConnectorDisabled", generation=False)
        assert "processor.enabled: false" in condition(paused, "Ready")["message"]  # type: ignore[index]
        conn = wait_for(
            "Connector Ready=False Disabled",
            lambda: (c := kube.connector("confluence-d")) and (r := condition(c, "Ready")) and r["reason"] == "Disabled"
            and c,
        )  # fmt: skip
        assert conn["status"]["datasources"] == 1
    finally:
        kube.kubectl(
            "patch", "connector", "confluence-d", "--type=merge", "-p", '{"spec":{"processor":{"enabled":true}}}'
        )
    wait_ready(kube, dns, "wiki", generation=False)
    token = request_sync(kube, dns, "wiki")
    assert condition(wait_handled(kube, dns, "wiki", token), "Ready")["status"] == "True"  # type: ignore[index]


def test_restart_keeps_the_schedule(kube: Kube, wiki: ConfluenceEmulator, own: Operator, dns: str) -> None:
    kube.apply(secret(dns, CLOUD_TOKEN), datasource(dns, "wiki", wiki.endpoint, "RSTR", interval="1h"))
    before = wait_ready(kube, dns, "wiki")["status"]
    own.stop()
    own.start()
    time.sleep(6)
    after = kube.datasource(dns, "wiki")
    assert after is not None
    status = after["status"]
    # No run on restart: the schedule comes from status, not memory.
    assert status["lastSyncTime"] == before["lastSyncTime"]
    assert status["nextSyncTime"] == before["nextSyncTime"]
    assert len(status["history"]) == len(before["history"])
    token = request_sync(kube, dns, "wiki")
    assert len(wait_handled(kube, dns, "wiki", token)["status"]["history"]) == len(before["history"]) + 1


def test_json_logs_name_the_datasource_and_never_the_token(
    kube: Kube, wiki: ConfluenceEmulator, own: Operator, dns: str
) -> None:
    kube.apply(secret(dns, CLOUD_TOKEN), datasource(dns, "logged", wiki.endpoint, "LOGS"))
    wait_ready(kube, dns, "logged")
    text = Path(own.log).read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    sync_lines = [r for r in lines if "sync of" in r.get("message", "") and f"{dns}/logged" in r["message"]]
    assert sync_lines, "the run is logged"
    assert all(r.get("object", {}).get("name") == "logged" for r in sync_lines)
    assert all(r.get("object", {}).get("namespace") == dns for r in sync_lines)
    assert CLOUD_TOKEN not in text
