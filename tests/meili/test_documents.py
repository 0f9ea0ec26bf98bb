"""Conformance: indexes, asynchronous tasks, documents and their ids, payloads, deletions.

Every assertion is about behaviour a real Meilisearch 1.50 shows (see conftest to run against one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import meilisearch
import pytest
from meilisearch.errors import MeilisearchApiError

from tests.meili.conftest import (
    MeiliTarget,
    add_documents,
    all_docs,
    assert_error,
    assert_task_failed,
    doc_ids,
    fetch,
    update_settings,
)

pytestmark = pytest.mark.meili


def parse_rfc3339(value: str) -> datetime:
    assert value.endswith("Z"), value
    head, _, frac = value[:-1].partition(".")
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6].ljust(6, '0')}+00:00")


def test_a_write_is_an_asynchronous_task(meili: MeiliTarget, index_uid: str) -> None:
    response = meili.request("POST", f"/indexes/{index_uid}/documents", params={"primaryKey": "id"}, json=[{"id": 1}])
    assert response.status_code == 202, response.text
    summary = response.json()
    assert set(summary) == {"taskUid", "indexUid", "status", "type", "enqueuedAt"}
    assert (summary["indexUid"], summary["status"], summary["type"]) == (
        index_uid,
        "enqueued",
        "documentAdditionOrUpdate",
    )
    task = meili.wait_task(summary["taskUid"])
    keys = {"uid", "batchUid", "indexUid", "status", "type", "canceledBy", "details", "error", "duration"}
    assert keys | {"enqueuedAt", "startedAt", "finishedAt"} <= set(task)
    assert (task["uid"], task["status"], task["error"]) == (summary["taskUid"], "succeeded", None)
    assert task["details"] == {"receivedDocuments": 1, "indexedDocuments": 1}
    assert task["duration"].startswith("PT") and task["duration"].endswith("S")
    enqueued, started, finished = (parse_rfc3339(task[k]) for k in ("enqueuedAt", "startedAt", "finishedAt"))
    assert enqueued <= started <= finished
    assert_error(meili.request("GET", "/tasks/999999999"), 404, "task_not_found")


def test_official_client_waits_for_tasks(meili_client: meilisearch.Client, index_uid: str) -> None:
    info = meili_client.create_index(index_uid, {"primaryKey": "id"})
    assert info.status == "enqueued" and info.type == "indexCreation"
    task = meili_client.wait_for_task(info.task_uid)
    assert task.status == "succeeded" and task.details == {"primaryKey": "id"}
    again = meili_client.wait_for_task(meili_client.create_index(index_uid).task_uid)
    assert again.status == "failed"
    assert again.error is not None and again.error["code"] == "index_already_exists"


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
    assert (index["uid"], index["primaryKey"]) == (index_uid, None)
    assert_task_failed(meili.run("POST", "/indexes", json={"uid": index_uid}), "index_already_exists")

    add_documents(meili, index_uid, [{"id": 1}, {"id": 2}])
    task = meili.run("DELETE", f"/indexes/{index_uid}")
    assert (task["type"], task["status"], task["details"]) == ("indexDeletion", "succeeded", {"deletedDocuments": 2})
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 404
    assert_task_failed(meili.run("DELETE", f"/indexes/{index_uid}"), "index_not_found")


# --- documents and ids ----------------------------------------------------------------------------------------

BAD_IDS: list[Any] = ["has space", "a/b", "ümlaut", "x" * 512, "", "dot.ted", 1.5, True, {"a": 1}, ["a"]]


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=[json.dumps(i)[:20] for i in BAD_IDS])
def test_one_invalid_id_fails_the_whole_batch(meili: MeiliTarget, index_uid: str, bad_id: Any) -> None:
    assert add_documents(meili, index_uid, [{"id": "keep", "n": 0}])["status"] == "succeeded"
    task = add_documents(meili, index_uid, [{"id": "fine-1", "n": 1}, {"id": bad_id, "n": 2}, {"id": "keep", "n": 3}])
    message = assert_task_failed(task, "invalid_document_id")
    assert "Document identifier `" in message and "is invalid" in message
    assert task["details"] == {"receivedDocuments": 3, "indexedDocuments": 0}
    assert all_docs(meili, index_uid) == [{"id": "keep", "n": 0}]


def test_longest_valid_string_id_and_integer_ids(meili: MeiliTarget, index_uid: str) -> None:
    long_id = "A-_9" * 127 + "zzz"
    assert len(long_id) == 511
    assert add_documents(meili, index_uid, [{"id": long_id}, {"id": 42}])["status"] == "succeeded"
    assert doc_ids(all_docs(meili, index_uid)) == {long_id, "42"}
    # Integer ids are addressed by their decimal string.
    assert fetch(meili, index_uid, ids=["42"]).json()["results"] == [{"id": 42}]


def test_missing_id_fails_the_whole_batch(meili: MeiliTarget, index_uid: str) -> None:
    task = add_documents(meili, index_uid, [{"id": "ok"}, {"title": "no id"}])
    assert "Document doesn't have a `id` attribute" in assert_task_failed(task, "missing_document_id")
    assert all_docs(meili, index_uid) == []


def test_a_document_replaces_the_stored_one(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1, "a": 1, "b": 2}])
    add_documents(meili, index_uid, [{"id": 1, "a": 9}])
    assert all_docs(meili, index_uid) == [{"id": 1, "a": 9}]
    # A single object is taken as a batch of one.
    assert add_documents(meili, index_uid, {"id": 2})["details"]["receivedDocuments"] == 1


def test_primary_key_inference(meili: MeiliTarget, new_index_uid: Callable[[], str]) -> None:
    none_uid, many_uid, one_uid = new_index_uid(), new_index_uid(), new_index_uid()
    task = add_documents(meili, none_uid, [{"title": "x", "body": "y"}], primary_key=None)
    assert "ending with `id`" in assert_task_failed(task, "index_primary_key_no_candidate_found")
    task = add_documents(meili, many_uid, [{"id": 1, "page_id": 2}], primary_key=None)
    assert_task_failed(task, "index_primary_key_multiple_candidates_found")

    assert add_documents(meili, one_uid, [{"PageID": "p1"}], primary_key=None)["status"] == "succeeded"
    assert meili.request("GET", f"/indexes/{one_uid}").json()["primaryKey"] == "PageID"
    task = add_documents(meili, one_uid, [{"id": "a", "PageID": "p2"}], primary_key="id")
    assert "`PageID`" in assert_task_failed(task, "index_primary_key_already_exists")
    # The key the index already has is fine to repeat.
    assert add_documents(meili, one_uid, [{"PageID": "p3"}], primary_key="PageID")["status"] == "succeeded"


def test_fetch_with_filter_fields_ids_and_paging(meili: MeiliTarget, index_uid: str) -> None:
    update_settings(meili, index_uid, {"filterableAttributes": ["kind"]})
    docs = [{"id": i, "title": f"t{i}", "kind": "even" if i % 2 == 0 else "odd", "n": i * 10} for i in range(6)]
    add_documents(meili, index_uid, docs)
    page = fetch(meili, index_uid, filter="kind = even", fields=["id", "title"], offset=1, limit=1).json()
    assert page == {"results": [{"id": 2, "title": "t2"}], "offset": 1, "limit": 1, "total": 3}
    assert doc_ids(fetch(meili, index_uid, ids=["1", "4", "missing"]).json()["results"]) == {"1", "4"}
    assert fetch(meili, index_uid, limit=2).json()["total"] == 6
    message = assert_error(fetch(meili, index_uid, filter="title = t1"), 400, "invalid_document_filter")
    assert message.endswith("is not filterable. Available filterable attribute patterns are: `kind`.\n1:6 title = t1")
    assert_error(fetch(meili, index_uid, limit="ten"), 400, "invalid_document_limit")
    assert_error(fetch(meili, f"{index_uid}_absent"), 404, "index_not_found")


def test_official_client_reads_documents(meili_client: meilisearch.Client, index_uid: str) -> None:
    index = meili_client.index(index_uid)
    meili_client.wait_for_task(index.update_settings({"filterableAttributes": ["source.id"]}).task_uid)
    docs = [{"id": f"p{n}", "source": {"id": "ns/a" if n % 2 else "ns/b"}, "metadata": {"v": n}} for n in range(5)]
    assert meili_client.wait_for_task(index.add_documents(docs, primary_key="id").task_uid).status == "succeeded"
    result = index.get_documents({"filter": 'source.id = "ns/a"', "fields": ["id", "metadata"], "limit": 1})
    assert result.total == 2 and [dict(d)["id"] for d in result.results] == ["p1"]


# --- payloads -------------------------------------------------------------------------------------------------


def test_content_type_and_payload_errors(meili: MeiliTarget, index_uid: str) -> None:
    path = f"/indexes/{index_uid}/documents"
    assert "application/json" in assert_error(meili.request("POST", path, content=b"[]"), 415, "missing_content_type")
    response = meili.request("POST", path, content=b"[]", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "invalid_content_type")
    json_type = {"Content-Type": "application/json"}
    assert_error(meili.request("POST", path, content=b'[{"id": 1,', headers=json_type), 400, "malformed_payload")
    assert_error(meili.request("POST", path, content=b"", headers=json_type), 400, "missing_payload")
    # Meilisearch 1.50 answers a non-object inside the array with a 500 `internal`, not a 400.
    response = meili.request("POST", path, content=b'["not an object"]', headers=json_type)
    assert_error(response, 500, "internal", "internal")
    # None of these reached the task queue.
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 404


# --- deletions ------------------------------------------------------------------------------------------------


def test_delete_by_filter_needs_filterable_attributes(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": "a", "space": "ENG"}, {"id": "b", "space": "ENG"}, {"id": "c"}])
    path = f"/indexes/{index_uid}/documents/delete"
    task = meili.run("POST", path, json={"filter": "space = ENG"})
    message = assert_task_failed(task, "invalid_document_filter")
    assert message.endswith(
        "Attribute `space` is not filterable. This index does not have configured filterable attributes.\n"
        "1:6 space = ENG"
    )
    assert task["details"] == {"providedIds": 0, "deletedDocuments": 0, "originalFilter": '"space = ENG"'}
    assert doc_ids(all_docs(meili, index_uid)) == {"a", "b", "c"}

    update_settings(meili, index_uid, {"filterableAttributes": ["space"]})
    task = meili.run("POST", path, json={"filter": "space = ENG"})
    assert (task["status"], task["details"]["deletedDocuments"]) == ("succeeded", 2)
    assert doc_ids(all_docs(meili, index_uid)) == {"c"}
    assert_error(meili.request("POST", path, json={"filter": "space ="}), 400, "invalid_document_filter")
    assert_error(meili.request("POST", path, json={}), 400, "missing_document_filter")


@pytest.mark.filterwarnings("ignore:The use of ids is depreciated:DeprecationWarning")
def test_delete_batch(meili: MeiliTarget, meili_client: meilisearch.Client, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1}, {"id": 2}, {"id": "three"}])
    task = meili.wait_task(meili_client.index(index_uid).delete_documents(["1", "three", "missing"]).task_uid)
    assert (task["type"], task["status"]) == ("documentDeletion", "succeeded")
    assert (task["details"]["providedIds"], task["details"]["deletedDocuments"]) == (3, 2)
    assert all_docs(meili, index_uid) == [{"id": 2}]
    missing = meili.run("POST", f"/indexes/{index_uid}_absent/documents/delete-batch", json=["x"])
    assert_task_failed(missing, "index_not_found")


def test_official_client_reports_a_missing_index(meili_client: meilisearch.Client, index_uid: str) -> None:
    with pytest.raises(MeilisearchApiError) as info:
        meili_client.get_index(index_uid)
    assert (info.value.code, info.value.status_code) == ("index_not_found", 404)


def test_put_replaces_the_top_level_fields_it_names_and_keeps_the_rest(meili: MeiliTarget, index_uid: str) -> None:
    """A partial update (how a run changes only a document's `permissions`): nested objects are replaced whole."""
    doc = {"id": "a", "title": "T", "metadata": {"v": 1}, "permissions": {"c0": ["*"], "fingerprint": "x"}}
    assert add_documents(meili, index_uid, [doc])["status"] == "succeeded"
    response = meili.request(
        "PUT", f"/indexes/{index_uid}/documents", params={"primaryKey": "id"},
        json=[{"id": "a", "permissions": {"c0": ["group:hr"]}}],
    )  # fmt: skip
    assert response.status_code == 202, response.text
    task = meili.wait_task(response.json()["taskUid"])
    assert task["status"] == "succeeded" and task["type"] == "documentAdditionOrUpdate"
    (stored,) = all_docs(meili, index_uid)
    assert stored == {"id": "a", "title": "T", "metadata": {"v": 1}, "permissions": {"c0": ["group:hr"]}}
    page = fetch(meili, index_uid, fields=["id", "permissions.c0"]).json()["results"]
    assert page == [{"id": "a", "permissions": {"c0": ["group:hr"]}}]  # a dotted field selects inside an object
