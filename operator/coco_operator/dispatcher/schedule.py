"""Pure scheduling decisions: durations, retry backoff, jitter, when a Datasource is due.

Everything is derived from the status (last run time, failures) so the schedule survives a restart.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from coco_operator.api.connector import KNOWN_PROCESSORS
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.errors import ConnectorError
from coco_operator.reasons import Reason
from coco_operator.settings import Settings
from coco_operator.times import parse_duration

Pause = tuple[Reason, str]  # reason, message: why a Datasource does not run at all


def jitter_fraction(key: str, salt: str) -> float:
    """A stable pseudo-random value in [0, 1) for a Datasource and a run, so a restart recomputes the same."""
    digest = hashlib.sha256(f"{key}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def retry_delay(failures: int, base_s: float, cap_s: float) -> timedelta:
    """Exponential backoff after `failures` consecutive failed runs: base, 2*base, 4*base, ... capped."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(seconds=min(base_s * 2 ** min(failures - 1, 30), cap_s))


def next_run_at(
    *,
    key: str,
    last_finished: datetime | None,
    failures: int,
    interval: timedelta,
    retry_base_s: float,
    retry_cap_s: float,
    jitter_ratio: float,
) -> datetime | None:
    """When the next run is due; None means now (never ran).

    After a success: the interval from the end of the last run, stretched by up to `jitter_ratio`.
    After a failure: exponential backoff from the end of the failed run, never longer than the interval
    would be (a failing Datasource should not wait longer than a healthy one).
    """
    if last_finished is None:
        return None
    if failures > 0:
        delay = min(retry_delay(failures, retry_base_s, retry_cap_s), max(interval, timedelta(seconds=retry_base_s)))
        return last_finished + delay
    spread = interval.total_seconds() * jitter_ratio * jitter_fraction(key, last_finished.isoformat())
    return last_finished + interval + timedelta(seconds=spread)


def next_run(
    key: str, spec: DatasourceSpec, settings: Settings, *, last_finished: datetime | None, failures: int
) -> datetime | None:
    """next_run_at with the Datasource's interval and the operator's retry and jitter settings."""
    return next_run_at(
        key=key,
        last_finished=last_finished,
        failures=failures,
        interval=parse_duration(spec.sync.interval),
        retry_base_s=settings.retry_delay_seconds,
        retry_cap_s=settings.retry_max_delay_seconds,
        jitter_ratio=settings.jitter_ratio,
    )


def spec_pause(spec: DatasourceSpec) -> Pause | None:
    """The spec itself switches syncing off."""
    if not spec.enabled:
        return (
            Reason.DISABLED,
            "spec.enabled is false: no syncs run; documents already indexed stay. Set spec.enabled: true to resume.",
        )
    if not spec.sync.enabled:
        return (
            Reason.SUSPENDED,
            "sync.enabled is false: scheduled syncs are suspended; documents already indexed stay. Set "
            "sync.enabled: true to resume.",
        )
    return None


def connector_pause(spec: DatasourceSpec, connector: dict[str, Any] | None) -> Pause | None:
    """The Connector is switched off (a missing one is a failed run instead: it needs a fix, not a wait)."""
    if connector is not None and not (connector.get("spec", {}).get("processor") or {}).get("enabled", True):
        return (
            Reason.CONNECTOR_DISABLED,
            f"Connector {spec.connector.id} has processor.enabled: false; syncs resume when it is enabled again.",
        )
    return None


def connector_problem(spec: DatasourceSpec, connector: dict[str, Any] | None, owner: str) -> ConnectorError | None:
    """Why the Datasource's Connector cannot run it (missing, or a processor this operator does not run)."""
    if connector is None:
        return ConnectorError(
            f"Connector {spec.connector.id!r} does not exist; create it (the chart ships 'confluence') "
            f"or fix spec.connector.id of {owner}"
        )
    processor = (connector.get("spec", {}).get("processor") or {}).get("name")
    if processor not in KNOWN_PROCESSORS:
        return ConnectorError(
            f"Connector {spec.connector.id!r} uses processor {processor!r}, which this operator does not "
            f"run (known: {', '.join(sorted(KNOWN_PROCESSORS))})",
            reason=Reason.CONNECTOR_NOT_READY,
        )
    return None


def run_timeout(spec: DatasourceSpec, settings: Settings) -> float:
    """Seconds a run may take: the Datasource's sync.timeout, never more than the operator's limit (its default)."""
    limit = float(settings.max_running_timeout_in_seconds)
    if spec.sync.timeout:
        try:
            return min(parse_duration(spec.sync.timeout).total_seconds(), limit)
        except ValueError:  # too long to hold (a spec stored before admission capped it)
            return limit
    return limit
