"""Conformance: index settings, their validation, and what embedders demand of documents in Meilisearch 1.50."""

from __future__ import annotations

import meilisearch
import pytest

from tests.meili.conftest import (
    MeiliTarget,
    add_documents,
    all_docs,
    assert_error,
    assert_task_failed,
    doc_ids,
    search,
    update_settings,
)

pytestmark = pytest.mark.meili

MANUAL = {"manual": {"source": "userProvided", "dimensions": 3}}


def test_defaults_updates_and_resets(meili: MeiliTarget, index_uid: str) -> None:
    meili.run("POST", "/indexes", json={"uid": index_uid, "primaryKey": "id"})
    settings = meili.request("GET", f"/indexes/{index_uid}/settings").json()
    assert settings["searchableAttributes"] == ["*"]
    assert settings["filterableAttributes"] == [] and settings["sortableAttributes"] == []
    # Meilisearch 1.50 split `attribute` into `attributeRank` and `wordPosition`.
    assert settings["rankingRules"] == [
        "words",
        "typo",
        "proximity",
        "attributeRank",
        "sort",
        "wordPosition",
        "exactness",
    ]
    assert settings["embedders"] == {}

    task = update_settings(meili, index_uid, {"filterableAttributes": ["a"], "sortableAttributes": ["b"]})
    assert (task["status"], task["details"]) == (
        "succeeded",
        {"filterableAttributes": ["a"], "sortableAttributes": ["b"]},
    )
    update_settings(meili, index_uid, {"searchableAttributes": ["title", "body"]})
    settings = meili.request("GET", f"/indexes/{index_uid}/settings").json()
    assert (settings["filterableAttributes"], settings["sortableAttributes"]) == (["a"], ["b"])
    assert settings["searchableAttributes"] == ["title", "body"]
    assert meili.request("GET", f"/indexes/{index_uid}/settings/filterable-attributes").json() == ["a"]

    update_settings(meili, index_uid, {"filterableAttributes": None, "searchableAttributes": None})
    settings = meili.request("GET", f"/indexes/{index_uid}/settings").json()
    assert (settings["filterableAttributes"], settings["searchableAttributes"]) == ([], ["*"])
    assert settings["sortableAttributes"] == ["b"]


def test_validation_is_synchronous(meili: MeiliTarget, index_uid: str) -> None:
    path = f"/indexes/{index_uid}/settings"
    assert "Unknown field `foo`" in assert_error(meili.request("PATCH", path, json={"foo": 1}), 400, "bad_request")
    response = meili.request("PATCH", path, json={"filterableAttributes": "space"})
    assert "expected an array" in assert_error(response, 400, "invalid_settings_filterable_attributes")
    response = meili.request("PATCH", path, json={"rankingRules": ["words", "nope"]})
    assert "`nope` ranking rule is invalid" in assert_error(response, 400, "invalid_settings_ranking_rules")
    response = meili.request("PATCH", path, json={"embedders": {"e": {"source": "nope"}}})
    assert_error(response, 400, "invalid_settings_embedders")
    assert_error(meili.request("PATCH", path, content=b"{}"), 415, "missing_content_type")
    # Nothing was enqueued, so the index was never created.
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 404


def test_a_settings_update_creates_the_index(meili: MeiliTarget, index_uid: str) -> None:
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
    assert index.get_settings()["filterableAttributes"] == ["space"]
    docs = [{"id": f"p{n}", "title": f"Page number {n}", "space": "ENG" if n % 2 else "OPS", "n": n} for n in range(6)]
    assert client.wait_for_task(index.add_documents(docs).task_uid).status == "succeeded"
    hits = index.search("page", {"filter": "space = OPS", "sort": ["n:desc"]})["hits"]
    assert [h["id"] for h in hits] == ["p4", "p2", "p0"]
    assert client.wait_for_task(client.delete_index(index_uid).task_uid).status == "succeeded"


# --- embedders ------------------------------------------------------------------------------------------------


def test_a_user_provided_embedder_needs_vectors_in_every_document(meili: MeiliTarget, index_uid: str) -> None:
    assert update_settings(meili, index_uid, {"embedders": MANUAL})["status"] == "succeeded"
    embedders = meili.request("GET", f"/indexes/{index_uid}/settings/embedders").json()
    assert embedders["manual"]["source"] == "userProvided" and embedders["manual"]["dimensions"] == 3

    task = add_documents(meili, index_uid, [{"id": 1, "_vectors": {"manual": [0.1, 0.2, 0.3]}}, {"id": 2}, {"id": 3}])
    message = assert_task_failed(task, "vector_embedding_error")
    # Which document is named first may vary with a real server's indexing threads.
    head = f"Index `{index_uid}`: While embedding documents for embedder `manual`: no vectors provided for document `"
    assert message.startswith(head) and message[len(head)] in "23"
    assert message.endswith(
        "\n- Note: `manual` has `source: userProvided`, so documents must provide embeddings as an array in "
        "`_vectors.manual`.\n- Hint: opt-out for a document with `_vectors.manual: null`"
    )
    assert task["details"] == {"receivedDocuments": 3, "indexedDocuments": 0}
    assert all_docs(meili, index_uid) == []

    # `_vectors.<name>: null` opts a document out.
    docs = [{"id": 1, "_vectors": {"manual": [0.1, 0.2, 0.3]}}, {"id": 2, "title": "x", "_vectors": {"manual": None}}]
    assert add_documents(meili, index_uid, docs)["status"] == "succeeded"
    assert doc_ids(all_docs(meili, index_uid)) == {"1", "2"}
    # Vectors are not part of a document as returned, unless asked for.
    assert {"id": 2, "title": "x"} in all_docs(meili, index_uid)
    assert search(meili, index_uid, {"q": "x"}).json()["hits"] == [{"id": 2, "title": "x"}]
    assert search(meili, index_uid, {"q": "0"}).json()["hits"] == []  # nor are they searchable


def test_vectors_of_the_wrong_dimension_fail_the_task(meili: MeiliTarget, index_uid: str) -> None:
    update_settings(meili, index_uid, {"embedders": MANUAL})
    task = add_documents(meili, index_uid, [{"id": 1, "_vectors": {"manual": [0.1, 0.2]}}])
    assert task["status"] == "failed" and task["error"]["code"] in ("invalid_vector_dimensions", "invalid_vectors_type")
    assert all_docs(meili, index_uid) == []


def test_a_user_provided_embedder_needs_dimensions(meili: MeiliTarget, index_uid: str) -> None:
    body = {"embedders": {"manual": {"source": "userProvided"}}}
    response = meili.request("PATCH", f"/indexes/{index_uid}/settings", json=body)
    # Checked when the task runs (earlier versions refused the request itself).
    if response.status_code == 202:
        message = assert_task_failed(meili.wait_task(response.json()["taskUid"]), "invalid_settings_embedders")
    else:
        message = assert_error(response, 400, "invalid_settings_embedders")
    assert "`.embedders.manual`: Missing field `dimensions`" in message
