"""Status computation: previous status + what happened -> new status. Pure functions, one place.

Conditions follow kstatus: `Ready` is always present; `Reconciling` and `Stalled` appear only while True.
A condition's lastTransitionTime changes only when its status does, so unchanged objects don't churn.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coco_operator.dispatcher.schedule import format_duration

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
RETRYING = "ProgressingWithRetry"
HISTORY_LENGTH = 5
SKIPPED_LIMIT = 20

Status = dict[str, Any]


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def get_condition(status: Status, type_: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    old = next((c for c in conditions if c.get("type") == type_), None)
    transition = old["lastTransitionTime"] if old and old.get("status") == status else iso(now)
    new = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        new["observedGeneration"] = generation
    out = [c for c in conditions if c.get("type") != type_]
    out.append(new)
    # Ready first, then the rest by type, so the list order is stable for diffs.
    return sorted(out, key=lambda c: (c["type"] != READY, c["type"]))


def drop_condition(conditions: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [c for c in conditions if c.get("type") != type_]


def _with_conditions(
    status: Status,
    generation: int | None,
    now: datetime,
    *,
    ready: tuple[str, str, str],
    reconciling: tuple[str, str] | None = None,
    stalled: tuple[str, str] | None = None,
) -> Status:
    conds = list(status.get("conditions") or [])
    conds = set_condition(conds, READY, *ready, now, generation)
    if reconciling:
        conds = set_condition(conds, RECONCILING, "True", *reconciling, now, generation)
    else:
        conds = drop_condition(conds, RECONCILING)
    if stalled:
        conds = set_condition(conds, STALLED, "True", *stalled, now, generation)
    else:
        conds = drop_condition(conds, STALLED)
    new = dict(status)
    new["conditions"] = conds
    if generation is not None:
        new["observedGeneration"] = generation
    return new


def run_started(status: Status, *, generation: int | None, now: datetime, message: str) -> Status:
    ready = get_condition(status, READY)
    # Keep Ready as it was while a run is going (a healthy Datasource stays Ready during its runs).
    if ready is None:
        ready_tuple = ("Unknown", "Progressing", message)
    else:
        ready_tuple = (ready["status"], ready["reason"], ready.get("message", ""))
    new = _with_conditions(
        status, generation, now, ready=ready_tuple, reconciling=("Progressing", message), stalled=None
    )
    new["lastSyncStartTime"] = iso(now)
    return new


def run_succeeded(
    status: Status,
    *,
    generation: int | None,
    now: datetime,
    started: datetime,
    counts: dict[str, int],
    documents: int | None,
    index: str,
    space: str,
    next_run: datetime | None,
    incremental: bool = False,
    watermark: datetime | None = None,
    watermark_config: str | None = None,
    last_prune: datetime | None = None,
    source_items: int | None = None,
    skipped_items: list[str] | None = None,
    enrichment_warnings: list[str] | None = None,
) -> Status:
    duration = (now - started).total_seconds()
    indexed = counts.get("pages", 0) + counts.get("blogposts", 0) + counts.get("attachments", 0)
    kind = "incremental" if incremental else "full"
    message = (
        f"Synced space {space}: {indexed} indexed, {counts.get('deleted', 0)} deleted ({kind} sync in "
        f"{format_duration(duration)}); {documents if documents is not None else '?'} documents in index {index}"
    )
    new = _with_conditions(status, generation, now, ready=("True", "Succeeded", message))
    new.update(
        {
            "lastSyncStartTime": iso(started),
            "lastSyncTime": iso(now),
            "lastSuccessfulSyncTime": iso(now),
            "lastSyncDuration": format_duration(duration),
            "lastSyncResult": "Succeeded",
            "lastSync": counts,
            "documents": documents,
            "index": index,
            "consecutiveFailures": 0,
            "nextSyncTime": iso(next_run),
        }
    )
    if skipped_items:
        new["skippedItems"] = [item[:300] for item in skipped_items[:SKIPPED_LIMIT]]
    else:
        new.pop("skippedItems", None)
    if enrichment_warnings:
        new["enrichmentWarnings"] = [w[:300] for w in enrichment_warnings[:SKIPPED_LIMIT]]
    else:
        new.pop("enrichmentWarnings", None)
    if watermark is not None:
        new["watermark"] = iso(watermark)
        new["watermarkConfig"] = watermark_config
    for name, value in (("lastPruneTime", iso(last_prune)), ("sourceItems", source_items)):
        if value is None:
            new.pop(name, None)
        else:
            new[name] = value
    new.pop("lastError", None)
    new.pop("progress", None)
    return new


def run_failed(
    status: Status,
    *,
    generation: int | None,
    now: datetime,
    started: datetime,
    reason: str,
    message: str,
    retryable: bool,
    next_run: datetime | None,
    index: str,
) -> Status:
    failures = int(status.get("consecutiveFailures") or 0) + 1
    retry = f" Retrying at {iso(next_run)}." if next_run else ""
    # As Flux does: a failure the operator retries by itself keeps Reconciling=True (ProgressingWithRetry), so
    # kstatus and `kubectl wait` see work in progress, not a settled object; one that needs a fix is Stalled.
    new = _with_conditions(
        status,
        generation,
        now,
        ready=("False", reason, message + retry),
        reconciling=(RETRYING, f"{reason}; retrying at {iso(next_run)}") if retryable and next_run else None,
        stalled=None if retryable else (reason, message),
    )
    new.update(
        {
            "lastSyncStartTime": iso(started),
            "lastSyncTime": iso(now),
            "lastSyncDuration": format_duration((now - started).total_seconds()),
            "lastSyncResult": "Failed",
            "lastError": f"{reason}: {message}",
            "consecutiveFailures": failures,
            "nextSyncTime": iso(next_run),
            "index": index,
        }
    )
    new.pop("progress", None)
    return new


def paused(status: Status, *, generation: int | None, now: datetime, reason: str, message: str) -> Status:
    """Suspended, disabled, or waiting on its Connector: no runs until the cause changes."""
    new = _with_conditions(status, generation, now, ready=("False", reason, message))
    new.pop("nextSyncTime", None)
    new.pop("progress", None)
    return new


def merge_patch(old: Status, new: Status) -> Status | None:
    """The JSON merge patch that turns `old` into `new`, or None when nothing changed."""
    if old == new:
        return None
    patch: Status = {k: v for k, v in new.items() if old.get(k) != v}
    for key in old:
        if key not in new:
            patch[key] = None
    return patch or None


def connector_status(
    status: Status,
    *,
    generation: int | None,
    processor: str,
    enabled: bool,
    known: bool,
    datasources: int,
    now: datetime,
) -> Status:
    if not known:
        ready = (
            "False",
            "UnknownProcessor",
            f"processor {processor!r} is not one this operator runs; use processor.name: confluence",
        )
        stalled: tuple[str, str] | None = (ready[1], ready[2])
    elif not enabled:
        ready = ("False", "Disabled", "processor.enabled is false: Datasources using this connector are paused")
        stalled = None
    else:
        ready = ("True", "Ready", f"processor {processor} is enabled")
        stalled = None
    new = _with_conditions(status, generation, now, ready=ready, stalled=stalled)
    new["datasources"] = datasources
    return new


def with_history(status: Status, entry: dict[str, Any]) -> Status:
    """Newest run first, at most HISTORY_LENGTH entries."""
    new = dict(status)
    new["history"] = [entry, *(status.get("history") or [])][:HISTORY_LENGTH]
    return new


def history_entry(
    *, started: datetime, finished: datetime, result: str, reason: str, counts: dict[str, int] | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "startTime": iso(started),
        "duration": format_duration((finished - started).total_seconds()),
        "result": result,
        "reason": reason,
    }
    if counts is not None:
        entry["counts"] = counts
    return entry


def with_progress(status: Status, phase: str, items: int, now: datetime) -> Status:
    new = dict(status)
    new["progress"] = {"phase": phase, "items": items, "updated": iso(now)}
    return new


def queued(status: Status, *, generation: int | None, now: datetime, running: int, limit: int) -> Status:
    """Due, but every run slot is taken: say so while waiting."""
    ready = get_condition(status, READY)
    ready_tuple = (
        (ready["status"], ready["reason"], ready.get("message", ""))
        if ready
        else ("Unknown", "Queued", "waiting for a free run slot")
    )
    message = f"Waiting for a free run slot ({running} runs in progress, limit {limit})"
    new = _with_conditions(status, generation, now, ready=ready_tuple, reconciling=("Queued", message))
    return new
