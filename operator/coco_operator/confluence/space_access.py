"""Who may view a space, with the endpoints each edition offers (docs/confluence-api.md, sections 12 and 13).

- Cloud: REST v2 `spaces?keys=` for the space id, then `spaces/{id}/permissions`: users (accountId) and groups
  (group id). v2 names no anonymous grant, and the v1 space read that does is a CHANGE-864 read (deprecated on the
  site, 410 through the gateway), so an anonymous grant stays unknown: that can only make the stored rule narrower.
- Data Center 9.1+: `space/{key}/permissions` (users by userKey, groups by name) and `.../permissions/anonymous`.
  Older builds answer 404 there: the JSON-RPC `getSpacePermissionSets` (users by username) still answers. Both need
  space-admin rights; without them Data Center answers 500 (CONFSERVER-99908) or a JSON-RPC error.
- Data Center users are stored by userKey AND username, so a search token that names either matches: the one
  the answer lacks is looked up (`/rest/api/user`), one request per user granted directly (most grants are groups).

Each run asks once per space: Cloud 2 requests (plus a page per 250 grants), Data Center 2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coco_operator.confluence.client import ConfluenceClient
from coco_operator.errors import (
    AuthenticationError,
    ConfluenceUnavailableError,
    MalformedAnswerError,
    SpaceNotFoundError,
    SyncError,
)
from coco_operator.permissions.readers import Grant
from coco_operator.reasons import Reason

V2_PAGE = 250  # the documented maximum of v2 `limit`
MAX_USER_LOOKUPS = 100
JSON_RPC = "/rpc/json-rpc/confluenceservice-v2"
GROUP_PAGE = 200
MAX_GROUP_PAGES = 50  # 10,000 groups: beyond any person, and a bound on a server that never stops


@dataclass(frozen=True)
class SpaceReaders:
    """A space's view permission, and what the answers could not tell (for the log and status)."""

    grant: Grant
    notes: tuple[str, ...] = field(default_factory=tuple)


def _is_view(operation: Mapping[str, Any] | None, key: str) -> bool:
    op = operation or {}
    return op.get(key) == "read" and op.get("targetType") == "space"


def unreadable(space: str, site: str, cause: str) -> SyncError:
    return SyncError(
        f"the read permissions of space {space} on {site} cannot be read: {cause}. Give the connector's account "
        "the space's Admin permission (Data Center needs it to list space permissions), or set "
        "spec.permissions.mode: none to index without them (every document is then found by everyone who may "
        "search the index)",
        reason=Reason.SPACE_PERMISSIONS_UNREADABLE,
    )


async def space_readers(client: ConfluenceClient, key: str) -> SpaceReaders:
    if client.site.cloud:
        return await _cloud(client, key)
    return await _data_center(client, key)


# -- Cloud ------------------------------------------------------------------------------------------------------
async def _cloud(client: ConfluenceClient, key: str) -> SpaceReaders:
    # v2 only: the v1 space read that says whether anonymous users may view is a CHANGE-864 read (deprecated on
    # the site, 410 through the gateway), so an anonymous grant stays unknown, which can only narrow.
    note = (
        f"space {key}: whether anonymous users may view it is unknown (v2 lists no anonymous grants); if they may, "
        "people outside its listed users and groups will not find its pages"
    )
    users, groups = await _cloud_assignments(client, await _cloud_space_id(client, key))
    return SpaceReaders(Grant(frozenset(users), frozenset(groups), anyone=False), (note,))


async def _cloud_space_id(client: ConfluenceClient, key: str) -> str:
    page = await client.get_json(client.v2_url("/spaces"), {"keys": key, "limit": 1})
    for space in page.get("results") or []:
        if isinstance(space, dict) and space.get("key") == key and space.get("id") is not None:
            return str(space["id"])
    raise SpaceNotFoundError(f"space {key} is not listed by {client.site.base}/api/v2/spaces for the account")


async def _cloud_assignments(client: ConfluenceClient, space_id: str) -> tuple[set[str], set[str]]:
    users: set[str] = set()
    groups: set[str] = set()
    async for assignment in client.paginate(client.v2_url(f"/spaces/{space_id}/permissions"), {"limit": V2_PAGE}):
        if not _is_view(assignment.get("operation"), "key"):
            continue
        principal = assignment.get("principal") or {}
        pid = principal.get("id")
        if not pid:
            continue
        if principal.get("type") == "user":
            users.add(str(pid))
        elif principal.get("type") == "group":
            groups.add(str(pid))
        # `role` principals are not documented with members: left out, which only narrows the rule.
    return users, groups


# -- Data Center ------------------------------------------------------------------------------------------------
async def _data_center(client: ConfluenceClient, key: str) -> SpaceReaders:
    site = client.site.base
    try:
        rows = await client.json_value(f"/space/{key}/permissions", fail_fast=frozenset({500}))
    except SpaceNotFoundError:
        rows = None  # before 9.1 (CONFSERVER-78176): JSON-RPC below
    except ConfluenceUnavailableError as exc:
        if exc.status_code != 500:
            raise
        rows = None  # CONFSERVER-99908: 500 for an account without admin rights; JSON-RPC says which
    if isinstance(rows, list):
        users_by_key: set[str] = set()
        groups: set[str] = set()
        for row in rows:
            if not isinstance(row, dict) or not _is_view(row.get("operation"), "operationKey"):
                continue
            subject = row.get("subject") or {}
            if subject.get("type") == "user" and subject.get("userKey"):
                users_by_key.add(str(subject["userKey"]))
            elif subject.get("type") == "group" and subject.get("name"):
                groups.add(str(subject["name"]))
        anyone = await _dc_anonymous(client, key)
        users, notes = await _dc_identities(client, users_by_key, "key")
        return SpaceReaders(Grant(frozenset(users), frozenset(groups), anyone=anyone), notes)
    if rows is not None:
        raise unreadable(key, site, "the space permissions API answered something other than a list")
    return await _dc_json_rpc(client, key)


async def _dc_anonymous(client: ConfluenceClient, key: str) -> bool:
    try:
        answer = await client.json_value(f"/space/{key}/permissions/anonymous", fail_fast=frozenset({500}))
    except (SpaceNotFoundError, ConfluenceUnavailableError) as exc:
        raise unreadable(key, client.site.base, f"its anonymous permissions: {exc.message[:200]}") from None
    # Some 9.x builds nest the list: {"operations": [...]}.
    entries = answer.get("operations") if isinstance(answer, dict) else answer
    return any(isinstance(e, dict) and _is_view(e.get("operation") or e, "operationKey") for e in (entries or []))


async def _dc_json_rpc(client: ConfluenceClient, key: str) -> SpaceReaders:
    site = client.site.base
    body = {"jsonrpc": "2.0", "method": "getSpacePermissionSets", "id": 7, "params": [key]}
    try:
        answer = await client.json_value(client.site_url(JSON_RPC), body=body)
    except (AuthenticationError, SpaceNotFoundError, MalformedAnswerError, ConfluenceUnavailableError) as exc:
        # 401: the Remote API is disabled; HTML: WebSudo; 404: no JSON-RPC plugin.
        cause = f"the REST API (Data Center 9.1+) refused or is missing, and JSON-RPC failed ({exc.message[:200]})"
        raise unreadable(key, site, cause) from None
    if not isinstance(answer, dict) or "result" not in answer:
        error = answer.get("error") if isinstance(answer, dict) else None
        message = str(error.get("message", ""))[:200] if isinstance(error, dict) else "no result"
        raise unreadable(key, site, f"JSON-RPC getSpacePermissionSets answered: {message}")
    users_by_name: set[str] = set()
    groups: set[str] = set()
    anyone = False
    for entry in answer.get("result") or []:
        if not isinstance(entry, dict) or entry.get("type") != "VIEWSPACE":
            continue
        for p in entry.get("spacePermissions") or []:
            if not isinstance(p, dict):
                continue
            if p.get("userName"):
                users_by_name.add(str(p["userName"]))
            elif p.get("groupName"):
                groups.add(str(p["groupName"]))
            else:
                anyone = True  # neither name: the anonymous user
    users, notes = await _dc_identities(client, users_by_name, "username")
    return SpaceReaders(Grant(frozenset(users), frozenset(groups), anyone=anyone), notes)


async def _dc_identities(client: ConfluenceClient, known: set[str], by: str) -> tuple[set[str], tuple[str, ...]]:
    """Each user's userKey and username: the one the answer gave, plus the other, looked up."""
    if not known:
        return set(), ()
    looked_up = sorted(known)[:MAX_USER_LOOKUPS]
    found = await asyncio.gather(*(_dc_user(client, by, value) for value in looked_up))
    out = set(known)
    for identities in found:
        out |= identities
    notes: tuple[str, ...] = ()
    if len(known) > MAX_USER_LOOKUPS:
        notes = (
            f"{len(known)} users are granted the space directly; {len(known) - MAX_USER_LOOKUPS} of them are stored "
            f"by {'userKey' if by == 'key' else 'username'} only (a search token must name that identity)",
        )
    return out, notes


async def _dc_user(client: ConfluenceClient, by: str, value: str) -> set[str]:
    try:
        user = await client.get_json("/user", {by: value})
    except SpaceNotFoundError:
        return set()  # a deleted user: the identity the grant names is kept
    return identities_of(user, cloud=False)


def identities_of(user: Mapping[str, Any], *, cloud: bool) -> set[str]:
    """The stable identities of a user object: Cloud accountId; Data Center userKey and username."""
    keys: Iterable[str] = ("accountId",) if cloud else ("userKey", "username")
    return {str(user[k]) for k in keys if user.get(k)}


def group_identity(group: Mapping[str, Any], *, cloud: bool) -> str | None:
    """Cloud groups by id (names can be reused after a rename), Data Center groups by name."""
    value = (group.get("id") or group.get("name")) if cloud else group.get("name")
    return str(value) if value else None


async def groups_of(client: ConfluenceClient, user_id: str) -> tuple[set[str], set[str]]:
    """(the user's identities, their groups) as the search side needs them: `GET /rest/api/user/memberof`.

    Cloud: one request per 200 groups, by accountId. Data Center: one more to learn both userKey and username
    (`user_id` may be either).
    """
    cloud = client.site.cloud
    identities = {user_id}
    if cloud:
        query = {"accountId": user_id}
    else:
        user = await _dc_lookup_either(client, user_id)
        identities |= identities_of(user, cloud=False)
        query = {"key": str(user.get("userKey") or user_id)}
    groups: set[str] = set()
    start = 0
    # Not `client.paginate`: Data Center's groups have no id, which a content listing would refuse as malformed.
    for _ in range(MAX_GROUP_PAGES):
        page = await client.get_json("/user/memberof", {**query, "start": start, "limit": GROUP_PAGE})
        found = [g for g in page.get("results") or [] if isinstance(g, dict)]
        groups |= {g for g in (group_identity(x, cloud=cloud) for x in found) if g}
        limit = page.get("limit")
        size = limit if isinstance(limit, int) and limit > 0 else GROUP_PAGE  # the server's real page size
        if len(found) < size and not (page.get("_links") or {}).get("next"):
            break
        start += len(found)
        if not found:
            break
    return identities, groups


async def _dc_lookup_either(client: ConfluenceClient, value: str) -> dict[str, Any]:
    for by in ("username", "key"):
        try:
            return await client.get_json("/user", {by: value})
        except SpaceNotFoundError:
            continue
    raise SpaceNotFoundError(f"no user with username or userKey {value!r} on {client.site.base}")
