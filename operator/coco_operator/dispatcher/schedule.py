"""Pure scheduling decisions: durations, retry backoff, jitter, when a Datasource is due.

Everything is derived from the status (last run time, failures) so the schedule survives a restart.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.settings import Settings

Pause = tuple[str, str]  # reason, message: why a Datasource does not run at all

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration (`30s`, `5m`, `1h30m`, `1.5h`) as admission validates it."""
    text = text.strip()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match:
            raise ValueError(f"invalid duration {text!r}: use Go syntax such as 30s, 5m or 1h30m")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError("empty duration")
    return timedelta(seconds=total)


def format_duration(seconds: float) -> str:
    """Go-like short form: 850ms, 12.3s, 4m5s, 1h2m3s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{secs}s"


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
            "Disabled",
            "spec.enabled is false: no syncs run; documents already indexed stay. Set spec.enabled: true to resume.",
        )
    if not spec.sync.enabled:
        return (
            "Suspended",
            "sync.enabled is false: scheduled syncs are suspended; documents already indexed stay. Set "
            "sync.enabled: true to resume.",
        )
    return None


def connector_pause(spec: DatasourceSpec, connector: dict[str, Any] | None) -> Pause | None:
    """The Connector is switched off (a missing one is a failed run instead: it needs a fix, not a wait)."""
    if connector is not None and not (connector.get("spec", {}).get("processor") or {}).get("enabled", True):
        return (
            "ConnectorDisabled",
            f"Connector {spec.connector.id} has processor.enabled: false; syncs resume when it is enabled again.",
        )
    return None
