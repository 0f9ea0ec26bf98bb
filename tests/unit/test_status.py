from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coco_operator import status as st
from coco_operator.api.connector import ConnectorStatus
from coco_operator.api.datasource import DatasourceStatus, SyncCounts
from coco_operator.reasons import ConditionType, Reason

T0 = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
COUNTS = SyncCounts(pages=10, blogposts=2, attachments=1, deleted=3, skipped=0)
EMPTY = DatasourceStatus()
READY, RECONCILING, STALLED = ConditionType.READY, ConditionType.RECONCILING, ConditionType.STALLED


def _ok(
    status: DatasourceStatus, now: datetime, *, last_prune: datetime | None = None, source_items: int | None = None
) -> DatasourceStatus:
    run = st.Success(
        started=now - timedelta(seconds=4),
        counts=COUNTS,
        documents=13,
        index="docs",
        space="DOCS",
        next_run=now + timedelta(minutes=5),
        last_prune=last_prune,
        source_items=source_items,
    )
    return st.run_succeeded(status, generation=2, now=now, run=run)


def _failed(
    status: DatasourceStatus, now: datetime, *, retryable: bool, reason: str = "AuthenticationFailed"
) -> DatasourceStatus:
    run = st.Failure(
        started=now - timedelta(minutes=1),
        reason=reason,
        message="bad token" if not retryable else "down",
        retryable=retryable,
        next_run=None if not retryable else now + timedelta(seconds=10),
        index="docs",
    )
    return st.run_failed(status, generation=2, now=now, run=run)


def test_success_sets_ready_and_counts() -> None:
    new = _ok(EMPTY, T0)
    ready = st.get_condition(new, READY)
    assert ready and ready.status == "True" and ready.reason == Reason.SUCCEEDED
    assert "13 indexed" in ready.message and "13 documents" in ready.message
    assert new.observedGeneration == 2
    assert new.lastSync == COUNTS and new.documents == 13
    assert new.lastSyncDuration == "4.0s"
    assert st.dump(new)["nextSyncTime"] == "2026-11-27T07:05:00Z"
    assert st.get_condition(new, RECONCILING) is None and st.get_condition(new, STALLED) is None


def test_transition_time_only_changes_with_status() -> None:
    first = _ok(EMPTY, T0)
    second = _ok(first, T0 + timedelta(minutes=5))
    assert st.dump(second)["conditions"][0]["lastTransitionTime"] == "2026-11-27T07:00:00Z"
    failed = _failed(second, T0 + timedelta(minutes=10), retryable=False)
    ready = st.get_condition(failed, READY)
    assert ready and ready.status == "False" and ready.lastTransitionTime == T0 + timedelta(minutes=10)
    stalled = st.get_condition(failed, STALLED)
    assert stalled and stalled.reason == "AuthenticationFailed"
    assert failed.consecutiveFailures == 1
    assert failed.lastError == "AuthenticationFailed: bad token"
    # Counts of the last good run are kept; the document count is still true.
    assert failed.documents == 13


def test_retryable_failure_is_not_stalled_and_success_clears_error() -> None:
    failed = _failed(EMPTY, T0, retryable=True, reason="SearchBackendUnavailable")
    assert st.get_condition(failed, STALLED) is None
    ready = st.get_condition(failed, READY)
    assert ready and "Retrying at 2026-11-27T07:00:10Z" in ready.message
    retry = st.get_condition(failed, RECONCILING)
    assert retry and retry.reason == Reason.PROGRESSING_WITH_RETRY and "SearchBackendUnavailable" in retry.message
    ok = _ok(failed, T0 + timedelta(minutes=1))
    assert ok.lastError is None and ok.consecutiveFailures == 0
    assert "lastError" not in st.dump(ok)


def test_running_keeps_ready_and_adds_reconciling() -> None:
    ok = _ok(EMPTY, T0)
    running = st.run_started(ok, generation=3, now=T0 + timedelta(minutes=5), message="Syncing space DOCS")
    assert (ready := st.get_condition(running, READY)) and ready.status == "True"
    rec = st.get_condition(running, RECONCILING)
    assert rec and rec.status == "True" and rec.observedGeneration == 3
    fresh = st.run_started(EMPTY, generation=1, now=T0, message="Syncing")
    assert (ready := st.get_condition(fresh, READY)) and ready.status == "Unknown"
    assert ok.conditions != running.conditions  # the input is left alone


def test_merge_patch_no_churn_and_deletions() -> None:
    ok = _ok(EMPTY, T0)
    assert st.patch(ok, ok.model_copy(deep=True)) is None
    paused = st.paused(ok, generation=2, now=T0, reason=Reason.SUSPENDED, message="suspended")
    patch = st.patch(ok, paused)
    assert patch is not None and patch["nextSyncTime"] is None and "conditions" in patch
    assert "documents" not in patch


def test_merge_patch_of_nested_objects_deletes_what_went() -> None:
    old = {"progress": {"phase": "Indexing", "items": 3, "updated": "x"}, "lastSync": {"pages": 1}}
    new = {"progress": {"phase": "Pruning", "items": 3}, "lastSync": {"pages": 1}}
    assert st.merge_patch(old, new) == {"progress": {"phase": "Pruning", "updated": None}}
    assert st.merge_patch(old, {}) == {"progress": None, "lastSync": None}


def test_wire_form_has_whole_seconds_in_utc() -> None:
    now = datetime(2026, 11, 27, 8, 0, 1, 987654, tzinfo=UTC)
    status = st.with_progress(EMPTY, "Indexing", 5, now)
    assert st.dump(status)["progress"] == {"phase": "Indexing", "items": 5, "updated": "2026-11-27T08:00:01Z"}


def test_parse_tolerates_what_does_not_fit() -> None:
    assert st.parse(DatasourceStatus, {"documents": "many"}, what="test") == DatasourceStatus()
    parsed = st.parse(DatasourceStatus, {"watermark": "2026-11-27T07:00:00Z"}, what="test")
    assert parsed.watermark == T0


def test_connector_status() -> None:
    def status(
        old: ConnectorStatus,
        *,
        generation: int = 1,
        enabled: bool = True,
        known: bool = True,
        processor: str = "confluence",
        datasources: int = 3,
    ) -> ConnectorStatus:
        return st.connector_status(
            old,
            generation=generation,
            processor=processor,
            enabled=enabled,
            known=known,
            datasources=datasources,
            now=T0,
        )

    ready = status(ConnectorStatus())
    assert (cond := st.get_condition(ready, READY)) and cond.status == "True" and ready.datasources == 3
    off = status(ready, generation=2, enabled=False)
    assert (cond := st.get_condition(off, READY)) and cond.reason == Reason.DISABLED
    unknown = status(ConnectorStatus(), processor="jira", known=False, datasources=0)
    assert (cond := st.get_condition(unknown, STALLED)) and cond.reason == Reason.UNKNOWN_PROCESSOR


def test_listing_facts_kept_for_the_next_run() -> None:
    new = _ok(EMPTY, T0, last_prune=T0 - timedelta(minutes=5), source_items=42)
    assert new.lastPruneTime == T0 - timedelta(minutes=5) and new.sourceItems == 42
    # A site that stops counting drops the stale count, so the next run lists rather than trusting it.
    again = _ok(new, T0, last_prune=T0, source_items=None)
    assert again.lastPruneTime == T0 and again.sourceItems is None and "sourceItems" not in st.dump(again)


def test_resume_after_a_pause() -> None:
    paused = st.paused(_ok(EMPTY, T0), generation=2, now=T0, reason=Reason.SUSPENDED, message="x")
    resumed = st.resumed(paused, generation=2, now=T0 + timedelta(minutes=1))
    assert (ready := st.get_condition(resumed, READY)) and ready.reason == Reason.SUCCEEDED
    never_ran = st.resumed(
        st.paused(EMPTY, generation=1, now=T0, reason=Reason.DISABLED, message="x"), generation=1, now=T0
    )
    assert (ready := st.get_condition(never_ran, READY)) and ready.status == "Unknown" and ready.reason == "Resumed"


def test_history_newest_first_and_bounded() -> None:
    status = EMPTY
    for i in range(st.HISTORY_LENGTH + 2):
        entry = st.history_entry(
            started=T0 + timedelta(minutes=i), finished=T0 + timedelta(minutes=i, seconds=3), succeeded=True,
            reason=Reason.SUCCEEDED, counts=COUNTS,
        )  # fmt: skip
        status = st.with_history(status, entry)
    assert status.history is not None and len(status.history) == st.HISTORY_LENGTH
    assert status.history[0].startTime == T0 + timedelta(minutes=st.HISTORY_LENGTH + 1)
    assert st.dump(status)["history"][0]["duration"] == "3.0s"


def test_no_message_can_outgrow_what_the_api_server_accepts() -> None:
    """A server (or a bug) can make an error message of any size: status keeps it far below the API server's
    32 KiB per condition message, and says how much was cut; Events stay under 1,000 characters."""
    from coco_operator.api.datasource import DatasourceSpec
    from coco_operator.dispatcher.outcome import finished_status
    from coco_operator.errors import ConfluenceUnavailableError
    from coco_operator.settings import Settings
    from coco_operator.sync import SyncResult
    from tests.unit.fake_kube import datasource_body

    huge = "Confluence said: " + "é" * 100_000
    spec = DatasourceSpec.model_validate(datasource_body()["spec"])
    started = datetime(2026, 1, 1, tzinfo=UTC)
    failed = SyncResult.failed(started, ConfluenceUnavailableError(huge))
    new, event = finished_status(
        DatasourceStatus(),
        key="docs/wiki",
        spec=spec,
        result=failed,
        generation=1,
        index="docs",
        request_token=None,
        settings=Settings(),
    )
    assert new.lastError and len(new.lastError) <= 4000 and "more characters)" in new.lastError
    for cond in new.conditions:
        assert len(cond.message) <= 4000
    assert len(event.message) <= 1000 and event.message.endswith("more characters)")
    items = st._bounded(("x" * 5000,) * 30)
    assert items and len(items) == 20 and all(len(i) <= 300 for i in items)
