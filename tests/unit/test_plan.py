"""When an incremental run lists every id to find deletions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coco_operator.sync.plan import Listing, prune_reason

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RECENT = Listing(last_prune=NOW - timedelta(minutes=10), total=100)


def reason(
    prior: Listing = RECENT,
    *,
    incremental: bool = True,
    interval_s: int = 3600,
    total: int | None = 100,
    created: int = 0,
) -> str | None:
    return prune_reason(
        incremental=incremental, prior=prior, now=NOW, interval_s=interval_s, total_now=total, created=created
    )


def test_a_count_that_adds_up_needs_no_listing() -> None:
    assert reason() is None
    assert reason(total=103, created=3) is None


@pytest.mark.parametrize(
    ("total", "created", "expected"),
    [
        (99, 0, "holds 99 items where 100 were expected (100 at the last run, 0 created since)"),
        (100, 1, "holds 100 items where 101 were expected"),  # one created, one gone
        (101, 0, "holds 101 items where 100 were expected"),  # restored from trash or moved in
    ],
)
def test_a_count_that_does_not_add_up_lists_every_id(total: int, created: int, expected: str) -> None:
    assert expected in (reason(total=total, created=created) or "")


def test_full_runs_and_missing_facts_list_every_id() -> None:
    assert reason(incremental=False) == "full sync"
    assert reason(Listing(last_prune=None, total=100)) == "no complete listing recorded yet"
    assert reason(Listing(last_prune=RECENT.last_prune, total=None)) == (
        "the site did not say how many items the scope holds"
    )
    assert reason(total=None) == "the site did not say how many items the scope holds"


def test_the_prune_interval_bounds_how_long_an_unseen_deletion_lasts() -> None:
    due = Listing(last_prune=NOW - timedelta(hours=1), total=100)
    assert reason(due) == "last complete listing 1h0m0s ago (prune interval 1h0m0s)"
    assert reason(due, interval_s=7200) is None
    assert reason(interval_s=0) == "every run lists all ids (prune interval 0)"
