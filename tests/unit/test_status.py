from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from coco_operator import status as st

T0 = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
COUNTS = {"pages": 10, "blogposts": 2, "attachments": 1, "deleted": 3, "skipped": 0}


def _ok(status: dict, now: datetime) -> dict:
    return st.run_succeeded(
        status,
        generation=2,
        now=now,
        started=now - timedelta(seconds=4),
        counts=COUNTS,
        documents=13,
        index="docs",
        space="DOCS",
        next_run=now + timedelta(minutes=5),
    )


def test_success_sets_ready_and_counts() -> None:
    new = _ok({}, T0)
    ready = st.get_condition(new, "Ready")
    assert ready and ready["status"] == "True" and ready["reason"] == "Succeeded"
    assert "13 indexed" in ready["message"] and "13 documents" in ready["message"]
    assert new["observedGeneration"] == 2
    assert new["lastSync"] == COUNTS and new["documents"] == 13
    assert new["lastSyncDuration"] == "4.0s"
    assert new["nextSyncTime"] == "2026-11-27T07:05:00Z"
    assert st.get_condition(new, "Reconciling") is None and st.get_condition(new, "Stalled") is None


def test_transition_time_only_changes_with_status() -> None:
    first = _ok({}, T0)
    second = _ok(first, T0 + timedelta(minutes=5))
    assert st.get_condition(second, "Ready")["lastTransitionTime"] == "2026-11-27T07:00:00Z"  # type: ignore[index]
    failed = st.run_failed(
        second,
        generation=2,
        now=T0 + timedelta(minutes=10),
        started=T0 + timedelta(minutes=9),
        reason="AuthenticationFailed",
        message="bad token",
        retryable=False,
        next_run=None,
        index="docs",
    )
    ready = st.get_condition(failed, "Ready")
    assert ready and ready["status"] == "False" and ready["lastTransitionTime"] == "2026-11-27T07:10:00Z"
    stalled = st.get_condition(failed, "Stalled")
    assert stalled and stalled["reason"] == "AuthenticationFailed"
    assert failed["consecutiveFailures"] == 1
    assert failed["lastError"] == "AuthenticationFailed: bad token"
    # Counts of the last good run are kept; the document count is still true.
    assert failed["documents"] == 13


def test_retryable_failure_is_not_stalled_and_success_clears_error() -> None:
    failed = st.run_failed(
        {},
        generation=1,
        now=T0,
        started=T0,
        reason="SearchBackendUnavailable",
        message="down",
        retryable=True,
        next_run=T0 + timedelta(seconds=10),
        index="docs",
    )
    assert st.get_condition(failed, "Stalled") is None
    assert "Retrying at 2026-11-27T07:00:10Z" in st.get_condition(failed, "Ready")["message"]  # type: ignore[index]
    retry = st.get_condition(failed, "Reconciling")
    assert retry and retry["reason"] == "ProgressingWithRetry" and "SearchBackendUnavailable" in retry["message"]
    ok = _ok(failed, T0 + timedelta(minutes=1))
    assert "lastError" not in ok and ok["consecutiveFailures"] == 0


def test_running_keeps_ready_and_adds_reconciling() -> None:
    ok = _ok({}, T0)
    running = st.run_started(ok, generation=3, now=T0 + timedelta(minutes=5), message="Syncing space DOCS")
    assert st.get_condition(running, "Ready")["status"] == "True"  # type: ignore[index]
    rec = st.get_condition(running, "Reconciling")
    assert rec and rec["status"] == "True" and rec["observedGeneration"] == 3
    fresh = st.run_started({}, generation=1, now=T0, message="Syncing")
    assert st.get_condition(fresh, "Ready")["status"] == "Unknown"  # type: ignore[index]


def test_merge_patch_no_churn_and_deletions() -> None:
    ok = _ok({}, T0)
    assert st.merge_patch(ok, dict(ok)) is None
    paused = st.paused(ok, generation=2, now=T0, reason="Suspended", message="suspended")
    patch = st.merge_patch(ok, paused)
    assert patch is not None and patch["nextSyncTime"] is None and "conditions" in patch
    assert "documents" not in patch


def test_connector_status() -> None:
    ready = st.connector_status(
        {}, generation=1, processor="confluence", enabled=True, known=True, datasources=3, now=T0
    )
    assert st.get_condition(ready, "Ready")["status"] == "True" and ready["datasources"] == 3  # type: ignore[index]
    off = st.connector_status(
        ready, generation=2, processor="confluence", enabled=False, known=True, datasources=3, now=T0
    )
    assert st.get_condition(off, "Ready")["reason"] == "Disabled"  # type: ignore[index]
    unknown = st.connector_status({}, generation=1, processor="jira", enabled=True, known=False, datasources=0, now=T0)
    assert st.get_condition(unknown, "Stalled")["reason"] == "UnknownProcessor"  # type: ignore[index]


def test_listing_facts_kept_for_the_next_run() -> None:
    now = T0
    kw: dict[str, Any] = dict(
        generation=1, now=now, started=now, counts=COUNTS, documents=1, index="docs", space="DOCS", next_run=None
    )
    new = st.run_succeeded({}, last_prune=now - timedelta(minutes=5), source_items=42, **kw)
    assert new["lastPruneTime"] == st.iso(now - timedelta(minutes=5)) and new["sourceItems"] == 42
    # A site that stops counting drops the stale count, so the next run lists rather than trusting it.
    again = st.run_succeeded(new, last_prune=now, source_items=None, **kw)
    assert again["lastPruneTime"] == st.iso(now) and "sourceItems" not in again
