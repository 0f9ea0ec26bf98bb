"""Meilisearch HTTP API conformance: run against the emulator by default, or a real server (see conftest).

Every assertion here is about behaviour a real Meilisearch v1.x shows, so that the emulator cannot drift into
accepting what the real server refuses.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import meilisearch
import pytest
from meilisearch.errors import MeilisearchApiError

from tests.emulators.meilisearch import MeiliEmulator
from tests.meili.conftest import MeiliTarget

pytestmark = pytest.mark.meili

REPO = Path(__file__).resolve().parents[2]

PAGES: list[dict[str, Any]] = [
    {
        "id": "a",
        "title": "Install guide",
        "space": "ENG",
        "version": 1,
        "labels": ["howto", "draft"],
        "source": {"kind": "page", "id": "ns/one"},
    },
    {
        "id": "b",
        "title": "Release notes",
        "space": "ENG",
        "version": 3,
        "labels": [],
        "source": {"kind": "blog", "id": "ns/one"},
    },
    {
        "id": "c",
        "title": "Runbook",
        "space": "OPS",
        "version": 2,
        "labels": ["howto"],
        "source": {"kind": "page", "id": "ns/two"},
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


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def add_documents(
    meili: MeiliTarget, uid: str, docs: list[dict[str, Any]], *, primary_key: str | None = "id", method: str = "POST"
) -> dict[str, Any]:
    params = {"primaryKey": primary_key} if primary_key else {}
    return meili.run(method, f"/indexes/{uid}/documents", json=docs, params=params)


def update_settings(meili: MeiliTarget, uid: str, settings: dict[str, Any]) -> None:
    task = meili.run("PATCH", f"/indexes/{uid}/settings", json=settings)
    assert task["status"] == "succeeded", task
    assert task["type"] == "settingsUpdate"


def all_docs(meili: MeiliTarget, uid: str) -> list[dict[str, Any]]:
    response = meili.request("GET", f"/indexes/{uid}/documents", params={"limit": 1000})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def doc_ids(docs: list[dict[str, Any]]) -> set[str]:
    return {str(d["id"]) for d in docs}


def search(meili: MeiliTarget, uid: str, body: dict[str, Any]) -> httpx.Response:
    return meili.request("POST", f"/indexes/{uid}/search", json=body)


def assert_error(response: httpx.Response, status: int, code: str, error_type: str = "invalid_request") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "code", "type", "link"}, body
    assert body["code"] == code, body
    assert body["type"] == error_type, body
    assert body["link"] == f"https://docs.meilisearch.com/errors#{code}"
    message: str = body["message"]
    return message


def assert_task_failed(task: dict[str, Any], code: str) -> str:
    assert task["status"] == "failed", task
    error = task["error"]
    assert error["code"] == code, error
    assert error["type"] == "invalid_request", error
    assert error["link"] == f"https://docs.meilisearch.com/errors#{code}"
    message: str = error["message"]
    return message


def parse_rfc3339(value: str) -> datetime:
    assert value.endswith("Z"), value
    head, _, frac = value[:-1].partition(".")
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6].ljust(6, '0')}+00:00")


@pytest.fixture
def pages(meili: MeiliTarget, index_uid: str) -> str:
    """An index holding PAGES, with the attributes the filter tests use made filterable and sortable."""
    update_settings(
        meili,
        index_uid,
        {
            "filterableAttributes": ["space", "version", "labels", "source", "owner"],
            "sortableAttributes": ["version", "title"],
        },
    )
    task = add_documents(meili, index_uid, PAGES)
    assert task["status"] == "succeeded", task
    return index_uid


# --------------------------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------------------------


def test_health_needs_no_key(meili: MeiliTarget) -> None:
    response = httpx.get(f"{meili.url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "available"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/version"), ("GET", "/indexes"), ("GET", "/tasks"), ("GET", "/stats"), ("POST", "/indexes/x/search")],
)
def test_missing_key_is_401_and_wrong_key_is_403(meili: MeiliTarget, method: str, path: str) -> None:
    response = httpx.request(method, f"{meili.url}{path}", json={}, timeout=10)
    message = assert_error(response, 401, "missing_authorization_header", "auth")
    assert "Authorization header is missing" in message
    response = httpx.request(method, f"{meili.url}{path}", json={}, headers=meili.headers("not-the-key"), timeout=10)
    message = assert_error(response, 403, "invalid_api_key", "auth")
    assert message == "The provided API key is invalid."


def test_official_client_reports_a_wrong_key(meili: MeiliTarget) -> None:
    client = meilisearch.Client(meili.url, "definitely-wrong")
    with pytest.raises(MeilisearchApiError) as info:
        client.get_indexes()
    assert info.value.code == "invalid_api_key"
    assert info.value.status_code == 403


def test_version_with_master_key(meili: MeiliTarget) -> None:
    response = meili.request("GET", "/version")
    assert response.status_code == 200
    body = response.json()
    assert {"pkgVersion", "commitSha", "commitDate"} <= set(body)
    assert body["pkgVersion"].startswith("1.")


def test_default_keys_are_scoped(meili: MeiliTarget, index_uid: str) -> None:
    assert add_documents(meili, index_uid, [{"id": 1, "title": "hello"}])["status"] == "succeeded"
    response = meili.request("GET", "/keys")
    assert response.status_code == 200
    page = response.json()
    assert {"results", "offset", "limit", "total"} <= set(page)
    by_name = {k["name"]: k for k in page["results"]}
    search_key = by_name["Default Search API Key"]
    admin_key = by_name["Default Admin API Key"]
    assert search_key["actions"] == ["search"] and search_key["indexes"] == ["*"]
    assert admin_key["actions"] == ["*"]
    for entry in (search_key, admin_key):
        assert {"uid", "key", "actions", "indexes", "expiresAt", "createdAt", "updatedAt"} <= set(entry)

    with meili.http(search_key["key"]) as client:
        response = client.post(f"/indexes/{index_uid}/search", json={"q": "hello"})
        assert response.status_code == 200, response.text
        assert [h["id"] for h in response.json()["hits"]] == [1]
        # The search key holds only the `search` action: reading documents needs `documents.get`.
        assert_error(client.get(f"/indexes/{index_uid}/documents"), 403, "invalid_api_key", "auth")
        assert_error(client.get("/indexes"), 403, "invalid_api_key", "auth")
        assert_error(client.post(f"/indexes/{index_uid}/documents", json=[{"id": 2}]), 403, "invalid_api_key", "auth")
        assert_error(client.get("/keys"), 403, "invalid_api_key", "auth")

    with meili.http(admin_key["key"]) as client:
        response = client.post(f"/indexes/{index_uid}/documents", json=[{"id": 2, "title": "admin"}])
        assert response.status_code == 202, response.text
        assert meili.wait_task(response.json()["taskUid"])["status"] == "succeeded"
        assert client.get(f"/indexes/{index_uid}/documents/2").json() == {"id": 2, "title": "admin"}
        # `*` really is every action, key management included.
        assert client.get("/keys").status_code == 200


# --------------------------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------------------------


def test_write_is_an_asynchronous_task(meili: MeiliTarget, index_uid: str) -> None:
    response = meili.request(
        "POST", f"/indexes/{index_uid}/documents", params={"primaryKey": "id"}, json=[{"id": 1}, {"id": 2}]
    )
    assert response.status_code == 202, response.text
    summary = response.json()
    assert set(summary) == {"taskUid", "indexUid", "status", "type", "enqueuedAt"}
    assert summary["indexUid"] == index_uid
    assert summary["status"] == "enqueued"
    assert summary["type"] == "documentAdditionOrUpdate"
    parse_rfc3339(summary["enqueuedAt"])

    task = meili.wait_task(summary["taskUid"])
    expected_keys = {"uid", "indexUid", "status", "type", "canceledBy", "details", "error", "duration"}
    assert expected_keys | {"enqueuedAt", "startedAt", "finishedAt"} <= set(task)
    assert task["uid"] == summary["taskUid"]
    assert task["status"] == "succeeded"
    assert task["details"] == {"receivedDocuments": 2, "indexedDocuments": 2}
    assert task["error"] is None and task["canceledBy"] is None
    assert task["duration"].startswith("PT") and task["duration"].endswith("S")
    enqueued, started, finished = (parse_rfc3339(task[k]) for k in ("enqueuedAt", "startedAt", "finishedAt"))
    assert enqueued <= started <= finished

    listed = meili.request(
        "GET",
        "/tasks",
        params={"uids": task["uid"], "indexUids": index_uid, "types": "documentAdditionOrUpdate"},
    ).json()
    assert {"results", "total", "limit", "from", "next"} <= set(listed)
    assert [t["uid"] for t in listed["results"]] == [task["uid"]]
    failed_only = meili.request("GET", "/tasks", params={"uids": task["uid"], "statuses": "failed"}).json()
    assert failed_only["results"] == []

    assert_error(meili.request("GET", "/tasks/999999999"), 404, "task_not_found")
    assert_error(meili.request("GET", "/tasks", params={"statuses": "done"}), 400, "invalid_task_statuses")
    assert_error(meili.request("GET", "/tasks", params={"types": "upload"}), 400, "invalid_task_types")


def test_tasks_are_listed_newest_first_with_paging(meili: MeiliTarget, index_uid: str) -> None:
    uids = [add_documents(meili, index_uid, [{"id": i}])["uid"] for i in range(3)]
    page = meili.request("GET", "/tasks", params={"indexUids": index_uid, "limit": 2}).json()
    assert [t["uid"] for t in page["results"]] == [uids[2], uids[1]]
    assert page["limit"] == 2 and page["from"] == uids[2] and page["next"] == uids[0]
    rest = meili.request("GET", "/tasks", params={"indexUids": index_uid, "limit": 2, "from": page["next"]}).json()
    assert [t["uid"] for t in rest["results"]] == [uids[0]]
    assert rest["next"] is None


def test_official_client_waits_for_tasks(meili_client: meilisearch.Client, index_uid: str) -> None:
    info = meili_client.create_index(index_uid, {"primaryKey": "id"})
    assert info.status == "enqueued" and info.type == "indexCreation"
    task = meili_client.wait_for_task(info.task_uid)
    assert task.status == "succeeded"
    assert task.details == {"primaryKey": "id"}
    again = meili_client.wait_for_task(meili_client.create_index(index_uid).task_uid)
    assert again.status == "failed"
    assert again.error is not None and again.error["code"] == "index_already_exists"


# --------------------------------------------------------------------------------------------------------------
# Documents and document ids
# --------------------------------------------------------------------------------------------------------------

BAD_IDS: list[Any] = ["has space", "a/b", "ümlaut", "x" * 512, "", "dot.ted", 1.5, True, {"a": 1}, ["a"]]


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=[json.dumps(i)[:20] for i in BAD_IDS])
def test_one_invalid_id_fails_the_whole_batch(meili: MeiliTarget, index_uid: str, bad_id: Any) -> None:
    assert add_documents(meili, index_uid, [{"id": "keep", "n": 0}])["status"] == "succeeded"
    task = add_documents(meili, index_uid, [{"id": "fine-1", "n": 1}, {"id": bad_id, "n": 2}, {"id": "keep", "n": 3}])
    message = assert_task_failed(task, "invalid_document_id")
    assert "Document identifier" in message
    assert task["details"]["receivedDocuments"] == 3
    assert task["details"]["indexedDocuments"] == 0
    assert all_docs(meili, index_uid) == [{"id": "keep", "n": 0}]


def test_longest_valid_string_id_and_integer_ids(meili: MeiliTarget, index_uid: str) -> None:
    long_id = "A-_9" * 127 + "zzz"
    assert len(long_id) == 511
    assert add_documents(meili, index_uid, [{"id": long_id}, {"id": 42}])["status"] == "succeeded"
    assert doc_ids(all_docs(meili, index_uid)) == {long_id, "42"}
    # Integer ids are addressed by their decimal string.
    assert meili.request("GET", f"/indexes/{index_uid}/documents/42").json() == {"id": 42}


def test_missing_id_fails_the_whole_batch(meili: MeiliTarget, index_uid: str) -> None:
    task = add_documents(meili, index_uid, [{"id": "ok"}, {"title": "no id"}])
    message = assert_task_failed(task, "missing_document_id")
    assert "`id`" in message
    assert all_docs(meili, index_uid) == []


def test_replace_and_update_semantics(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1, "a": 1, "b": 2}])
    add_documents(meili, index_uid, [{"id": 1, "a": 9}])
    assert all_docs(meili, index_uid) == [{"id": 1, "a": 9}]
    assert add_documents(meili, index_uid, [{"id": 1, "b": 3}], method="PUT")["status"] == "succeeded"
    assert all_docs(meili, index_uid) == [{"id": 1, "a": 9, "b": 3}]


def test_documents_paging_fields_and_single_document(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": i, "title": f"t{i}", "extra": i * 10} for i in range(5)])
    page = meili.request(
        "GET", f"/indexes/{index_uid}/documents", params={"limit": 2, "offset": 1, "fields": "id,title"}
    ).json()
    assert page == {
        "results": [{"id": 1, "title": "t1"}, {"id": 2, "title": "t2"}],
        "offset": 1,
        "limit": 2,
        "total": 5,
    }
    single = meili.request("GET", f"/indexes/{index_uid}/documents/3", params={"fields": "extra"})
    assert single.json() == {"extra": 30}
    assert_error(meili.request("GET", f"/indexes/{index_uid}/documents/nope"), 404, "document_not_found")
    task = meili.run("DELETE", f"/indexes/{index_uid}/documents/3")
    assert task["type"] == "documentDeletion" and task["details"]["deletedDocuments"] == 1
    assert_error(meili.request("GET", f"/indexes/{index_uid}/documents/3"), 404, "document_not_found")
    task = meili.run("DELETE", f"/indexes/{index_uid}/documents")
    assert task["status"] == "succeeded" and task["details"]["deletedDocuments"] == 4
    assert all_docs(meili, index_uid) == []


def test_ndjson_payload(meili: MeiliTarget, index_uid: str) -> None:
    body = b'{"id": "n1", "v": 1}\n{"id": "n2", "v": 2}\n'
    task = meili.run(
        "POST",
        f"/indexes/{index_uid}/documents",
        params={"primaryKey": "id"},
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert task["status"] == "succeeded" and task["details"]["receivedDocuments"] == 2
    assert doc_ids(all_docs(meili, index_uid)) == {"n1", "n2"}


def test_content_type_and_payload_errors(meili: MeiliTarget, index_uid: str) -> None:
    path = f"/indexes/{index_uid}/documents"
    message = assert_error(meili.request("POST", path, content=b"[]"), 415, "missing_content_type")
    assert "application/json" in message
    response = meili.request("POST", path, content=b"[]", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "invalid_content_type")
    response = meili.request("POST", path, content=b'[{"id": 1,', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_payload")
    response = meili.request("POST", path, content=b"", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "missing_payload")
    response = meili.request("POST", path, content=b'["not an object"]', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_payload")
    # None of these reached the task queue.
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 404


def test_gzip_encoded_payload(meili: MeiliTarget, index_uid: str) -> None:
    body = gzip.compress(json.dumps([{"id": "g1"}]).encode())
    task = meili.run(
        "POST",
        f"/indexes/{index_uid}/documents",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert task["status"] == "succeeded"
    assert doc_ids(all_docs(meili, index_uid)) == {"g1"}


def test_payload_too_large(meili: MeiliTarget) -> None:
    if not meili.is_emulator:
        pytest.skip("a real server's payload limit is fixed at launch (--http-payload-size-limit), not per test")
    with MeiliEmulator("k", payload_limit=2048) as small:
        headers = {"Authorization": "Bearer k"}
        big = [{"id": i, "text": "x" * 100} for i in range(40)]
        response = httpx.post(f"{small.url}/indexes/big/documents", json=big, headers=headers)
        assert_error(response, 413, "payload_too_large")
        assert small.tasks() == []
        response = httpx.post(f"{small.url}/indexes/big/documents", json=big[:3], headers=headers)
        assert response.status_code == 202
        small.wait_idle()
        assert len(small.documents("big")) == 3


# --------------------------------------------------------------------------------------------------------------
# Primary keys
# --------------------------------------------------------------------------------------------------------------


def test_primary_key_inference(meili: MeiliTarget, new_index_uid: Callable[[], str]) -> None:
    none_uid, many_uid, one_uid = new_index_uid(), new_index_uid(), new_index_uid()
    task = add_documents(meili, none_uid, [{"title": "x", "body": "y"}], primary_key=None)
    assert "ending with `id`" in assert_task_failed(task, "index_primary_key_no_candidate_found")
    task = add_documents(meili, many_uid, [{"id": 1, "page_id": 2}], primary_key=None)
    assert_task_failed(task, "index_primary_key_multiple_candidates_found")

    task = add_documents(meili, one_uid, [{"PageID": "p1", "title": "x"}], primary_key=None)
    assert task["status"] == "succeeded", task
    assert meili.request("GET", f"/indexes/{one_uid}").json()["primaryKey"] == "PageID"

    task = add_documents(meili, one_uid, [{"id": "a", "PageID": "p2"}], primary_key="id")
    message = assert_task_failed(task, "index_primary_key_already_exists")
    assert "`PageID`" in message
    assert doc_ids([{"id": d["PageID"]} for d in all_docs(meili, one_uid)]) == {"p1"}
    # The key the index already has is fine to repeat.
    assert add_documents(meili, one_uid, [{"PageID": "p3"}], primary_key="PageID")["status"] == "succeeded"


def test_explicit_primary_key_on_creation(meili: MeiliTarget, index_uid: str) -> None:
    task = meili.run("POST", "/indexes", json={"uid": index_uid, "primaryKey": "ref"})
    assert task["status"] == "succeeded" and task["details"]["primaryKey"] == "ref"
    task = add_documents(meili, index_uid, [{"id": "x", "ref": "r1"}], primary_key=None)
    assert task["status"] == "succeeded"
    assert meili.request("GET", f"/indexes/{index_uid}/documents/r1").status_code == 200


# --------------------------------------------------------------------------------------------------------------
# Deletions
# --------------------------------------------------------------------------------------------------------------


def test_delete_by_filter_needs_filterable_attributes(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(
        meili, index_uid, [{"id": "a", "space": "ENG"}, {"id": "b", "space": "ENG"}, {"id": "c", "space": "OPS"}]
    )
    path = f"/indexes/{index_uid}/documents/delete"
    task = meili.run("POST", path, json={"filter": "space = ENG"})
    message = assert_task_failed(task, "invalid_document_filter")
    assert "Attribute `space` is not filterable." in message
    assert "This index does not have configured filterable attributes." in message
    assert task["details"] == {"providedIds": 0, "deletedDocuments": 0, "originalFilter": '"space = ENG"'}
    assert doc_ids(all_docs(meili, index_uid)) == {"a", "b", "c"}

    task = meili.run("PUT", f"/indexes/{index_uid}/settings/filterable-attributes", json=["space"])
    assert task["status"] == "succeeded" and task["details"] == {"filterableAttributes": ["space"]}
    task = meili.run("POST", path, json={"filter": "title = x"})
    message = assert_task_failed(task, "invalid_document_filter")
    assert "Attribute `title` is not filterable." in message and "`space`" in message

    task = meili.run("POST", path, json={"filter": "space = ENG"})
    assert task["status"] == "succeeded", task
    assert task["details"]["deletedDocuments"] == 2
    assert doc_ids(all_docs(meili, index_uid)) == {"c"}

    assert_error(meili.request("POST", path, json={"filter": "space ="}), 400, "invalid_document_filter")
    assert_error(meili.request("POST", path, json={}), 400, "missing_document_filter")


@pytest.mark.filterwarnings("ignore:The use of ids is depreciated:DeprecationWarning")
def test_delete_batch(meili: MeiliTarget, meili_client: meilisearch.Client, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1}, {"id": 2}, {"id": "three"}])
    info = meili_client.index(index_uid).delete_documents(["1", "three", "missing"])
    task = meili.wait_task(info.task_uid)
    assert task["type"] == "documentDeletion" and task["status"] == "succeeded"
    assert task["details"]["providedIds"] == 3
    assert task["details"]["deletedDocuments"] == 2
    assert all_docs(meili, index_uid) == [{"id": 2}]


def test_deleting_from_a_missing_index_fails_the_task(meili: MeiliTarget, index_uid: str) -> None:
    task = meili.run("POST", f"/indexes/{index_uid}/documents/delete-batch", json=["x"])
    assert_task_failed(task, "index_not_found")
    task = meili.run("DELETE", f"/indexes/{index_uid}")
    assert_task_failed(task, "index_not_found")


# --------------------------------------------------------------------------------------------------------------
# Search and filters
# --------------------------------------------------------------------------------------------------------------

FILTER_CASES: list[tuple[Any, set[str]]] = [
    ("space IN [ENG, OPS]", {"a", "b", "c"}),
    ("space NOT IN [ENG]", {"c", "d"}),
    ("space = eng", {"a", "b"}),
    ('space = "ENG"', {"a", "b"}),
    ("space != ENG", {"c", "d"}),
    ("labels != draft", {"b", "c", "d"}),  # includes documents without the attribute
    ("space = ENG AND version > 2", {"b"}),
    ("(space = ENG OR space = OPS) AND NOT labels = draft", {"b", "c"}),
    ("NOT (space = ENG)", {"c", "d"}),
    ("labels = howto", {"a", "c"}),
    ("labels IS EMPTY", {"b"}),
    ("labels NOT EXISTS", {"d"}),
    ("owner IS NULL", {"d"}),
    ("owner IS NOT NULL", {"a", "b", "c"}),
    ("source.kind = blog", {"b"}),
    ('source.id = "ns/two"', {"c", "d"}),
    ("version 2 TO 3", {"b", "c"}),
    ("version >= 3 OR labels = draft", {"a", "b", "d"}),
    ("space = OPS OR space = ENG AND version > 2", {"b", "c"}),  # AND binds tighter than OR
    ("version < 2", {"a"}),
    ([["space = OPS", "space = HR"], "version > 2"], {"d"}),
    (["space = ENG", "labels = howto"], {"a"}),
]


@pytest.mark.parametrize(("flt", "expected"), FILTER_CASES, ids=[json.dumps(c[0]) for c in FILTER_CASES])
def test_search_filters(meili: MeiliTarget, pages: str, flt: Any, expected: set[str]) -> None:
    response = search(meili, pages, {"q": "", "filter": flt, "limit": 100})
    assert response.status_code == 200, response.text
    assert doc_ids(response.json()["hits"]) == expected
    fetched = meili.request("POST", f"/indexes/{pages}/documents/fetch", json={"filter": flt, "limit": 100})
    assert fetched.status_code == 200, fetched.text
    assert doc_ids(fetched.json()["results"]) == expected
    assert fetched.json()["total"] == len(expected)


def test_filter_through_get_routes_and_official_client(
    meili: MeiliTarget, meili_client: meilisearch.Client, pages: str
) -> None:
    response = meili.request("GET", f"/indexes/{pages}/search", params={"filter": "space = OPS", "q": ""})
    assert doc_ids(response.json()["hits"]) == {"c"}
    response = meili.request("GET", f"/indexes/{pages}/documents", params={"filter": "version > 2", "fields": "id"})
    assert response.json()["results"] == [{"id": "b"}, {"id": "d"}]
    index = meili_client.index(pages)
    assert doc_ids(index.search("", {"filter": ["space = ENG"]})["hits"]) == {"a", "b"}
    result = index.get_documents({"filter": 'source.id = "ns/one"', "fields": ["id"], "limit": 10})
    assert result.total == 2 and {d.id for d in result.results} == {"a", "b"}


def test_invalid_search_filter_is_a_synchronous_400(meili: MeiliTarget, pages: str) -> None:
    message = assert_error(search(meili, pages, {"filter": "title = x"}), 400, "invalid_search_filter")
    assert "Attribute `title` is not filterable." in message
    assert all(name in message for name in ("labels", "owner", "source", "space", "version"))
    assert message.endswith("\n1:6 title = x")
    if meili.is_emulator:
        # The v1.12 wording; later versions list "filterable attribute patterns" one by one.
        assert "Available filterable attributes are: `labels, owner, source, space, version`." in message
    message = assert_error(search(meili, pages, {"filter": ["space = ENG", "title = x"]}), 400, "invalid_search_filter")
    assert message.endswith("\n1:6 title = x")
    message = assert_error(search(meili, pages, {"filter": "space ="}), 400, "invalid_search_filter")
    assert "Was expecting a value" in message
    message = assert_error(
        search(meili, pages, {"filter": "space = ENG XOR space = OPS"}), 400, "invalid_search_filter"
    )
    assert "Found unexpected characters at the end of the filter: `XOR space = OPS`" in message
    assert message.endswith("\n13:28 space = ENG XOR space = OPS")
    message = assert_error(search(meili, pages, {"filter": "space IN [ENG"}), 400, "invalid_search_filter")
    assert "Expected matching `]`" in message
    message = assert_error(search(meili, pages, {"filter": "(space = ENG"}), 400, "invalid_search_filter")
    assert "missing the following closing delimiter: `)`" in message
    message = assert_error(search(meili, pages, {"filter": "space"}), 400, "invalid_search_filter")
    assert "Was expecting an operation" in message and message.endswith("\n1:6 space")
    assert_error(search(meili, pages, {"filter": True}), 400, "invalid_search_filter")
    response = meili.request("GET", f"/indexes/{pages}/documents", params={"filter": "title = x"})
    assert_error(response, 400, "invalid_document_filter")


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
    assert "Attribute `space` is not sortable." in message and "`title, version`" in message
    assert_error(search(meili, pages, {"sort": ["version"]}), 400, "invalid_search_sort")
    assert_error(search(meili, pages, {"sort": "version:asc"}), 400, "invalid_search_sort")


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
    assert hit_ids({"q": "zzqqxxyy"}) == []
    assert hit_ids({"q": "install guide", "matchingStrategy": "all"}) == ["a"]
    assert hit_ids({"q": "install notes", "matchingStrategy": "all"}) == []
    # The default strategy (`last`) drops words from the end of the query until something matches.
    assert hit_ids({"q": "install zebrafish"}) == ["a"]
    assert set(hit_ids({"q": ""})) == {"a", "b", "c", "d"}

    response = search(meili, pages, {"q": "", "limit": 2, "offset": 1})
    body = response.json()
    assert {"hits", "query", "processingTimeMs", "limit", "offset", "estimatedTotalHits"} <= set(body)
    assert body["limit"] == 2 and body["offset"] == 1 and len(body["hits"]) == 2
    assert body["estimatedTotalHits"] == 4 and body["query"] == ""

    body = search(meili, pages, {"q": "runbook", "attributesToRetrieve": ["title"]}).json()
    assert body["hits"] == [{"title": "Runbook"}]
    body = search(meili, pages, {"q": "release", "attributesToHighlight": ["title"]}).json()
    assert body["hits"][0]["_formatted"]["title"] == "<em>Release</em> notes"

    body = search(meili, pages, {"q": "", "hitsPerPage": 3, "page": 2}).json()
    assert body["page"] == 2 and body["hitsPerPage"] == 3 and body["totalHits"] == 4 and body["totalPages"] == 2
    assert len(body["hits"]) == 1


def test_searchable_and_displayed_attributes(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1, "title": "alpha", "secret": "bravo"}])
    update_settings(meili, index_uid, {"searchableAttributes": ["title"], "displayedAttributes": ["id", "title"]})
    assert search(meili, index_uid, {"q": "bravo"}).json()["hits"] == []
    assert search(meili, index_uid, {"q": "alpha"}).json()["hits"] == [{"id": 1, "title": "alpha"}]


# --------------------------------------------------------------------------------------------------------------
# Indexes, swap, stats, settings
# --------------------------------------------------------------------------------------------------------------


def test_index_routes(meili: MeiliTarget, index_uid: str) -> None:
    assert_error(meili.request("POST", "/indexes", json={"uid": "bad uid"}), 400, "invalid_index_uid")
    assert_error(meili.request("GET", "/indexes/bad%20uid"), 400, "invalid_index_uid")
    assert_error(meili.request("POST", "/indexes", json={"primaryKey": "id"}), 400, "missing_index_uid")
    assert_error(meili.request("POST", "/indexes", json={"uid": index_uid, "foo": 1}), 400, "bad_request")
    message = assert_error(meili.request("GET", f"/indexes/{index_uid}"), 404, "index_not_found")
    assert message == f"Index `{index_uid}` not found."

    assert meili.run("POST", "/indexes", json={"uid": index_uid})["status"] == "succeeded"
    index = meili.request("GET", f"/indexes/{index_uid}").json()
    assert {"uid", "primaryKey", "createdAt", "updatedAt"} <= set(index)
    assert index["uid"] == index_uid and index["primaryKey"] is None
    assert_task_failed(meili.run("POST", "/indexes", json={"uid": index_uid}), "index_already_exists")

    task = meili.run("PATCH", f"/indexes/{index_uid}", json={"primaryKey": "key"})
    assert task["type"] == "indexUpdate" and task["status"] == "succeeded"
    assert meili.request("GET", f"/indexes/{index_uid}").json()["primaryKey"] == "key"

    listing = meili.request("GET", "/indexes", params={"limit": 1000}).json()
    assert {"results", "offset", "limit", "total"} <= set(listing)
    assert index_uid in {i["uid"] for i in listing["results"]}

    task = meili.run("DELETE", f"/indexes/{index_uid}")
    assert task["type"] == "indexDeletion" and task["status"] == "succeeded"
    assert task["details"] == {"deletedDocuments": 0}
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 404


def test_swap_indexes(meili: MeiliTarget, meili_client: meilisearch.Client, new_index_uid: Callable[[], str]) -> None:
    first, second, absent = new_index_uid(), new_index_uid(), new_index_uid()
    add_documents(meili, first, [{"id": "from-first"}])
    add_documents(meili, second, [{"id": "from-second"}, {"id": "another"}])

    response = meili.request("POST", "/swap-indexes", json=[{"indexes": [first, second]}])
    assert response.status_code == 202
    summary = response.json()
    assert summary["type"] == "indexSwap" and summary["indexUid"] is None
    task = meili.wait_task(summary["taskUid"])
    assert task["status"] == "succeeded", task
    assert task["details"]["swaps"][0]["indexes"] == [first, second]
    assert doc_ids(all_docs(meili, first)) == {"from-second", "another"}
    assert doc_ids(all_docs(meili, second)) == {"from-first"}

    info = meili_client.swap_indexes([{"indexes": [first, absent]}])
    failed = meili.wait_task(info.task_uid)
    assert absent in assert_task_failed(failed, "index_not_found")
    assert doc_ids(all_docs(meili, first)) == {"from-second", "another"}

    duplicate = meili.request("POST", "/swap-indexes", json=[{"indexes": [first, first]}])
    assert_error(duplicate, 400, "invalid_swap_duplicate_index_found")
    assert_error(meili.request("POST", "/swap-indexes", json=[{"indexes": [first]}]), 400, "invalid_swap_indexes")


def test_stats(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1, "title": "a", "tags": ["x"]}, {"id": 2, "title": "b"}])
    stats = meili.request("GET", f"/indexes/{index_uid}/stats").json()
    assert stats["numberOfDocuments"] == 2
    assert stats["isIndexing"] is False
    assert stats["fieldDistribution"] == {"id": 2, "tags": 1, "title": 2}
    overall = meili.request("GET", "/stats").json()
    assert {"databaseSize", "lastUpdate", "indexes"} <= set(overall)
    assert overall["indexes"][index_uid]["numberOfDocuments"] == 2


def test_settings_defaults_updates_and_resets(meili: MeiliTarget, index_uid: str) -> None:
    meili.run("POST", "/indexes", json={"uid": index_uid, "primaryKey": "id"})
    settings = meili.request("GET", f"/indexes/{index_uid}/settings").json()
    assert settings["displayedAttributes"] == ["*"]
    assert settings["searchableAttributes"] == ["*"]
    assert settings["filterableAttributes"] == [] and settings["sortableAttributes"] == []
    assert settings["rankingRules"] == ["words", "typo", "proximity", "attribute", "sort", "exactness"]
    assert settings["distinctAttribute"] is None and settings["synonyms"] == {} and settings["stopWords"] == []
    assert settings["typoTolerance"]["enabled"] is True
    assert settings["typoTolerance"]["minWordSizeForTypos"] == {"oneTypo": 5, "twoTypos": 9}
    assert settings["pagination"] == {"maxTotalHits": 1000}
    assert settings["faceting"]["maxValuesPerFacet"] == 100

    task = meili.run(
        "PATCH", f"/indexes/{index_uid}/settings", json={"filterableAttributes": ["a"], "stopWords": ["the"]}
    )
    assert task["details"] == {"filterableAttributes": ["a"], "stopWords": ["the"]}
    update_settings(meili, index_uid, {"sortableAttributes": ["b"]})
    task = meili.run(
        "PATCH", f"/indexes/{index_uid}/settings/typo-tolerance", json={"minWordSizeForTypos": {"oneTypo": 4}}
    )
    assert task["status"] == "succeeded", task
    settings = meili.request("GET", f"/indexes/{index_uid}/settings").json()
    assert settings["filterableAttributes"] == ["a"] and settings["sortableAttributes"] == ["b"]
    assert settings["typoTolerance"]["minWordSizeForTypos"] == {"oneTypo": 4, "twoTypos": 9}
    assert meili.request("GET", f"/indexes/{index_uid}/settings/stop-words").json() == ["the"]

    assert meili.run("DELETE", f"/indexes/{index_uid}/settings/filterable-attributes")["status"] == "succeeded"
    assert meili.request("GET", f"/indexes/{index_uid}/settings/filterable-attributes").json() == []
    assert meili.run("DELETE", f"/indexes/{index_uid}/settings")["status"] == "succeeded"
    settings = meili.request("GET", f"/indexes/{index_uid}/settings").json()
    assert settings["sortableAttributes"] == [] and settings["stopWords"] == []


def test_settings_validation_is_synchronous(meili: MeiliTarget, index_uid: str) -> None:
    path = f"/indexes/{index_uid}/settings"
    message = assert_error(meili.request("PATCH", path, json={"foo": 1}), 400, "bad_request")
    assert "Unknown field `foo`" in message
    response = meili.request("PATCH", path, json={"filterableAttributes": "space"})
    message = assert_error(response, 400, "invalid_settings_filterable_attributes")
    assert "expected an array" in message
    response = meili.request("PUT", f"{path}/filterable-attributes", json="space")
    assert_error(response, 400, "invalid_settings_filterable_attributes")
    response = meili.request("PATCH", path, json={"rankingRules": ["words", "nope"]})
    assert_error(response, 400, "invalid_settings_ranking_rules")
    response = meili.request("PATCH", path, json={"typoTolerance": {"bogus": True}})
    assert_error(response, 400, "invalid_settings_typo_tolerance")
    response = meili.request("PATCH", path, content=b"{}")
    assert_error(response, 415, "missing_content_type")
    # Nothing was enqueued, so the index was never created.
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 404


def test_settings_update_creates_the_index(meili: MeiliTarget, index_uid: str) -> None:
    update_settings(meili, index_uid, {"filterableAttributes": ["space"]})
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 200


def test_official_client_workflow(meili_client: meilisearch.Client, index_uid: str) -> None:
    client = meili_client
    client.wait_for_task(client.create_index(index_uid, {"primaryKey": "id"}).task_uid)
    index = client.index(index_uid)
    task = client.wait_for_task(
        index.update_settings({"filterableAttributes": ["space"], "sortableAttributes": ["n"]}).task_uid
    )
    assert task.status == "succeeded"
    docs = [{"id": f"p{n}", "title": f"Page number {n}", "space": "ENG" if n % 2 else "OPS", "n": n} for n in range(6)]
    assert client.wait_for_task(index.add_documents(docs).task_uid).status == "succeeded"
    assert index.get_filterable_attributes() == ["space"]
    result = index.get_documents({"filter": "space = ENG", "fields": ["id"], "limit": 2})
    assert result.total == 3 and len(result.results) == 2
    hits = index.search("page", {"filter": "space = OPS", "sort": ["n:desc"]})["hits"]
    assert [h["id"] for h in hits] == ["p4", "p2", "p0"]
    assert index.get_document("p3").title == "Page number 3"
    assert client.wait_for_task(index.delete_document("p3").task_uid).status == "succeeded"
    stats = index.get_stats()
    assert stats.number_of_documents == 5 and stats.is_indexing is False
    tasks = client.get_tasks({"indexUids": [index_uid], "types": ["documentDeletion"]})
    assert tasks.total == 1 and tasks.results[0].status == "succeeded"
    assert client.wait_for_task(client.delete_index(index_uid).task_uid).status == "succeeded"
    with pytest.raises(MeilisearchApiError) as info:
        client.get_index(index_uid)
    assert info.value.code == "index_not_found"


# --------------------------------------------------------------------------------------------------------------
# Emulator-only behaviour (its public API and fault injection)
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def fresh() -> Iterator[MeiliEmulator]:
    with MeiliEmulator("k") as emulator:
        yield emulator


def _post(emulator: MeiliEmulator, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{emulator.url}{path}", json=body, headers={"Authorization": "Bearer k"}, timeout=10)


def _task(emulator: MeiliEmulator, uid: int) -> dict[str, Any]:
    response = httpx.get(f"{emulator.url}/tasks/{uid}", headers={"Authorization": "Bearer k"}, timeout=10)
    result: dict[str, Any] = response.json()
    return result


def test_emulator_stop_and_restart_keep_data(fresh: MeiliEmulator) -> None:
    url = fresh.url
    assert _post(fresh, "/indexes/idx/documents", [{"id": 1}]).status_code == 202
    fresh.wait_idle()
    fresh.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
    fresh.restart()
    assert fresh.url == url
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    assert fresh.documents("idx") == [{"id": 1}]
    assert _post(fresh, "/indexes/idx/documents", [{"id": 2}]).status_code == 202
    fresh.wait_idle()
    assert fresh.documents("idx") == [{"id": 1}, {"id": 2}]


def test_emulator_tasks_wait_while_stopped(fresh: MeiliEmulator) -> None:
    fresh.task_delay_s = 0.2
    uid = _post(fresh, "/indexes/idx/documents", [{"id": 1}]).json()["taskUid"]
    second = _post(fresh, "/indexes/idx/documents", [{"id": 2}]).json()["taskUid"]
    fresh.stop()
    time.sleep(0.5)
    fresh.restart()
    fresh.wait_idle()
    assert _task(fresh, uid)["status"] == "succeeded"
    assert _task(fresh, second)["status"] == "succeeded"


def test_emulator_fail_next_tasks(fresh: MeiliEmulator) -> None:
    fresh.fail_next_tasks.append(("internal", "simulated disk failure"))
    uid = _post(fresh, "/indexes/idx/documents", [{"id": 1}]).json()["taskUid"]
    fresh.wait_idle()
    task = _task(fresh, uid)
    assert task["status"] == "failed"
    assert task["error"] == {
        "message": "simulated disk failure",
        "code": "internal",
        "type": "internal",
        "link": "https://docs.meilisearch.com/errors#internal",
    }
    assert fresh.documents("idx") == []
    assert fresh.fail_next_tasks == []
    uid = _post(fresh, "/indexes/idx/documents", [{"id": 1}]).json()["taskUid"]
    fresh.wait_idle()
    assert _task(fresh, uid)["status"] == "succeeded"
    assert fresh.documents("idx") == [{"id": 1}]


def test_emulator_task_states_are_observable(fresh: MeiliEmulator) -> None:
    assert _post(fresh, "/indexes", {"uid": "idx"}).status_code == 202
    fresh.wait_idle()
    fresh.task_delay_s = 0.3
    first = _post(fresh, "/indexes/idx/documents", [{"id": 1}]).json()["taskUid"]
    second = _post(fresh, "/indexes/idx/documents", [{"id": 2}]).json()["taskUid"]
    time.sleep(0.1)
    assert _task(fresh, first)["status"] == "processing"
    assert _task(fresh, second)["status"] == "enqueued"
    stats = httpx.get(f"{fresh.url}/indexes/idx/stats", headers={"Authorization": "Bearer k"}).json()
    assert stats["isIndexing"] is True
    fresh.wait_idle()
    done_first, done_second = _task(fresh, first), _task(fresh, second)
    assert parse_rfc3339(done_first["finishedAt"]) <= parse_rfc3339(done_second["startedAt"])


def test_emulator_cancels_enqueued_tasks(fresh: MeiliEmulator) -> None:
    fresh.task_delay_s = 0.3
    uids = [_post(fresh, "/indexes/idx/documents", [{"id": i}]).json()["taskUid"] for i in range(3)]
    time.sleep(0.1)
    response = httpx.post(
        f"{fresh.url}/tasks/cancel?statuses=enqueued", headers={"Authorization": "Bearer k"}, timeout=10
    )
    assert response.status_code == 202 and response.json()["type"] == "taskCancelation"
    fresh.wait_idle()
    cancel = _task(fresh, response.json()["taskUid"])
    assert cancel["details"]["canceledTasks"] == 2
    assert [_task(fresh, u)["status"] for u in uids] == ["succeeded", "canceled", "canceled"]
    assert fresh.documents("idx") == [{"id": 0}]


def test_emulator_request_log(fresh: MeiliEmulator) -> None:
    httpx.get(f"{fresh.url}/health")
    httpx.get(f"{fresh.url}/indexes")
    assert fresh.requests[-2:] == [("GET", "/health", 200), ("GET", "/indexes", 401)]


def test_emulator_without_master_key_is_open() -> None:
    with MeiliEmulator(None) as open_emulator:
        assert httpx.get(f"{open_emulator.url}/indexes").status_code == 200
        assert_error(httpx.get(f"{open_emulator.url}/keys"), 401, "missing_master_key", "auth")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_emulator_standalone_process() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.meilisearch", "--port", str(port), "--master-key", "KEY"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == f"meilisearch emulator listening on http://127.0.0.1:{port}\n"
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "available"}
        assert httpx.get(f"http://127.0.0.1:{port}/version").status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
