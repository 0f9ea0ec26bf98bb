"""Conformance: search, the filter language in both forms, its error messages, sorting and paging."""

from __future__ import annotations

import json
from typing import Any

import meilisearch
import pytest

from tests.meili.conftest import (
    MeiliTarget,
    add_documents,
    assert_error,
    doc_ids,
    fetch,
    search,
    update_settings,
)

pytestmark = pytest.mark.meili

PAGES: list[dict[str, Any]] = [
    {
        "id": "a",
        "title": "Install guide",
        "space": "ENG",
        "version": 1,
        "labels": ["howto", "draft"],
        "source": {"kind": "page", "id": "ns/one"},
        "permissions": {"users": ["alice", "bob"], "groups": ["eng"], "public": False},
    },
    {
        "id": "b",
        "title": "Release notes",
        "space": "ENG",
        "version": 3,
        "labels": [],
        "source": {"kind": "blog", "id": "ns/one"},
        "permissions": {"users": [], "groups": ["eng", "ops"], "public": False},
    },
    {
        "id": "c",
        "title": "Runbook",
        "space": "OPS",
        "version": 2,
        "labels": ["howto"],
        "source": {"kind": "page", "id": "ns/two"},
        "permissions": {"users": ["carol"], "groups": [], "public": True},
    },
    {
        "id": "d",
        "title": "Holidays",
        "space": "HR",
        "version": 5,
        "source": {"kind": "page", "id": "ns/two"},
        "owner": None,
    },
]


@pytest.fixture
def pages(meili: MeiliTarget, index_uid: str) -> str:
    """An index holding PAGES, with the attributes the tests filter and sort on declared."""
    filterable = ["space", "version", "labels", "source", "owner", "permissions"]
    update_settings(meili, index_uid, {"filterableAttributes": filterable, "sortableAttributes": ["version", "title"]})
    assert add_documents(meili, index_uid, PAGES)["status"] == "succeeded"
    return index_uid


FILTER_CASES: list[tuple[Any, set[str]]] = [
    ("space IN [ENG, OPS]", {"a", "b", "c"}),
    ("space NOT IN [ENG]", {"c", "d"}),
    ("space = eng", {"a", "b"}),  # string equality ignores case
    ('space = "ENG"', {"a", "b"}),
    ("space != ENG", {"c", "d"}),
    ("labels != draft", {"b", "c", "d"}),  # includes documents without the attribute
    ("space = ENG AND version > 2", {"b"}),
    ("(space = ENG OR space = OPS) AND NOT labels = draft", {"b", "c"}),
    ("NOT (space = ENG)", {"c", "d"}),
    ("labels = howto", {"a", "c"}),  # an array matches through any element
    ("labels IS EMPTY", {"b"}),
    ("labels NOT EXISTS", {"d"}),
    ("labels EXISTS", {"a", "b", "c"}),
    ("owner IS NULL", {"d"}),
    ("owner IS NOT NULL", {"a", "b", "c"}),
    ("source.kind = blog", {"b"}),  # nested attributes, under a filterable parent
    ('source.id = "ns/two"', {"c", "d"}),
    ("version 2 TO 3", {"b", "c"}),
    ("version >= 3 OR labels = draft", {"a", "b", "d"}),
    ("space = OPS OR space = ENG AND version > 2", {"b", "c"}),  # AND binds tighter than OR
    ("version < 2", {"a"}),
    ("permissions.users = alice OR permissions.groups IN [ops]", {"a", "b"}),
    ("permissions.public = true", {"c"}),
    ("permissions.users IS EMPTY", {"b"}),
    ([["space = OPS", "space = HR"], "version > 2"], {"d"}),  # array form: inner arrays are ORed
    (["space = ENG", "labels = howto"], {"a"}),  # array form: strings are ANDed
    (["permissions.public = true", ["permissions.users = alice", "permissions.groups = eng"]], set()),
]


@pytest.mark.parametrize(("flt", "expected"), FILTER_CASES, ids=[json.dumps(c[0]) for c in FILTER_CASES])
def test_filters(meili: MeiliTarget, pages: str, flt: Any, expected: set[str]) -> None:
    response = search(meili, pages, {"q": "", "filter": flt, "limit": 100})
    assert response.status_code == 200, response.text
    assert doc_ids(response.json()["hits"]) == expected
    fetched = fetch(meili, pages, filter=flt)
    assert fetched.status_code == 200, fetched.text
    assert doc_ids(fetched.json()["results"]) == expected


def test_invalid_filter_messages(meili: MeiliTarget, pages: str) -> None:
    def refused(flt: Any) -> str:
        return assert_error(search(meili, pages, {"filter": flt}), 400, "invalid_search_filter")

    # Meilisearch 1.50: the engine's message names the index and lists the filterable patterns one by one; it
    # ends with the position of the attribute and the filter as given, quotes included.
    message = refused('"title" = "x"')
    assert message == (
        f"Index `{pages}`: Attribute `title` is not filterable. Available filterable attribute patterns are: "
        '`labels`, `owner`, `permissions`, `source`, `space`, `version`.\n2:7 "title" = "x"'
    )
    assert refused(["space = ENG", "title = x"]).endswith("\n1:6 title = x")
    assert "Was expecting a value but instead got nothing." in refused("space =")
    message = refused("space = ENG XOR space = OPS")
    assert message == (
        "Found unexpected characters at the end of the filter: `XOR space = OPS`. You probably forgot an `OR` or "
        "an `AND` rule.\n13:28 space = ENG XOR space = OPS"
    )
    assert "Expected matching `]`" in refused("space IN [ENG")
    assert "missing the following closing delimiter: `)`" in refused("(space = ENG")
    message = refused("space")
    assert message.startswith("Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, ")
    assert message.endswith("\n1:6 space")
    assert refused(True).startswith("Invalid syntax for the filter parameter")


def test_filter_on_an_index_without_filterable_attributes(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1, "title": "x"}])
    message = assert_error(search(meili, index_uid, {"filter": '"title" = "x"'}), 400, "invalid_search_filter")
    assert message.endswith(
        "Attribute `title` is not filterable. This index does not have configured filterable attributes.\n"
        '2:7 "title" = "x"'
    )


def test_search_request_validation(meili: MeiliTarget, pages: str, index_uid: str) -> None:
    assert_error(search(meili, pages, {"unknownParameter": 1}), 400, "bad_request")
    assert_error(search(meili, pages, {"limit": "ten"}), 400, "invalid_search_limit")
    assert_error(search(meili, pages, {"q": ["a"]}), 400, "invalid_search_q")
    assert_error(search(meili, pages, {"matchingStrategy": "most"}), 400, "invalid_search_matching_strategy")
    assert_error(search(meili, f"{index_uid}_absent", {"q": "x"}), 404, "index_not_found")


def test_sorting(meili: MeiliTarget, meili_client: meilisearch.Client, pages: str) -> None:
    def order(sort: list[str]) -> list[str]:
        response = search(meili, pages, {"q": "", "sort": sort})
        assert response.status_code == 200, response.text
        return [h["id"] for h in response.json()["hits"]]

    assert order(["version:desc"]) == ["d", "b", "c", "a"]
    assert order(["version:asc"]) == ["a", "c", "b", "d"]
    assert order(["title:asc"]) == ["d", "a", "b", "c"]
    hits = meili_client.index(pages).search("", {"sort": ["title:desc"], "limit": 2})["hits"]
    assert [h["id"] for h in hits] == ["c", "b"]
    message = assert_error(search(meili, pages, {"sort": ["space:asc"]}), 400, "invalid_search_sort")
    assert message.endswith("Attribute `space` is not sortable. Available sortable attributes are: `title, version`.")
    assert_error(search(meili, pages, {"sort": ["version"]}), 400, "invalid_search_sort")


def test_documents_without_the_sort_field_come_last(meili: MeiliTarget, index_uid: str) -> None:
    update_settings(meili, index_uid, {"sortableAttributes": ["rank"]})
    add_documents(meili, index_uid, [{"id": "none"}, {"id": "two", "rank": 2}, {"id": "one", "rank": 1}])
    for direction, expected in (("asc", ["one", "two", "none"]), ("desc", ["two", "one", "none"])):
        hits = search(meili, index_uid, {"sort": [f"rank:{direction}"]}).json()["hits"]
        assert [h["id"] for h in hits] == expected


def test_text_matching(meili: MeiliTarget, pages: str) -> None:
    def hit_ids(body: dict[str, Any]) -> list[str]:
        response = search(meili, pages, body)
        assert response.status_code == 200, response.text
        return [h["id"] for h in response.json()["hits"]]

    assert hit_ids({"q": "instal"}) == ["a"]  # the last query word is a prefix
    assert hit_ids({"q": "INSTALL"}) == ["a"]
    assert hit_ids({"q": "Hölidays"}) == ["d"]  # accents do not matter
    assert hit_ids({"q": "runbok"}) == ["c"]  # one typo from five letters
    assert hit_ids({"q": "zzqqxxyy"}) == []
    # The default strategy drops words from the end of the query until something matches.
    assert hit_ids({"q": "install zebrafish"}) == ["a"]
    assert hit_ids({"q": "release notes guide"}) == ["b"]
    assert set(hit_ids({"q": ""})) == {"a", "b", "c", "d"}


def test_paging_and_retrieved_attributes(meili: MeiliTarget, pages: str) -> None:
    body = search(meili, pages, {"q": "", "limit": 2, "offset": 1}).json()
    assert {"hits", "query", "processingTimeMs", "limit", "offset", "estimatedTotalHits"} <= set(body)
    assert (body["limit"], body["offset"], len(body["hits"]), body["estimatedTotalHits"]) == (2, 1, 2, 4)
    body = search(meili, pages, {"q": "runbook", "attributesToRetrieve": ["title", "source.kind"]}).json()
    assert body["hits"] == [{"title": "Runbook", "source": {"kind": "page"}}]


def test_searchable_attributes_limit_matching(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1, "title": "alpha", "secret": "bravo"}])
    update_settings(meili, index_uid, {"searchableAttributes": ["title"]})
    assert search(meili, index_uid, {"q": "bravo"}).json()["hits"] == []
    assert search(meili, index_uid, {"q": "alpha"}).json()["hits"] == [{"id": 1, "title": "alpha", "secret": "bravo"}]
