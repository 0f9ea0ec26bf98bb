"""The query side: a Meilisearch filter and tenant token that limit a search to what one person may read.

A frontend calls `tenant_token(...)` once per session (or `coco-operator search-token`), then searches with the
token as its API key; Meilisearch ANDs the token's filter with whatever filter the search itself sends, so a
person can narrow their results but never widen them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from coco_operator.permissions.readers import ANYONE, CLAUSE_FIELDS, FIELD, group, user

MAX_GROUPS = 500  # a filter, like any input, has a bound; beyond this the IdP's group list is likely wrong
DEFAULT_TTL = timedelta(hours=1)


def principals(user_ids: Iterable[str], groups: Iterable[str]) -> list[str]:
    """What a person holds: `*`, each of their identities, each of their groups (deduplicated, sorted)."""
    held = {ANYONE, *(user(u) for u in user_ids if u), *(group(g) for g in groups if g)}
    if len(held) > MAX_GROUPS + 10:
        raise ValueError(f"{len(held)} identities and groups is more than a search filter may carry ({MAX_GROUPS})")
    return sorted(held)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def reader_filter(user_ids: Iterable[str], groups: Iterable[str]) -> str:
    """`permissions.c0 IN [...] AND ... AND permissions.c3 IN [...]`: Confluence's read rule for this person."""
    held = ", ".join(_quote(p) for p in principals(user_ids, groups))
    return " AND ".join(f"{FIELD}.{name} IN [{held}]" for name in CLAUSE_FIELDS)


def search_rules(indexes: Sequence[str], user_ids: Iterable[str], groups: Iterable[str]) -> dict[str, object]:
    if not indexes:
        raise ValueError("name at least one index the token may search")
    flt = reader_filter(list(user_ids), list(groups))
    return {index: {"filter": flt} for index in indexes}


def tenant_token(
    *,
    api_key: str,
    api_key_uid: str,
    indexes: Sequence[str],
    user_ids: Iterable[str],
    groups: Iterable[str] = (),
    expires_in: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> str:
    """A Meilisearch tenant token (JWT signed with `api_key`, whose uid is `api_key_uid`) for one person.

    The key must be allowed to search the indexes (a search-only key is the right one; never the master key).
    """
    from meilisearch import Client  # the official client signs the token; loaded only when a token is minted

    if expires_in <= timedelta(0):
        raise ValueError("a tenant token must expire in the future")
    expires_at = (now or datetime.now(UTC)) + expires_in
    client = Client("http://unused.invalid", api_key)  # signing is local: no request is made
    return str(
        client.generate_tenant_token(
            api_key_uid, search_rules(indexes, user_ids, groups), expires_at=expires_at, api_key=api_key
        )
    )
