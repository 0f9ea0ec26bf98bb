"""Status computation: previous status + what happened -> new status. Pure functions on the API models, one place.

Conditions follow kstatus: `Ready` is always present; `Reconciling` and `Stalled` appear only while True.
A condition's lastTransitionTime changes only when its status does, so unchanged objects don't churn.
Every function returns a new model and leaves its input alone; only `patch` turns models into the wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from coco_operator.api.common import Condition, ConditionStatus
from coco_operator.api.connector import ConnectorStatus
from coco_operator.api.datasource import DatasourceStatus, RunRecord, SyncCounts, SyncProgress
from coco_operator.reasons import ConditionType, Reason
from coco_operator.secret_values import truncate
from coco_operator.times import format_duration, iso

log = logging.getLogger(__name__)

HISTORY_LENGTH = 5
SKIPPED_LIMIT = 20
ITEM_LENGTH = 300
# Condition.message's maxLength in the schema is 32768; every message is cut far below it
# (`secret_values.truncate`, 4,000 characters), so no message can make a status patch fail.

S = TypeVar("S", DatasourceStatus, ConnectorStatus)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Say:
    """What one condition says: its status, reason and message."""

    status: ConditionStatus
    reason: str
    message: str


# --- conditions ----------------------------------------------------------------------------------------------


def get_condition(status: DatasourceStatus | ConnectorStatus, type_: ConditionType) -> Condition | None:
    return next((c for c in status.conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition], type_: ConditionType, say: Say, now: datetime, generation: int | None
) -> list[Condition]:
    old = next((c for c in conditions if c.type == type_), None)
    new = Condition(
        type=type_,
        status=say.status,
        reason=say.reason,
        message=truncate(say.message),
        lastTransitionTime=old.lastTransitionTime if old and old.status == say.status else now,
        observedGeneration=generation,
    )
    out = [c for c in conditions if c.type != type_]
    out.append(new)
    # Ready first, then the rest by type, so the list order is stable for diffs.
    return sorted(out, key=lambda c: (c.type != ConditionType.READY, c.type))


def drop_condition(conditions: list[Condition], type_: ConditionType) -> list[Condition]:
    return [c for c in conditions if c.type != type_]


def _said(condition: Condition | None, default: Say) -> Say:
    return Say(condition.status, condition.reason, condition.message) if condition else default


def _with_conditions(
    status: S,
    generation: int | None,
    now: datetime,
    *,
    ready: Say,
    reconciling: Say | None = None,
    stalled: Say | None = None,
) -> S:
    conds = set_condition(list(status.conditions), ConditionType.READY, ready, now, generation)
    for type_, say in ((ConditionType.RECONCILING, reconciling), (ConditionType.STALLED, stalled)):
        conds = drop_condition(conds, type_) if say is None else set_condition(conds, type_, say, now, generation)
    new = status.model_copy(deep=True)
    new.conditions = conds
    if generation is not None:
        new.observedGeneration = generation
    return new


# --- a Datasource's runs -------------------------------------------------------------------------------------


def run_started(status: DatasourceStatus, *, generation: int | None, now: datetime, message: str) -> DatasourceStatus:
    # Keep Ready as it was while a run is going (a healthy Datasource stays Ready during its runs).
    ready = _said(get_condition(status, ConditionType.READY), Say("Unknown", Reason.PROGRESSING, message))
    new = _with_conditions(status, generation, now, ready=ready, reconciling=Say("True", Reason.PROGRESSING, message))
    new.lastSyncStartTime = now
    return new


@dataclass(frozen=True)
class Success:
    """What a successful run leaves in status besides conditions."""

    started: datetime
    counts: SyncCounts
    documents: int | None
    index: str
    space: str
    next_run: datetime | None
    incremental: bool = False
    watermark: datetime | None = None
    watermark_config: str | None = None
    last_prune: datetime | None = None
    source_items: int | None = None
    skipped_items: tuple[str, ...] = ()
    enrichment_warnings: tuple[str, ...] = ()


def run_succeeded(status: DatasourceStatus, *, generation: int | None, now: datetime, run: Success) -> DatasourceStatus:
    duration = (now - run.started).total_seconds()
    c = run.counts
    kind = "incremental" if run.incremental else "full"
    indexed = c.pages + c.blogposts + c.attachments + c.comments + c.treeItems
    message = (
        f"Synced space {run.space}: {indexed} indexed, {c.deleted} deleted ({kind} "
        f"sync in {format_duration(duration)}); {run.documents if run.documents is not None else '?'} documents in "
        f"index {run.index}"
    )
    new = _with_conditions(status, generation, now, ready=Say("True", Reason.SUCCEEDED, message))
    new.lastSyncStartTime = run.started
    new.lastSyncTime = new.lastSuccessfulSyncTime = now
    new.lastSyncDuration = format_duration(duration)
    new.lastSyncResult = "Succeeded"
    new.lastSync = c.model_copy()
    new.documents = run.documents
    new.index = run.index
    new.consecutiveFailures = 0
    new.nextSyncTime = run.next_run
    new.skippedItems = _bounded(run.skipped_items)
    new.enrichmentWarnings = _bounded(run.enrichment_warnings)
    if run.watermark is not None:
        new.watermark = run.watermark
        new.watermarkConfig = run.watermark_config
    new.lastPruneTime = run.last_prune
    new.sourceItems = run.source_items
    new.lastError = None
    new.progress = None
    return new


def _bounded(items: tuple[str, ...]) -> list[str] | None:
    return [truncate(item, ITEM_LENGTH) for item in items[:SKIPPED_LIMIT]] or None


@dataclass(frozen=True)
class Failure:
    started: datetime
    reason: str
    message: str
    retryable: bool
    next_run: datetime | None
    index: str


def run_failed(status: DatasourceStatus, *, generation: int | None, now: datetime, run: Failure) -> DatasourceStatus:
    retry = f" Retrying at {iso(run.next_run)}." if run.next_run else ""
    # As Flux does: a failure the operator retries by itself keeps Reconciling=True (ProgressingWithRetry), so
    # kstatus and `kubectl wait` see work in progress, not a settled object; one that needs a fix is Stalled.
    retrying = run.retryable and run.next_run is not None
    new = _with_conditions(
        status,
        generation,
        now,
        ready=Say("False", run.reason, run.message + retry),
        reconciling=Say("True", Reason.PROGRESSING_WITH_RETRY, f"{run.reason}; retrying at {iso(run.next_run)}")
        if retrying
        else None,
        stalled=None if run.retryable else Say("True", run.reason, run.message),
    )
    new.lastSyncStartTime = run.started
    new.lastSyncTime = now
    new.lastSyncDuration = format_duration((now - run.started).total_seconds())
    new.lastSyncResult = "Failed"
    new.lastError = truncate(f"{run.reason}: {run.message}")
    new.consecutiveFailures = (status.consecutiveFailures or 0) + 1
    new.nextSyncTime = run.next_run
    # The index stays the one the last successful run filled (a move is complete only once a run succeeded), so the
    # next run still knows where the documents were; a first run names its own.
    new.index = status.index or run.index
    new.progress = None
    return new


def paused(
    status: DatasourceStatus, *, generation: int | None, now: datetime, reason: str, message: str
) -> DatasourceStatus:
    """Suspended, disabled, or waiting on its Connector: no runs until the cause changes."""
    new = _with_conditions(status, generation, now, ready=Say("False", reason, message))
    new.nextSyncTime = None
    new.progress = None
    return new


def resumed(status: DatasourceStatus, *, generation: int | None, now: datetime) -> DatasourceStatus:
    """Paused -> resumed without a run due: Ready stops saying why it was paused."""
    ready = (
        Say("True", Reason.SUCCEEDED, "Resumed; the last sync succeeded")
        if status.lastSyncResult == "Succeeded"
        else Say("Unknown", Reason.RESUMED, "Resumed; waiting for the next sync")
    )
    new = status.model_copy(deep=True)
    new.conditions = set_condition(list(status.conditions), ConditionType.READY, ready, now, generation)
    return new


def scheduled(status: DatasourceStatus, next_run: datetime) -> DatasourceStatus:
    new = status.model_copy(deep=True)
    new.nextSyncTime = next_run
    return new


def queued(
    status: DatasourceStatus, *, generation: int | None, now: datetime, running: int, limit: int
) -> DatasourceStatus:
    """Due, but every run slot is taken: say so while waiting."""
    ready = _said(
        get_condition(status, ConditionType.READY), Say("Unknown", Reason.QUEUED, "waiting for a free run slot")
    )
    message = f"Waiting for a free run slot ({running} runs in progress, limit {limit})"
    return _with_conditions(status, generation, now, ready=ready, reconciling=Say("True", Reason.QUEUED, message))


def cancelled(status: DatasourceStatus) -> DatasourceStatus:
    """A run stopped because its spec changed or its Datasource went away: no longer reconciling that run."""
    new = status.model_copy(deep=True)
    new.conditions = drop_condition(list(status.conditions), ConditionType.RECONCILING)
    new.progress = None
    return new


def with_progress(status: DatasourceStatus, phase: str, items: int, now: datetime) -> DatasourceStatus:
    new = status.model_copy(deep=True)
    new.progress = SyncProgress(phase=phase, items=items, updated=now)
    return new


def with_history(status: DatasourceStatus, entry: RunRecord) -> DatasourceStatus:
    """Newest run first, at most HISTORY_LENGTH entries."""
    new = status.model_copy(deep=True)
    new.history = [entry, *(status.history or [])][:HISTORY_LENGTH]
    return new


def history_entry(
    *, started: datetime, finished: datetime, succeeded: bool, reason: str, counts: SyncCounts | None
) -> RunRecord:
    return RunRecord(
        startTime=started,
        duration=format_duration((finished - started).total_seconds()),
        result="Succeeded" if succeeded else "Failed",
        reason=reason,
        counts=counts,
    )


# --- a Connector ---------------------------------------------------------------------------------------------


def connector_status(
    status: ConnectorStatus,
    *,
    generation: int | None,
    processor: str,
    enabled: bool,
    known: bool,
    datasources: int,
    now: datetime,
) -> ConnectorStatus:
    stalled: Say | None = None
    if not known:
        ready = Say(
            "False",
            Reason.UNKNOWN_PROCESSOR,
            f"processor {processor!r} is not one this operator runs; use processor.name: confluence",
        )
        stalled = Say("True", ready.reason, ready.message)
    elif not enabled:
        ready = Say("False", Reason.DISABLED, "processor.enabled is false: Datasources using this connector are paused")
    else:
        ready = Say("True", Reason.READY, f"processor {processor} is enabled")
    new = _with_conditions(status, generation, now, ready=ready, stalled=stalled)
    new.datasources = datasources
    return new


# --- the wire format (the edge) ------------------------------------------------------------------------------


def dump(status: BaseModel) -> dict[str, Any]:
    """A status as the API server stores it: camelCase names, UTC seconds, no nulls."""
    return status.model_dump(mode="json", exclude_none=True, by_alias=True)


def parse(model: type[M], raw: Mapping[str, Any] | None, *, what: str) -> M:
    """A status read from the API (or a state file). One that does not fit the model starts over empty: the CRD
    schema makes that rare, and a run must not be blocked by it."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        log.warning("status of %s does not fit the model, starting from an empty one: %s", what, exc)
        return model()


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`, or None when nothing changed."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = merge_patch(before, value) or {}
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch or None


def patch(old: BaseModel, new: BaseModel) -> dict[str, Any] | None:
    """The merge patch from one status model to another, computed on what each looks like on the wire."""
    return merge_patch(dump(old), dump(new))
