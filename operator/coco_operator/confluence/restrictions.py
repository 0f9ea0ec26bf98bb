"""Read restrictions of Confluence items and of their ancestors (docs/confluence-api.md, section 14).

The item's own restriction comes with its body (`restrictions.read.restrictions.user|group` expand), its ancestors'
with the same expand under `ancestors.` (Onyx does both). On Cloud that ancestor expand fails a whole search with
404 when one ancestor is unreadable (CONFCLOUD-77618): the batch is fetched again without it, and the ancestors'
restrictions are looked up here by id: one CQL `id in (...)` per 50 ids, then `restriction/byOperation/read` for
each id the search does not return (a draft or trashed ancestor). An item whose restrictions cannot be read at
some level is readable by nobody (never guessed as open).

Identities are the stable ones: Cloud accountId and group id; Data Center userKey and username (both), group name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coco_operator.aio import together
from coco_operator.confluence.client import ConfluenceClient, cql_quote
from coco_operator.confluence.space_access import group_identity, identities_of
from coco_operator.errors import SpaceNotFoundError
from coco_operator.permissions.readers import MAX_PRINCIPALS, Grant

OWN_EXPAND = "restrictions.read.restrictions.user,restrictions.read.restrictions.group"
ANCESTORS_EXPAND = "ancestors.restrictions.read.restrictions.user,ancestors.restrictions.read.restrictions.group"
LOOKUP_EXPAND = f"{OWN_EXPAND},ancestors,space"
LOOKUP_BATCH = 50
RESTRICTION_PAGE = 100
NO_RESTRICTION = Grant()

Own = Grant | None  # None: not known (not in the answer, cut short, or unreadable)


@dataclass(frozen=True)
class Swept:
    """One item of a restrictions sweep: enough to compute who may read it without its body."""

    type: str
    title: str
    space_key: str | None
    own: Own
    ancestors: tuple[str, ...]  # root first


def _results(part: object) -> list[dict[str, Any]] | None:
    """The entries of one `user`/`group` list; None when absent (not expanded) or cut short by its page size."""
    if not isinstance(part, dict) or not isinstance(part.get("results"), list):
        return None
    results = [r for r in part["results"] if isinstance(r, dict)]
    limit = part.get("limit")
    links = part.get("_links")
    if (isinstance(links, dict) and links.get("next")) or (isinstance(limit, int) and 0 < limit <= len(results)):
        return None  # possibly more on a next page
    return results


def grant_of(restrictions: Mapping[str, Any], *, cloud: bool) -> Own:
    """A `{user: {results}, group: {results}}` object as a Grant; None if either list is missing or incomplete."""
    users = _results(restrictions.get("user"))
    groups = _results(restrictions.get("group"))
    if users is None or groups is None:
        return None
    user_ids = {i for u in users for i in identities_of(u, cloud=cloud)}
    group_ids = {g for g in (group_identity(x, cloud=cloud) for x in groups) if g}
    if not user_ids and not group_ids:
        return NO_RESTRICTION
    return Grant(frozenset(user_ids), frozenset(group_ids))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def own_read(item: Mapping[str, Any], *, cloud: bool) -> Own:
    """The item's own read restriction, as the restrictions expand renders it."""
    inner = _dict(item.get("restrictions")).get("read")
    inner = _dict(inner).get("restrictions")
    return grant_of(inner, cloud=cloud) if isinstance(inner, dict) else None


def ancestor_ids(item: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(a["id"]) for a in item.get("ancestors") or [] if isinstance(a, dict) and a.get("id") is not None)


def swept(item: Mapping[str, Any], *, cloud: bool) -> Swept:
    space = item.get("space")
    return Swept(
        type=str(item.get("type", "page")),
        title=str(item.get("title") or ""),
        space_key=str(space["key"]) if isinstance(space, dict) and space.get("key") else None,
        own=own_read(item, cloud=cloud),
        ancestors=ancestor_ids(item),
    )


async def lookup_items(client: ConfluenceClient, ids: Sequence[str]) -> dict[str, Swept]:
    """Items by id with their own restriction and ancestor ids (containers outside the scope); missing ids: absent."""
    out: dict[str, Swept] = {}
    for start in range(0, len(ids), LOOKUP_BATCH):
        chunk = ids[start : start + LOOKUP_BATCH]
        cql = f"id in ({', '.join(cql_quote(i) for i in chunk)})"
        params = {"cql": cql, "expand": LOOKUP_EXPAND, "limit": len(chunk)}
        async for item in client.paginate("/content/search", params):
            out[str(item["id"])] = swept(item, cloud=client.site.cloud)
    return out


async def lookup_own(client: ConfluenceClient, ids: Iterable[str]) -> dict[str, Own]:
    """Own read restrictions by id: a search per 50 ids, then `byOperation/read` for the rest (None: unreadable)."""
    wanted = sorted(set(ids))
    found = {cid: s.own for cid, s in (await lookup_items(client, wanted)).items()}
    rest = [cid for cid in wanted if found.get(cid) is None]
    if rest:
        answers = await together(*(read_restriction(client, cid) for cid in rest))
        found.update(zip(rest, answers, strict=True))
    return {cid: found.get(cid) for cid in wanted}


async def read_restriction(client: ConfluenceClient, content_id: str) -> Own:
    """`GET /content/{id}/restriction/byOperation/read`, page by page (users and groups page together)."""
    users: set[str] = set()
    groups: set[str] = set()
    cloud = client.site.cloud
    for page in range(MAX_PRINCIPALS // RESTRICTION_PAGE + 1):
        params = {"start": page * RESTRICTION_PAGE, "limit": RESTRICTION_PAGE}
        try:
            answer = await client.get_json(f"/content/{content_id}/restriction/byOperation/read", params)
        except SpaceNotFoundError:
            return None  # hidden, draft or trashed: unreadable
        lists = _dict(answer.get("restrictions"))
        user_page = [u for u in _dict(lists.get("user")).get("results") or [] if isinstance(u, dict)]
        group_page = [g for g in _dict(lists.get("group")).get("results") or [] if isinstance(g, dict)]
        users |= {i for u in user_page for i in identities_of(u, cloud=cloud)}
        groups |= {g for g in (group_identity(x, cloud=cloud) for x in group_page) if g}
        if len(user_page) < RESTRICTION_PAGE and len(group_page) < RESTRICTION_PAGE:
            break
    return Grant(frozenset(users), frozenset(groups)) if users or groups else NO_RESTRICTION
