"""Dispatcher semantics on the real API server: on-demand runs, history, progress, metrics, sync-now."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    condition,
    datasource,
    request_sync,
    secret,
    wait_for,
    wait_handled,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator

pytestmark = pytest.mark.e2e


def _space(cloud: ConfluenceEmulator, key: str, pages: int) -> None:
    cloud.state.add_space(key, f"Space {key}")
    for i in range(pages):
        cloud.state.add_page(key, f"{key} page {i}", f"<p>Body {i} of {key} about herons.</p>")


def _samples(operator: Operator) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(operator.metrics_url, timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_annotation_runs_once_and_history_is_kept(
    kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    _space(cloud, "HIST", 3)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "HIST"))
    first = wait_ready(kube, ns, "wiki")
    runs_before = len(first["status"]["history"])
    assert runs_before == 1
    token = request_sync(kube, ns, "wiki")
    obj = wait_handled(kube, ns, "wiki", token)
    # Exactly one run for one request, and no more while the token stays the same.
    time.sleep(2)
    obj = kube.datasource(ns, "wiki")
    assert obj is not None
    history = obj["status"]["history"]
    assert len(history) == 2
    assert history[0]["startTime"] >= history[1]["startTime"]
    assert history[0]["result"] == "Succeeded"
    # The first run is full, the second incremental: nothing changed, nothing re-indexed.
    assert history[1]["counts"]["pages"] == 3 and history[0]["counts"]["pages"] == 0
    for _ in range(6):
        request_sync(kube, ns, "wiki")
    obj = wait_for(
        "five runs kept",
        lambda: (o := kube.datasource(ns, "wiki")) and not condition(o, "Reconciling")
        and o["status"]["lastHandledSyncRequest"] and len(o["status"]["history"]) == 5 and o,
    )  # fmt: skip
    assert len(obj["status"]["history"]) == 5


def test_progress_is_visible_during_a_long_run(
    kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    _space(cloud, "PROG", 30)
    state = cloud.state
    old_cap, old_latency = state.cloud_body_cap, state.latency_s
    state.cloud_body_cap, state.latency_s = 3, 0.25
    try:
        kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "PROG"))
        seen = wait_for(
            "progress in status",
            lambda: (o := kube.datasource(ns, "wiki")) and (o.get("status") or {}).get("progress"),
            timeout=30,
            interval=0.1,
        )
        assert seen["phase"] in ("Connecting", "Listing", "Indexing", "Pruning")
        obj = wait_ready(kube, ns, "wiki", timeout=60)
        assert "progress" not in obj["status"]
        assert obj["status"]["documents"] == 30
    finally:
        state.cloud_body_cap, state.latency_s = old_cap, old_latency


def test_metrics_count_runs_and_documents(
    kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    _space(cloud, "METR", 4)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "METR"))
    wait_ready(kube, ns, "wiki")
    labels = (("datasource", "wiki"), ("namespace", ns))
    samples = _samples(operator)
    assert samples[("coco_sync_runs_total", (*labels, ("reason", "Succeeded"), ("result", "Succeeded")))] == 1
    assert samples[("coco_documents_indexed_total", (*labels, ("type", "pages")))] == 4
    assert samples[("coco_sync_run_duration_seconds_count", labels)] == 1
    assert samples[("coco_confluence_requests_total", (("code", "200"),))] >= 2
    assert ("coco_sync_runs_in_progress", ()) in samples and ("coco_sync_queue_depth", ()) in samples


def test_sync_now_cli(kube: Kube, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    _space(cloud, "SNOW", 2)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "SNOW"))
    wait_ready(kube, ns, "wiki")
    env = dict(os.environ, KUBECONFIG=str(kube.kubeconfig))
    proc = subprocess.run(
        [sys.executable, "-m", "coco_operator.cli", "sync-now", "wiki", "-n", ns, "--timeout", "60"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True Succeeded")
    obj = kube.datasource(ns, "wiki")
    assert obj and len(obj["status"]["history"]) == 2
