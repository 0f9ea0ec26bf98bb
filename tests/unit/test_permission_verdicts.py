"""Reading restrictions out of Confluence answers, and the verdict each permissions mode gives an item."""

from __future__ import annotations

from typing import Any

import pytest

from coco_operator.confluence.client import ConfluenceClient
from coco_operator.confluence.restrictions import NO_RESTRICTION, ancestor_ids, grant_of, own_read
from coco_operator.confluence.source import CONTENT_EXPAND, ConfluenceSource
from coco_operator.confluence.space_access import SpaceReaders
from coco_operator.permissions.readers import Grant
from coco_operator.permissions.verdict import PUBLIC_FIELD, decide, fingerprint
from coco_operator.sync.permissions import Indexed, RunAccess


def _list(results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"results": results, "start": 0, "limit": 100, "size": len(results), **extra}


def _restricted(users: list[dict[str, Any]], groups: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"restrictions": {"read": {"operation": "read", "restrictions": {"user": _list(users, **extra),
                                                                           "group": _list(groups)}}}}  # fmt: skip


def test_identities_per_edition() -> None:
    cloud = _restricted([{"accountId": "712020:a", "displayName": "A"}], [{"name": "hr", "id": "g-1"}])
    assert own_read(cloud, cloud=True) == Grant(frozenset({"712020:a"}), frozenset({"g-1"}))
    dc = _restricted([{"username": "ann", "userKey": "8a7f", "displayName": "A"}], [{"name": "hr"}])
    assert own_read(dc, cloud=False) == Grant(frozenset({"ann", "8a7f"}), frozenset({"hr"}))
    assert own_read(_restricted([], []), cloud=True) is NO_RESTRICTION


def test_what_the_answer_does_not_say_is_unknown_never_open() -> None:
    assert own_read({"id": "1", "title": "no expand"}, cloud=True) is None
    expandable = {"restrictions": {"read": {"restrictions": {"_expandable": {"user": "", "group": ""}}}}}
    assert own_read(expandable, cloud=True) is None
    full_page = [{"accountId": f"712020:{i}"} for i in range(100)]
    assert own_read(_restricted(full_page, []), cloud=True) is None  # as many as the page holds: maybe more
    assert own_read(_restricted([{"accountId": "x"}], [], _links={"next": "/rest/..."}), cloud=True) is None
    assert grant_of({"user": _list([]), "group": "not a list"}, cloud=True) is None


def test_ancestors_carry_their_own_restrictions_or_none() -> None:
    item = {"ancestors": [{"id": 1, **_restricted([], [{"name": "eng", "id": "g-eng"}])}, {"id": "2"}, {"x": 1}]}
    assert ancestor_ids(item) == ("1", "2")
    first, second = item["ancestors"][:2]
    assert own_read(first, cloud=True) == Grant(groups=frozenset({"g-eng"})) and own_read(second, cloud=True) is None


def test_restriction_levels_that_do_not_fit_are_narrowed_to_no_one_and_say_so() -> None:
    levels = [Grant(groups=frozenset({g})) for g in ("a", "b", "c", "d")]  # four disjoint levels, three kept
    verdict = decide("sync", SPACE, levels)
    assert verdict.field is None and "do not fit" in (verdict.reason or "")


SPACE = Grant(groups=frozenset({"staff"}))
HR = Grant(groups=frozenset({"hr"}))


def test_verdicts_per_mode() -> None:
    assert decide("none", SPACE, [HR]).field == PUBLIC_FIELD
    synced = decide("sync", SPACE, [HR, Grant()])
    assert synced.restricted and synced.field is not None
    assert synced.field["c0"] == ["group:staff"] and synced.field["c1"] == ["group:hr"]
    skipped = decide("skipRestricted", SPACE, [Grant(), HR])
    assert skipped.field is None and "skipRestricted" in (skipped.reason or "")
    open_item = decide("skipRestricted", SPACE, [Grant()])
    assert open_item.field is not None and not open_item.restricted and open_item.field["c1"] == ["*"]
    unknown = decide("sync", SPACE, [Grant()], unreadable="its ancestor 7")
    assert unknown.field is None and "its ancestor 7" in (unknown.reason or "")
    assert decide("sync", Grant(), []).field is None  # a space nobody may view: nobody may read the item
    anonymous = decide("sync", Grant(anyone=True), [])
    assert anonymous.field is not None and anonymous.field["public"] is True


def test_the_fingerprint_follows_the_readers() -> None:
    a = decide("sync", SPACE, [HR]).field
    b = decide("sync", SPACE, [HR]).field
    c = decide("sync", SPACE, [Grant(groups=frozenset({"eng"}))]).field
    assert a is not None and b is not None and c is not None
    assert a["fingerprint"] == b["fingerprint"] == fingerprint(a) != c["fingerprint"]


@pytest.mark.parametrize("mode", ["sync", "none"])
async def test_enrichment_cannot_change_what_was_stamped(mode: str) -> None:
    client = ConfluenceClient("https://example.atlassian.net/wiki", "t", username="u@example.com")
    source = ConfluenceSource(client, ["DOCS"])
    skipped: list[str] = []
    access = RunAccess(mode, client, source, skipped.append)  # type: ignore[arg-type]
    assert (source.content_expand != CONTENT_EXPAND) == (mode == "sync")
    written: list[dict[str, Any]] = []

    async def sink(doc: dict[str, Any]) -> None:
        written.append(doc)

    write = access.guard(sink)
    access.spaces["DOCS"] = SpaceReaders(SPACE)
    access.learn({"id": "7", "space": {"key": "DOCS"}, "ancestors": [], **_restricted([], [{"name": "hr"}])})
    doc: dict[str, Any] = {"id": "d7", "title": "Salaries"}
    assert access.stamp(doc, "7")
    stamped = doc["permissions"]
    await write({**doc, "permissions": {"public": True, "c0": ["*"]}})  # a webhook's widening
    await write({"id": "unstamped", "title": "from nowhere"})
    assert written[0]["permissions"] == stamped
    assert written[1].get("permissions") == (PUBLIC_FIELD if mode == "none" else None)
    lost = access.stamp({"id": "d8", "title": "Lost"}, "8")  # a page the run knows nothing about
    if mode == "sync":
        assert not lost and skipped == ["Lost: not indexed: its page or blog post cannot be found"]
        assert stamped["c1"] == ["group:hr"]
    else:
        assert lost and skipped == [] and stamped == PUBLIC_FIELD
    await client.aclose()


def test_indexed_documents_name_their_container() -> None:
    page = Indexed.of({"id": "x", "title": "P", "metadata": {"content_id": "5"}, "permissions": {"fingerprint": "f"}})
    att = Indexed.of({"id": "y", "metadata": {"content_id": "att9", "container_id": "5"}})
    assert (page.container, page.fingerprint, att.container, att.fingerprint) == ("5", "f", "5", None)
