"""Conformance: tenant tokens, the JWTs document-level permissions will hand to searchers.

A token is signed (HS256) with an API key's value; its `searchRules` filter is ANDed with the query's own filter,
so a query cannot widen what the token lets it see. Every refusal is a 403 `invalid_api_key`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import meilisearch
import pytest

from tests.meili.conftest import MeiliTarget, add_documents, assert_error, doc_ids, search, update_settings

pytestmark = pytest.mark.meili
INVALID = "The provided API key is invalid."
DOCS = [
    {"id": "pub", "title": "Handbook", "permissions": {"public": True, "users": [], "groups": []}},
    {"id": "alice", "title": "Alice notes", "permissions": {"public": False, "users": ["alice"], "groups": []}},
    {"id": "eng", "title": "Eng plans", "permissions": {"public": False, "users": [], "groups": ["eng", "ops"]}},
]
ALICE = "permissions.public = true OR permissions.users = alice OR permissions.groups IN [hr]"


def token(key: dict[str, Any], rules: Any, **claims: Any) -> str:
    payload = {"searchRules": rules, "apiKeyUid": key["uid"], **claims}
    return jwt.encode(payload, key["key"], algorithm="HS256")


@pytest.fixture
def docs_index(meili: MeiliTarget, new_index_uid: Callable[..., str]) -> str:
    uid = new_index_uid("tt_")
    update_settings(meili, uid, {"filterableAttributes": ["permissions"]})
    assert add_documents(meili, uid, DOCS)["status"] == "succeeded"
    return uid


@pytest.fixture
def search_key(meili: MeiliTarget, make_key: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_key(actions=["search"], indexes=[f"{meili.prefix}tt_*"])


def hits(meili: MeiliTarget, uid: str, tok: str, **body: Any) -> set[str]:
    response = search(meili, uid, {"q": "", **body}, key=tok)
    assert response.status_code == 200, response.text
    return doc_ids(response.json()["hits"])


def refused(meili: MeiliTarget, uid: str, tok: str) -> str:
    return assert_error(search(meili, uid, {"q": ""}, key=tok), 403, "invalid_api_key", "auth")


def test_the_rule_filter_is_anded_with_the_query(
    meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]
) -> None:
    tok = token(search_key, {docs_index: {"filter": ALICE}})
    assert hits(meili, docs_index, tok) == {"pub", "alice"}
    assert hits(meili, docs_index, tok, filter="permissions.public = false") == {"alice"}
    # The query cannot widen what the token lets it see.
    assert hits(meili, docs_index, tok, filter="permissions.groups = eng OR permissions.public = true") == {"pub"}
    assert hits(meili, docs_index, tok, filter=["permissions.groups = eng"]) == set()
    assert hits(meili, docs_index, tok, q="plans") == set()


def test_rule_forms(meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]) -> None:
    assert hits(meili, docs_index, token(search_key, [docs_index])) == {"pub", "alice", "eng"}
    assert hits(meili, docs_index, token(search_key, ["*"])) == {"pub", "alice", "eng"}
    assert hits(meili, docs_index, token(search_key, {"*": None})) == {"pub", "alice", "eng"}
    array_filter = {"*": {"filter": ["permissions.public = false", ["permissions.users = alice", "x = y"]]}}
    assert hits(meili, docs_index, token(search_key, {"*": {"filter": "permissions.public = true"}})) == {"pub"}
    # The most specific pattern wins over `*`.
    rules = {"*": {"filter": "permissions.public = true"}, docs_index: {"filter": "permissions.groups = ops"}}
    assert hits(meili, docs_index, token(search_key, rules)) == {"eng"}
    assert_error(search(meili, docs_index, {}, key=token(search_key, array_filter)), 400, "invalid_search_filter")


def test_official_client_tokens(meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]) -> None:
    client = meilisearch.Client(meili.url, search_key["key"])
    tok = client.generate_tenant_token(search_key["uid"], {docs_index: {"filter": "permissions.users = alice"}})
    assert [h["id"] for h in meilisearch.Client(meili.url, tok).index(docs_index).search("")["hits"]] == ["alice"]


def test_a_token_is_accepted_on_search_routes_only(
    meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]
) -> None:
    tok = token(search_key, ["*"])
    response = meili.request("POST", f"/indexes/{docs_index}/documents/fetch", json={}, key=tok)
    assert assert_error(response, 403, "invalid_api_key", "auth") == INVALID


def test_an_expired_token(meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]) -> None:
    exp = int(time.time()) - 10
    message = refused(meili, docs_index, token(search_key, ["*"], exp=exp))
    assert message.startswith(f"Tenant token expired. Was valid up to `{exp}` and we're now `")
    assert hits(meili, docs_index, token(search_key, ["*"], exp=int(time.time()) + 600)) == {"pub", "alice", "eng"}


def test_a_bad_signature(meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]) -> None:
    forged = jwt.encode({"searchRules": ["*"], "apiKeyUid": search_key["uid"]}, "x" * 64, algorithm="HS256")
    assert refused(meili, docs_index, forged) == "Could not decode tenant token, InvalidSignature."


def test_a_deleted_key_takes_its_tokens_with_it(
    meili: MeiliTarget, docs_index: str, make_key: Callable[..., dict[str, Any]]
) -> None:
    key = make_key(actions=["search"], indexes=["*"])
    tok = token(key, ["*"])
    assert hits(meili, docs_index, tok) == {"pub", "alice", "eng"}
    assert meili.request("DELETE", f"/keys/{key['uid']}").status_code == 204
    assert refused(meili, docs_index, tok) == INVALID
    unknown = {"uid": str(uuid.uuid4()), "key": key["key"]}
    assert refused(meili, docs_index, token(unknown, ["*"])) == "Could not decode tenant token, InvalidSignature."


def test_the_parent_key_bounds_the_token(
    meili: MeiliTarget, docs_index: str, make_key: Callable[..., dict[str, Any]]
) -> None:
    elsewhere = make_key(actions=["search"], indexes=["some-other-index"])
    message = refused(meili, docs_index, token(elsewhere, ["*"]))
    assert message == f"The API key used to generate this tenant token cannot acces the index `{docs_index}`."
    no_search = make_key(actions=["documents.get"], indexes=["*"])
    assert refused(meili, docs_index, token(no_search, ["*"])) == INVALID


def test_the_token_bounds_the_indexes(meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]) -> None:
    message = refused(meili, docs_index, token(search_key, ["b-index", "a-index"]))
    allowed = '["a-index", "b-index"]'
    assert message == f"The provided tenant token cannot acces the index `{docs_index}`, allowed indexes are {allowed}."


def test_malformed_claims(meili: MeiliTarget, docs_index: str, search_key: dict[str, Any]) -> None:
    payload = {"apiKeyUid": search_key["uid"]}
    tok = jwt.encode(payload, search_key["key"], algorithm="HS256")
    column = len(json.dumps(payload, separators=(",", ":")))
    message = refused(meili, docs_index, tok)
    assert (
        message == f"Could not decode tenant token, JSON error: missing field `searchRules` at line 1 column {column}."
    )
    tok = jwt.encode({"searchRules": "kefir"}, search_key["key"], algorithm="HS256")
    message = refused(meili, docs_index, tok)
    assert message == (
        "Could not decode tenant token, JSON error: data did not match any variant of untagged enum SearchRules at "
        "line 1 column 23."
    )
