"""How a listing moves from page to page, and how it may end. Pure decisions; the client does the requests.

Two ways to the next page:

- **cursor** (Cloud: CQL search and v2): follow `_links.next`, resolved against the base the client called.
- **offset** (Data Center v1): `start` is computed from what arrived (start + results received), never taken from
  `_links.next`, whose `start` under-counts when the server capped the page (Onyx #4129).

How a listing ends:

- a page without a `next` link: the end, as the server says;
- an empty page that still links onwards, or a page that brings no id the listing has not seen (Data Center keeps
  answering full pages of old records past the end, CONFSERVER-95396): the listing stops, but its end is
  **unproven**. A listing whose completeness matters (the one that decides deletions) is then accepted only when
  the same run's count of the scope proves it complete (`completeness_problem`);
- a `next` link already followed, or one whose `start` goes backwards: the server is looping, and the listing
  fails (`ListingIncomplete`: retried, nothing deleted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, urlsplit

Mode = Literal["cursor", "offset"]

EMPTY_PAGE = "an empty page that still linked to a next page"
NO_NEW_IDS = "a page that brought no item it had not already returned"


@dataclass
class Trail:
    """What one listing saw: every distinct id it returned (any status), and why its end is unproven (None: a
    page without a next link ended it, or it is still going)."""

    ids: set[str] = field(default_factory=set)
    unproven: str | None = None
    pages: int = 0


@dataclass(frozen=True)
class Next:
    """Fetch this page next: `url` in cursor mode, `start` (with the listing's own query) in offset mode."""

    url: str | None = None
    start: int | None = None


@dataclass(frozen=True)
class Stop:
    unproven: str | None = None


@dataclass(frozen=True)
class Loop:
    """The server sent the listing back to where it was."""

    why: str


def link_start(link: str) -> int | None:
    """The `start` a next link names, if any."""
    values = parse_qs(urlsplit(link).query).get("start")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def next_step(
    *,
    mode: Mode,
    received: int,
    new: int,
    link: str | None,
    resolved: str | None,
    start: int,
    followed: set[str],
) -> Next | Stop | Loop:
    """Where a listing goes after a page of `received` results (`new` of them not seen before).

    `link` is the page's `_links.next` as sent, `resolved` the URL it leads to; `start` is the offset the page
    was asked for; `followed` the URLs this listing already fetched.
    """
    if not link:
        return Stop()
    if received == 0:
        return Stop(EMPTY_PAGE)
    if new == 0:
        return Stop(NO_NEW_IDS)
    if mode == "offset":
        named = link_start(link)
        if named is not None and named <= start:
            return Loop(f"a next link that goes backwards (start={named} after a page at start={start})")
        return Next(start=start + received)
    if resolved is None or resolved in followed:
        return Loop("a next link it had already followed")
    return Next(url=resolved)


def completeness_problem(listed: int, count: int | None, unproven: list[str]) -> str | None:
    """Why a listing cannot be taken as complete, or None.

    `listed`: distinct items the listings of the scope returned; `count`: what the site counts in the same scope
    (None: it does not say); `unproven`: how listings ended without the server saying so.
    """
    if count is None:
        if not unproven:
            return None
        return f"it ended on {unproven[0]} and the site does not say how many items the scope holds"
    if listed >= count:
        return None
    ended = f"; it ended on {unproven[0]}" if unproven else ""
    return f"it returned {listed} distinct items where Confluence counts {count} in the same scope{ended}"
