"""The run's plan, as plain functions: full or incremental, whether to list every id, what to fetch and delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coco_operator.confluence.source import Changed
from coco_operator.documents import document_id
from coco_operator.sync.plan import Listed, Listing, Plan, large, plan, prune_reason, stale, unchanged, wanted

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


DS = "docs/wiki"
WATERMARK = NOW - timedelta(minutes=5)


def did(cid: str) -> str:
    return document_id(DS, cid)


def test_plan_full_without_a_watermark() -> None:
    full = plan(watermark=None, prior=RECENT, now=NOW, interval_s=3600, total_now=100, window=[])
    assert not full.incremental and full.prune_reason == "full sync" and full.lists_every_id


def test_plan_counts_what_the_window_created() -> None:
    created_now = Changed(version=1, created=NOW - timedelta(minutes=1), current=True)
    edited = Changed(version=3, created=NOW - timedelta(days=3), current=True)

    def planned(window: list[Changed]) -> Plan:
        return plan(watermark=WATERMARK, prior=RECENT, now=NOW, interval_s=3600, total_now=101, window=window)

    # One new item explains one more in scope; an edit does not.
    assert planned([created_now, edited]).prune_reason is None
    trusted = planned([edited])
    assert trusted.incremental and trusted.lists_every_id and "101 items where 100" in (trusted.prune_reason or "")


def test_wanted_is_what_changed_to_a_version_the_index_lacks() -> None:
    changed = {
        "1": Changed(version=2, created=None, current=True),  # edited
        "2": Changed(version=5, created=None, current=True),  # same version indexed
        "3": Changed(version=1, created=None, current=False),  # archived
        "10": Changed(version=1, created=None, current=True),  # new
    }
    indexed = {did("1"): 1, did("2"): 5, did("3"): 1, did("4"): 1}
    assert wanted(DS, changed=changed, indexed=indexed, current=None) == ["1", "10"]  # numeric order


def test_wanted_with_a_listing_adds_what_the_index_lacks_and_drops_what_is_gone() -> None:
    changed = {"1": Changed(version=2, created=None, current=True), "9": Changed(version=1, created=None, current=True)}
    indexed = {did("1"): 1, did("2"): 1}
    current = {"1", "2", "5"}  # 9 left the scope after the window saw it; 5 is missing from the index
    assert wanted(DS, changed=changed, indexed=indexed, current=current) == ["1", "5"]


def test_wanted_with_metadata_adds_what_changed_without_a_new_version() -> None:
    indexed = {did("1"): 1, did("2"): 1, did("3"): 4}
    fingerprints = {did("1"): "aaa", did("2"): "bbb", did("3"): None}  # 3 was indexed before fingerprints
    listed = {"1": Listed(1, "aaa"), "2": Listed(1, "new"), "3": Listed(4, "ccc"), "4": Listed(2, "ddd")}
    got = wanted(DS, changed={}, indexed=indexed, current=set(listed), listed=listed, fingerprints=fingerprints)
    assert got == ["2", "3", "4"]
    # A version the window missed is caught by the listing too.
    assert wanted(
        DS, changed={}, indexed=indexed, current={"1"}, listed={"1": Listed(2, "aaa")}, fingerprints=fingerprints
    ) == ["1"]


def test_wanted_leaves_comments_of_the_window_to_their_phase() -> None:
    changed = {
        "1": Changed(version=2, created=None, current=True),
        "7": Changed(version=1, created=None, current=True, type="comment"),
    }
    assert wanted(DS, changed=changed, indexed={}, current=None, types=["page"]) == ["1"]


def test_stale_with_and_without_a_complete_listing() -> None:
    changed = {
        "3": Changed(version=1, created=None, current=False),
        "4": Changed(version=1, created=None, current=True),
    }
    indexed = {did(c): 1 for c in ("1", "2", "3", "4")}
    # No complete listing: only what the window shows is no longer current.
    assert stale(DS, indexed=indexed, seen=None, changed=changed, dropped=set()) == {did("3")}
    # A complete listing: whatever the index has beyond it; plus what enrichment now leaves out.
    seen = {did("1"), did("4")}
    assert stale(DS, indexed=indexed, seen=seen, changed={}, dropped={did("1"), "never-indexed"}) == {
        did("1"),
        did("2"),
        did("3"),
    }


def test_unchanged_only_in_incremental_runs() -> None:
    indexed = {did("a"): 3}
    assert unchanged(True, indexed, did("a"), 3)
    assert not unchanged(True, indexed, did("a"), 4) and not unchanged(True, indexed, did("b"), 3)
    assert not unchanged(False, indexed, did("a"), 3)  # a full run re-indexes everything
    fingerprints = {did("a"): "f1"}
    assert unchanged(True, indexed, did("a"), 3, fingerprints=fingerprints, fingerprint="f1")
    assert not unchanged(True, indexed, did("a"), 3, fingerprints=fingerprints, fingerprint="f2")


def test_large_runs_use_text_workers() -> None:
    assert large(2, None) and large(2, 500) and not large(2, 499) and not large(0, 10_000)
