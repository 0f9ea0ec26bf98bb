"""The status a finished run leaves, computed once for both run modes (in-process and Job)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.dispatcher.schedule import next_run as schedule_next_run
from coco_operator.errors import SyncError
from coco_operator.settings import Settings
from coco_operator.sync import SyncResult, config_fingerprint

Event = tuple[str, str, str]  # type, reason, message


def finished_status(
    status: dict[str, Any],
    *,
    key: str,
    spec: DatasourceSpec,
    result: SyncResult,
    generation: int | None,
    index: str,
    request_token: str | None,
    settings: Settings,
) -> tuple[dict[str, Any], Event]:
    """New status and the Event to post after a run."""
    now = result.finished or datetime.now(UTC)
    failures = 0 if result.succeeded else int(status.get("consecutiveFailures") or 0) + 1
    next_run = schedule_next_run(key, spec, settings, last_finished=now, failures=failures)
    event: Event
    if result.succeeded:
        new = st.run_succeeded(
            status,
            generation=generation,
            now=now,
            started=result.started,
            counts=result.counts.model_dump(),
            documents=result.documents,
            index=index,
            space=", ".join(spec.connector.config.all_spaces()),
            next_run=next_run,
            incremental=result.incremental,
            watermark=result.watermark,
            watermark_config=config_fingerprint(spec, index),
            last_prune=result.listing.last_prune,
            source_items=result.listing.total,
            skipped_items=result.skipped_items,
            enrichment_warnings=result.enrichment_warnings,
        )
        event = ("Normal", "SyncSucceeded", str(st.get_condition(new, st.READY)["message"]))  # type: ignore[index]
    else:
        err = result.error or SyncError("unknown failure")
        new = st.run_failed(
            status,
            generation=generation,
            now=now,
            started=result.started,
            reason=err.reason,
            message=err.message,
            retryable=err.retryable,
            next_run=next_run,
            index=index,
        )
        event = ("Warning", err.reason, err.message)
    if request_token:
        new["lastHandledSyncRequest"] = request_token
    new = st.with_history(
        new,
        st.history_entry(
            started=result.started,
            finished=now,
            result="Succeeded" if result.succeeded else "Failed",
            reason="Succeeded" if result.succeeded else event[1],
            counts=result.counts.model_dump() if result.succeeded else None,
        ),
    )
    return new, event
