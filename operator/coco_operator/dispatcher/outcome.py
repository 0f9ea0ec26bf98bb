"""The status a finished run leaves, computed once for every run mode (in-process, Job, `sync --state`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from coco_operator import metrics
from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
from coco_operator.dispatcher.schedule import next_run as schedule_next_run
from coco_operator.errors import SyncError
from coco_operator.reasons import ConditionType, Reason
from coco_operator.secret_values import MAX_EVENT_CHARS, truncate
from coco_operator.settings import Settings
from coco_operator.sync import SyncResult, config_fingerprint


class Event(NamedTuple):
    type: str  # Normal or Warning
    reason: str
    message: str

    @classmethod
    def of(cls, type_: str, reason: str, message: str) -> Event:
        """An Event whose message fits what the API server and `kubectl describe` show."""
        return cls(type_, reason, truncate(message, MAX_EVENT_CHARS))


def finished_status(
    status: DatasourceStatus,
    *,
    key: str,
    spec: DatasourceSpec,
    result: SyncResult,
    generation: int | None,
    index: str,
    request_token: str | None,
    settings: Settings,
) -> tuple[DatasourceStatus, Event]:
    """New status and the Event to post after a run."""
    now = result.finished or datetime.now(UTC)
    failures = 0 if result.succeeded else (status.consecutiveFailures or 0) + 1
    next_run = schedule_next_run(key, spec, settings, last_finished=now, failures=failures)
    if result.succeeded:
        new = st.run_succeeded(
            status,
            generation=generation,
            now=now,
            run=st.Success(
                started=result.started,
                counts=result.counts,
                documents=result.documents,
                index=index,
                space=", ".join(spec.connector.config.all_spaces()),
                next_run=next_run,
                incremental=result.incremental,
                watermark=result.watermark,
                watermark_config=config_fingerprint(spec, index),
                last_prune=result.listing.last_prune,
                source_items=result.listing.total,
                skipped_items=tuple(result.skipped_items),
                enrichment_warnings=tuple(result.enrichment_warnings),
            ),
        )
        ready = st.get_condition(new, ConditionType.READY)
        event = Event.of("Normal", Reason.SYNC_SUCCEEDED, ready.message if ready else "")
    else:
        err = result.error or SyncError("unknown failure")
        failure = st.Failure(
            started=result.started,
            reason=err.reason,
            message=err.message,
            retryable=err.retryable,
            next_run=next_run,
            index=index,
        )
        new = st.run_failed(status, generation=generation, now=now, run=failure)
        event = Event.of("Warning", err.reason, err.message)
    if request_token:
        new.lastHandledSyncRequest = request_token
    entry = st.history_entry(
        started=result.started,
        finished=now,
        succeeded=result.succeeded,
        reason=Reason.SUCCEEDED if result.succeeded else event.reason,
        counts=result.counts if result.succeeded else None,
    )
    return st.with_history(new, entry), event


def reported_event(status: DatasourceStatus) -> Event:
    """The Event for a run whose outcome another process (a sync Job) wrote into status."""
    ready = st.get_condition(status, ConditionType.READY)
    if ready is not None and ready.status == "True":
        return Event.of("Normal", Reason.SYNC_SUCCEEDED, ready.message)
    return Event.of("Warning", ready.reason if ready else Reason.SYNC_FAILED, ready.message if ready else "")


def record_metrics(key: tuple[str, str], result: SyncResult, reason: str) -> None:
    ns, name = key
    outcome = "Succeeded" if result.succeeded else "Failed"
    metrics.RUNS.labels(ns, name, outcome, Reason.SUCCEEDED if result.succeeded else reason).inc()
    metrics.RUN_DURATION.labels(ns, name).observe(result.duration_s)
    if result.succeeded:
        for doc_type in ("pages", "blogposts", "attachments", "comments", "treeItems"):
            metrics.DOCUMENTS_INDEXED.labels(ns, name, doc_type).inc(getattr(result.counts, doc_type))
        metrics.DOCUMENTS_DELETED.labels(ns, name).inc(result.counts.deleted)
