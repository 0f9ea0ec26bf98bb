"""Document-level permissions: the stored rule is Confluence's rule, never wider; the filter and token carry it."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from coco_operator.permissions.readers import (
    ANYONE,
    MAX_CLAUSES,
    MAX_PRINCIPALS,
    Grant,
    Readers,
    group,
    readers,
    user,
)
from coco_operator.permissions.search import principals, reader_filter, search_rules, tenant_token


def g(users: tuple[str, ...] = (), groups: tuple[str, ...] = (), anyone: bool = False) -> Grant:
    return Grant(frozenset(users), frozenset(groups), anyone)


def confluence_allows(space: Grant, levels: list[Grant], who: str, member_of: set[str]) -> bool:
    """Confluence's rule, evaluated directly: space permission and every restricted level."""

    def satisfies(grant: Grant) -> bool:
        return grant.anyone or who in grant.users or bool(member_of & grant.groups)

    return satisfies(space) and all(satisfies(level) for level in levels if not level.empty)


def stored_allows(rule: Readers, who: str, member_of: set[str]) -> bool:
    """What Meilisearch does with `permissions.cN IN [held]` for every N (array fields match any element)."""
    held = set(principals([who], member_of))
    fields = rule.document_field()
    return all(held & set(fields[f"c{i}"]) for i in range(MAX_CLAUSES))


def test_open_space_without_restrictions_is_public() -> None:
    rule = readers(g(anyone=True), [])
    assert rule.public
    assert rule.document_field() == {"public": True, "c0": ["*"], "c1": ["*"], "c2": ["*"], "c3": ["*"]}


def test_space_group_and_page_restriction_are_both_required() -> None:
    rule = readers(g(groups=("eng",)), [g(users=("bob",), groups=("hr",))])
    fields = rule.document_field()
    assert fields["public"] is False
    assert fields["c0"] == ["group:eng"]
    assert fields["c1"] == ["group:hr", "user:bob"]
    assert stored_allows(rule, "bob", {"eng"})
    assert not stored_allows(rule, "bob", set())  # restriction names bob, but bob cannot view the space
    assert stored_allows(rule, "carol", {"eng", "hr"})
    assert not stored_allows(rule, "dave", {"eng"})


def test_ancestor_restriction_hides_descendants_from_those_it_excludes() -> None:
    space = g(groups=("staff",))
    parent = g(groups=("hr",))
    child = g(users=("bob", "erin"))
    rule = readers(space, [child, parent])
    assert stored_allows(rule, "bob", {"staff", "hr"})
    assert not stored_allows(rule, "erin", {"staff"})  # named on the page, not in the ancestor's group
    assert not stored_allows(rule, "zoe", {"staff", "hr"})  # in the ancestor's group, not named on the page


def test_a_level_implied_by_another_is_not_stored() -> None:
    rule = readers(g(groups=("eng",)), [g(users=("x",), groups=("eng",))])
    assert rule.clauses == (frozenset({group("eng")}),)


def test_anonymous_space_with_a_restricted_page_keeps_only_the_restriction() -> None:
    rule = readers(g(anyone=True), [g(groups=("leads",))])
    assert not rule.public
    assert rule.document_field()["c0"] == ["group:leads"]
    assert stored_allows(rule, "x", {"leads"})
    assert not stored_allows(rule, "x", set())


def test_nobody_qualifies_when_levels_have_no_common_reader() -> None:
    rule = readers(g(users=("a",)), [g(users=("b",))])
    assert not stored_allows(rule, "a", set()) and not stored_allows(rule, "b", set())


@pytest.mark.parametrize("seed", range(300))
def test_stored_rule_is_never_wider_than_confluence(seed: int) -> None:
    rnd = random.Random(seed)
    people = [f"u{i}" for i in range(6)]
    groups = [f"g{i}" for i in range(5)]

    def grant() -> Grant:
        return g(tuple(rnd.sample(people, rnd.randint(0, 3))), tuple(rnd.sample(groups, rnd.randint(0, 3))))

    space = g(anyone=True) if rnd.random() < 0.2 else grant()
    levels = [grant() for _ in range(rnd.randint(0, 7))]
    rule = readers(space, levels)
    assert len(rule.clauses) <= MAX_CLAUSES
    for who in people:
        for _ in range(6):
            member_of = set(rnd.sample(groups, rnd.randint(0, 4)))
            if stored_allows(rule, who, member_of):
                assert confluence_allows(space, levels, who, member_of), (space, levels, who, member_of, rule)
            elif not rule.narrowed and rule.too_large is None:
                # Without narrowing the stored rule is exactly Confluence's.
                assert not confluence_allows(space, levels, who, member_of)


def test_more_levels_than_clauses_are_narrowed_and_flagged() -> None:
    levels = [g(users=("a", f"x{i}")) for i in range(6)]
    rule = readers(g(groups=("all",)), levels)
    assert rule.narrowed
    assert len(rule.clauses) <= MAX_CLAUSES
    assert stored_allows(rule, "a", {"all"})  # "a" is on every level: still allowed after narrowing


def test_a_level_too_large_to_store_makes_the_item_readable_by_nobody() -> None:
    rule = readers(g(users=tuple(f"u{i}" for i in range(MAX_PRINCIPALS + 1))), [])
    assert rule.nobody and rule.too_large and "more than" in rule.too_large
    assert not stored_allows(rule, "u1", set())


def test_filter_names_every_clause_and_quotes_values() -> None:
    flt = reader_filter(['712020:ab"c'], ["team \\ a"])
    parts = flt.split(" AND ")
    assert [p.split(" ")[0] for p in parts] == [f"permissions.c{i}" for i in range(MAX_CLAUSES)]
    assert '"user:712020:ab\\"c"' in parts[0]
    assert '"group:team \\\\ a"' in parts[0]
    assert f'"{ANYONE}"' in parts[0]


def test_search_rules_need_an_index() -> None:
    with pytest.raises(ValueError, match="index"):
        search_rules([], ["u"], [])
    assert set(search_rules(["a", "b"], ["u"], [])) == {"a", "b"}


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def test_tenant_token_carries_the_rule_and_an_expiry() -> None:
    uid = str(uuid.uuid4())
    before = datetime.now(UTC)
    token = tenant_token(
        api_key="k" * 64,
        api_key_uid=uid,
        indexes=["docs"],
        user_ids=["bob"],
        groups=["hr"],
        expires_in=timedelta(hours=2),
    )
    after = datetime.now(UTC)
    payload = _payload(token)
    assert payload["apiKeyUid"] == uid
    exp = payload["exp"]
    assert isinstance(exp, int)
    assert int((before + timedelta(hours=2)).timestamp()) <= exp <= int((after + timedelta(hours=2)).timestamp())
    rules = payload["searchRules"]
    assert isinstance(rules, dict)
    assert rules["docs"]["filter"] == reader_filter(["bob"], ["hr"])
    assert user("bob") in rules["docs"]["filter"]


def test_tenant_token_refuses_no_expiry() -> None:
    with pytest.raises(ValueError, match="expire"):
        tenant_token(api_key="k", api_key_uid=str(uuid.uuid4()), indexes=["d"], user_ids=["u"], expires_in=timedelta(0))
