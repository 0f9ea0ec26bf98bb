from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.dispatcher.schedule import (
    connector_pause,
    jitter_fraction,
    next_run_at,
    retry_delay,
    spec_pause,
)
from coco_operator.times import format_duration, parse_duration

T0 = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("1.5h", 5400), ("250ms", 0.25), ("2m3s", 123)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "1d", "-5m", "5m!"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(0.42) == "420ms"
    assert format_duration(12.34) == "12.3s"
    assert format_duration(245) == "4m5s"
    assert format_duration(3723) == "1h2m3s"


def test_retry_delay_is_exponential_and_capped() -> None:
    delays = [retry_delay(n, 10, 600).total_seconds() for n in range(0, 9)]
    assert delays == [0, 10, 20, 40, 80, 160, 320, 600, 600]


def test_first_run_is_now() -> None:
    kw = dict(interval=timedelta(minutes=5), retry_base_s=10, retry_cap_s=600, jitter_ratio=0.05)
    assert next_run_at(key="ns/a", last_finished=None, failures=0, **kw) is None  # type: ignore[arg-type]


def test_success_waits_interval_plus_bounded_stable_jitter() -> None:
    kw = dict(interval=timedelta(minutes=5), retry_base_s=10, retry_cap_s=600, jitter_ratio=0.05)
    due = next_run_at(key="ns/a", last_finished=T0, failures=0, **kw)  # type: ignore[arg-type]
    assert due is not None
    assert T0 + timedelta(minutes=5) <= due <= T0 + timedelta(minutes=5, seconds=15)
    # Derived from status only: the same inputs give the same time (a restart keeps the schedule).
    assert due == next_run_at(key="ns/a", last_finished=T0, failures=0, **kw)  # type: ignore[arg-type]
    # Different Datasources spread out.
    others = {next_run_at(key=f"ns/{i}", last_finished=T0, failures=0, **kw) for i in range(20)}  # type: ignore[arg-type]
    assert len(others) > 10


def test_failure_backs_off_but_never_beyond_interval() -> None:
    kw = dict(interval=timedelta(minutes=5), retry_base_s=10, retry_cap_s=600, jitter_ratio=0.0)
    after = [
        (next_run_at(key="k", last_finished=T0, failures=n, **kw) - T0).total_seconds()  # type: ignore[arg-type,operator]
        for n in (1, 2, 3, 6, 10)
    ]
    assert after == [10, 20, 40, 300, 300]


def test_jitter_fraction_range() -> None:
    values = [jitter_fraction(str(i), "x") for i in range(200)]
    assert all(0 <= v < 1 for v in values)
    assert 0.3 < sum(values) / len(values) < 0.7


def _spec(**overrides: object) -> DatasourceSpec:
    body: dict[str, object] = {
        "name": "w",
        "connector": {
            "id": "confluence",
            "config": {"endpoint": "https://x.example", "tokenSecretRef": {"name": "t"}, "space": "D"},
        },
    }
    body.update(overrides)
    return DatasourceSpec.model_validate(body)


def test_pauses() -> None:
    assert spec_pause(_spec()) is None
    assert spec_pause(_spec(enabled=False))[0] == "Disabled"  # type: ignore[index]
    assert spec_pause(_spec(sync={"enabled": False}))[0] == "Suspended"  # type: ignore[index]
    off = {"spec": {"processor": {"name": "confluence", "enabled": False}}}
    on = {"spec": {"processor": {"name": "confluence", "enabled": True}}}
    assert connector_pause(_spec(), off)[0] == "ConnectorDisabled"  # type: ignore[index]
    assert connector_pause(_spec(), on) is None and connector_pause(_spec(), None) is None
