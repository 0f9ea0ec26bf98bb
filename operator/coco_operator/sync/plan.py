"""When an incremental run must list every id to find deletions. Pure decisions, no I/O.

A CQL `lastmodified` window finds new and edited content but not content that went away (trashed, purged, moved
to another space, restricted). Finding that takes a listing of every id in scope: cheap per item, but one request
per 1,000 items on every run. Instead each run asks the site how many items the scope holds (one request) and
compares it with the last run's count plus what was created since: any difference means something left (or came
back) and the run lists everything. A full listing also runs at least every `prune_interval_seconds`, for changes a
count cannot see (one item leaving while another arrives unnoticed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coco_operator.dispatcher.schedule import format_duration


@dataclass(frozen=True)
class Listing:
    """What the next run needs to know about the last complete listing, kept in status."""

    last_prune: datetime | None = None  # start of the last run that listed every id and pruned
    total: int | None = None  # items the scope held at the last successful run (the site's CQL count)


def prune_reason(
    *,
    incremental: bool,
    prior: Listing,
    now: datetime,
    interval_s: int,
    total_now: int | None,
    created: int,
) -> str | None:
    """Why this run lists every id, or None when the count shows nothing left the scope.

    `created` is how many items of the changed window were created since the last run started: they explain a
    higher count. Items created while the last run was counting are counted twice and cause a listing, never a
    missed deletion.
    """
    if not incremental:
        return "full sync"
    if interval_s <= 0:
        return "every run lists all ids (prune interval 0)"
    if prior.last_prune is None:
        return "no complete listing recorded yet"
    age = (now - prior.last_prune).total_seconds()
    if age >= interval_s:
        return f"last complete listing {format_duration(age)} ago (prune interval {format_duration(interval_s)})"
    if prior.total is None or total_now is None:
        return "the site did not say how many items the scope holds"
    expected = prior.total + created
    if total_now != expected:
        return (
            f"the scope holds {total_now} items where {expected} were expected ({prior.total} at the last run, "
            f"{created} created since)"
        )
    return None
