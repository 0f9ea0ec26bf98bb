"""Conformance: authentication, API keys (`/keys`), and requests authorized by a key's actions, index patterns
and expiry, as the operator's per-namespace keys will be."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import meilisearch
import pytest
from meilisearch.errors import MeilisearchApiError

from tests.meili.conftest import MeiliTarget, add_documents, assert_error, assert_task_failed, fetch, search

pytestmark = pytest.mark.meili
INVALID = "The provided API key is invalid."
# What the operator will grant a namespace on its own indexes.
NAMESPACE_ACTIONS = ["documents.*", "indexes.create", "indexes.get", "settings.get", "settings.update", "tasks.get"]


def test_health_needs_no_key(meili: MeiliTarget) -> None:
    response = httpx.get(f"{meili.url}/health", timeout=10)
    assert (response.status_code, response.json()) == (200, {"status": "available"})


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/indexes/x"), ("GET", "/tasks/0"), ("GET", "/keys"), ("POST", "/indexes/x/search")]
)
def test_missing_key_is_401_and_wrong_key_is_403(meili: MeiliTarget, method: str, path: str) -> None:
    def send(**headers: str) -> httpx.Response:
        return httpx.request(method, f"{meili.url}{path}", json={}, headers=headers, timeout=10)

    message = assert_error(send(), 401, "missing_authorization_header", "auth")
    assert message == "The Authorization header is missing. It must use the bearer authorization method."
    assert_error(send(Authorization=f"Basic {meili.key}"), 401, "missing_authorization_header", "auth")
    assert assert_error(send(Authorization="Bearer not-the-key"), 403, "invalid_api_key", "auth") == INVALID
    assert assert_error(send(Authorization="Bearer"), 403, "invalid_api_key", "auth") == INVALID


def test_official_client_reports_a_wrong_key(meili: MeiliTarget) -> None:
    with pytest.raises(MeilisearchApiError) as info:
        meilisearch.Client(meili.url, "definitely-wrong").get_index("x")
    assert (info.value.code, info.value.status_code) == ("invalid_api_key", 403)


def test_default_keys(meili: MeiliTarget, index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1, "title": "hello"}])
    page = meili.request("GET", "/keys", params={"limit": 100}).json()
    assert {"results", "offset", "limit", "total"} <= set(page)
    by_name = {k["name"]: k for k in page["results"]}
    search_key, admin_key = by_name["Default Search API Key"], by_name["Default Admin API Key"]
    assert (search_key["actions"], search_key["indexes"]) == (["search"], ["*"])
    assert (admin_key["actions"], admin_key["indexes"]) == (["*"], ["*"])
    assert [h["id"] for h in search(meili, index_uid, {"q": "hello"}, key=search_key["key"]).json()["hits"]] == [1]
    assert_error(fetch_as(meili, index_uid, search_key["key"]), 403, "invalid_api_key", "auth")
    assert meili.request("GET", "/keys", key=search_key["key"]).status_code == 403
    assert add_documents(meili, index_uid, [{"id": 2}], key=admin_key["key"])["status"] == "succeeded"
    assert meili.request("GET", "/keys", key=admin_key["key"]).status_code == 200  # `*` includes keys.*


def fetch_as(meili: MeiliTarget, uid: str, key: str) -> httpx.Response:
    return meili.request("POST", f"/indexes/{uid}/documents/fetch", json={}, key=key)


def test_key_lifecycle(meili: MeiliTarget, make_key: Callable[..., dict[str, Any]]) -> None:
    uid = str(uuid.uuid4())
    key = make_key(uid=uid, name="ns-a", actions=["search"], indexes=["products"], expiresAt="2090-11-13T00:00:00Z")
    assert list(key) == [
        "name",
        "description",
        "key",
        "uid",
        "actions",
        "indexes",
        "expiresAt",
        "createdAt",
        "updatedAt",
    ]
    assert (key["uid"], key["name"], key["description"], key["expiresAt"]) == (
        uid,
        "ns-a",
        None,
        "2090-11-13T00:00:00Z",
    )
    # The value is derived from the uid and the master key, as in Meilisearch: HMAC-SHA256, hex.
    assert key["key"] == hmac.new(meili.key.encode(), uid.encode(), hashlib.sha256).hexdigest()
    again = meili.request(
        "POST", "/keys", json={"uid": uid, "actions": ["search"], "indexes": ["*"], "expiresAt": None}
    )
    assert_error(again, 409, "api_key_already_exists")

    assert meili.request("GET", f"/keys/{uid}").json() == key
    assert meili.request("GET", f"/keys/{key['key']}").json()["uid"] == uid
    patched = meili.request("PATCH", f"/keys/{uid}", json={"description": "searches products", "name": None}).json()
    assert (patched["description"], patched["name"], patched["actions"]) == ("searches products", None, ["search"])
    message = assert_error(
        meili.request("PATCH", f"/keys/{uid}", json={"actions": ["*"]}), 400, "immutable_api_key_actions"
    )
    assert message == "Immutable field `actions`: expected one of `description`, `name`"

    assert meili.request("DELETE", f"/keys/{uid}").status_code == 204
    message = assert_error(meili.request("GET", f"/keys/{uid}"), 404, "api_key_not_found")
    assert message == f"API key `{uid}` not found."


def test_key_validation(meili: MeiliTarget) -> None:
    def create(**body: Any) -> httpx.Response:
        return meili.request("POST", "/keys", json=body)

    base: dict[str, Any] = {"actions": ["search"], "indexes": ["*"], "expiresAt": None}
    assert_error(create(**{**base, "actions": None}), 400, "invalid_api_key_actions")
    message = assert_error(create(indexes=["*"], expiresAt=None), 400, "missing_api_key_actions")
    assert message == "Missing field `actions`"
    assert_error(create(actions=["search"], expiresAt=None), 400, "missing_api_key_indexes")
    assert_error(create(actions=["search"], indexes=["*"]), 400, "missing_api_key_expires_at")
    message = assert_error(create(**{**base, "actions": ["doc.add"]}), 400, "invalid_api_key_actions")
    assert message.startswith("Unknown value `doc.add` at `.actions[0]`: expected one of `*`, `search`, `documents.*`")
    message = assert_error(create(**{**base, "indexes": ["bad index"]}), 400, "invalid_api_key_indexes")
    assert "`bad index` is not a valid index uid pattern" in message
    message = assert_error(create(**{**base, "expiresAt": "2010-11-13T00:00:00Z"}), 400, "invalid_api_key_expires_at")
    assert "`2010-11-13T00:00:00Z` is not a valid date" in message
    assert_error(create(**{**base, "uid": "aaaaabbbbbccc"}), 400, "invalid_api_key_uid")
    assert_error(create(**{**base, "foo": 1}), 400, "bad_request")


def test_a_key_is_limited_to_its_actions_and_index_patterns(
    meili: MeiliTarget, make_key: Callable[..., dict[str, Any]], new_index_uid: Callable[..., str]
) -> None:
    own, other = new_index_uid("ta_"), new_index_uid("tb_")
    pattern = f"{meili.prefix}ta_*"
    key = make_key(actions=NAMESPACE_ACTIONS, indexes=[pattern])["key"]
    # Its own indexes: created on first write, read, searched... not: `search` was not granted.
    task = add_documents(meili, own, [{"id": 1}], key=key)
    assert task["status"] == "succeeded"
    assert meili.request("GET", f"/tasks/{task['uid']}", key=key).status_code == 200
    assert fetch_as(meili, own, key).json()["results"] == [{"id": 1}]
    assert assert_error(search(meili, own, {"q": ""}, key=key), 403, "invalid_api_key", "auth") == INVALID
    # Another namespace's index: refused, naming the patterns the key has.
    message = assert_error(fetch_as(meili, other, key), 403, "invalid_api_key", "auth")
    assert message == f'The API key cannot acces the index `{other}`, authorized indexes are ["{pattern}"].'
    response = meili.request("POST", "/indexes", json={"uid": other}, key=key)
    assert assert_error(response, 403, "invalid_api_key", "auth") == INVALID
    # Tasks of indexes the key cannot see do not exist for it.
    theirs = add_documents(meili, other, [{"id": 2}])
    assert_error(meili.request("GET", f"/tasks/{theirs['uid']}", key=key), 404, "task_not_found")
    assert meili.request("GET", "/keys", key=key).status_code == 403


def test_a_key_without_indexes_create_cannot_create_by_writing(
    meili: MeiliTarget, make_key: Callable[..., dict[str, Any]], index_uid: str
) -> None:
    key = make_key(actions=["documents.add", "tasks.get"], indexes=["*"])["key"]
    assert_task_failed(add_documents(meili, index_uid, [{"id": 1}], key=key), "index_not_found")
    assert meili.request("GET", f"/indexes/{index_uid}").status_code == 404
    meili.run("POST", "/indexes", json={"uid": index_uid})
    assert add_documents(meili, index_uid, [{"id": 1}], key=key)["status"] == "succeeded"


def test_an_expired_key_is_refused(meili: MeiliTarget, make_key: Callable[..., dict[str, Any]], index_uid: str) -> None:
    add_documents(meili, index_uid, [{"id": 1}])
    expires = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    key = make_key(actions=["documents.get"], indexes=["*"], expiresAt=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))["key"]
    assert fetch(meili, index_uid).status_code == 200
    assert fetch_as(meili, index_uid, key).status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    assert assert_error(fetch_as(meili, index_uid, key), 403, "invalid_api_key", "auth") == INVALID
