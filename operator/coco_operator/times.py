"""Time helpers every layer uses: Go durations, short duration text, and timestamps as status writes them.

A leaf module (standard library only), so that the API models, the sync core, status and scheduling can share it
without importing one another.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
    try:
        return timedelta(seconds=total)
    except OverflowError:  # e.g. 99999999999999h: beyond what any timer can hold
        raise ValueError(f"duration {text[:40]!r} is too long") from None


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


def to_second(dt: datetime) -> datetime:
    """UTC, whole seconds: what status keeps (Kubernetes timestamps have second precision)."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with whole seconds, e.g. 2026-11-27T07:00:00Z."""
    if dt is None:
        return None
    return to_second(dt).isoformat().replace("+00:00", "Z")


def parse_time(value: object) -> datetime | None:
    """A timestamp from status or a Confluence answer (RFC 3339, `Z` allowed); naive times are taken as UTC."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
