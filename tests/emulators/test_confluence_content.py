"""Content that changes without a new version, comments, Cloud tree types in CQL, archived spaces, ORDER BY,
Data Center's past-the-end pagination and the rate-limit header variants (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .confluence import ConfluenceEmulator, ConfluenceState
from .confluence_support import cloud, dc, make_space, search, site, titles

__all__ = ["cloud", "dc", "site"]
Site = tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]


def test_labels_moves_and_restrictions_change_without_a_new_version(site: Site) -> None:
    emu, state, client = site
    state.set_now(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    make_space(state, "MV", 0)
    a = state.add_page("MV", "A", "<p/>")
    b = state.add_page("MV", "B", "<p/>")
    page = state.add_page("MV", "Leaf", "<p/>", parent_id=a, labels=["old"])
    state.set_now(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    state.set_labels(page, ["new", "Fresh"])
    state.reparent(page, b)
    state.set_restrictions(page, update_users=[state.default_user])
    item = client.get(
        f"{emu.endpoint}/rest/api/content/{page}", params={"expand": "version,ancestors,metadata.labels"}
    ).json()
    assert item["version"]["number"] == 1
    assert datetime.fromisoformat(item["version"]["when"]) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert [x["name"] for x in item["metadata"]["labels"]["results"]] == ["new", "fresh"]
    assert [x["id"] for x in item["ancestors"]] == [b]
    # A lastmodified window after the metadata change does not find the page: nothing dated it.
    assert titles(search(client, emu, 'space = MV and lastmodified >= "2026-03-02"')) == []
    assert titles(search(client, emu, "space = MV and label = new")) == ["Leaf"]
    assert titles(search(client, emu, f"ancestor = {b}")) == ["Leaf"]
    with pytest.raises(ValueError, match="below itself"):
        state.reparent(b, page)


def test_v1_comments_locations_depth_and_cql(site: Site) -> None:
    emu, state, client = site
    (page,) = make_space(state, "CO", 1)
    bob = state.add_user("Bob Comment", "bobc@example.com")
    top = state.add_comment(page, "<p>footer</p>", author=bob)
    reply = state.add_comment(page, "<p>reply</p>", reply_to=top)
    inline = state.add_comment(page, "<p>inline</p>", location="inline", selection="word")
    url = f"{emu.endpoint}/rest/api/content/{page}/child/comment"
    root = client.get(url, params={"expand": "body.storage,extensions.inlineProperties,version"}).json()
    assert [c["id"] for c in root["results"]] == [top, inline]
    first = root["results"][0]
    assert first["type"] == "comment" and first["body"]["storage"]["value"] == "<p>footer</p>"
    assert first["extensions"]["location"] == "footer" and first["version"]["by"]["displayName"] == "Bob Comment"
    assert root["results"][1]["extensions"]["inlineProperties"]["originalSelection"] == "word"
    assert [c["id"] for c in client.get(url, params={"location": "inline"}).json()["results"]] == [inline]
    deep = [c["id"] for c in client.get(url, params={"depth": "all"}).json()["results"]]
    # Data Center returns replies with depth=all; Cloud documents depth as unused (root comments only).
    assert deep == ([top, inline] if emu.edition == "cloud" else [top, reply, inline])
    hits = search(client, emu, f"type = comment and container = {page}", expand="container,ancestors").json()
    assert {h["id"] for h in hits["results"]} == {top, reply, inline}
    answered = next(h for h in hits["results"] if h["id"] == reply)
    assert answered["container"]["id"] == page and [x["id"] for x in answered["ancestors"]] == [top]
    assert titles(search(client, emu, f"container = {page} and type = attachment")) == []


def test_cloud_tree_types_in_cql_and_v1_ancestors(cloud: Site) -> None:
    emu, state, client = cloud
    state.add_space("FT", "Folders")
    folder = state.add_folder("FT", "Specs")
    page = state.add_page("FT", "Spec", "<p/>", parent_id=folder)
    state.add_whiteboard("FT", "Sketch", parent_id=page)
    state.add_database("FT", "Tracker")
    state.add_smart_link("FT", "Board", "https://example.com/board")
    kinds = search(client, emu, "space = FT and type in (folder, whiteboard, database, embed)").json()["results"]
    assert sorted(k["type"] for k in kinds) == ["database", "embed", "folder", "whiteboard"]
    item = client.get(f"{emu.endpoint}/rest/api/content/{page}", params={"expand": "ancestors"}).json()
    assert [(a["id"], a["type"]) for a in item["ancestors"]] == [(folder, "folder")]
    assert titles(search(client, emu, f"ancestor = {folder} and type = page")) == ["Spec"]


def test_archived_space_is_empty_in_content_search_whatever_the_flag(site: Site) -> None:
    emu, state, client = site
    make_space(state, "AR", 3)
    state.archive_space("AR")
    assert titles(search(client, emu, "space = AR")) == []
    assert titles(search(client, emu, "space = AR", includeArchivedSpaces="true")) == []
    generic = emu.endpoint + "/rest/api/search"
    assert client.get(generic, params={"cql": "space = AR"}).json()["totalSize"] == 0
    archived = client.get(generic, params={"cql": "space = AR", "includeArchivedSpaces": "true"}).json()
    assert archived["totalSize"] == 3
    only = client.get(
        generic, params={"cql": "type = page", "includeArchivedSpaces": "true", "excludeCurrentSpaces": "true"}
    ).json()
    assert only["totalSize"] == 3
    assert client.get(emu.endpoint + "/rest/api/space/AR").json()["status"] == "archived"


def test_order_by_refuses_multi_valued_fields(site: Site) -> None:
    emu, state, client = site
    make_space(state, "OB", 3)
    for cql in ("space = OB order by label", "space = OB order by ancestor"):
        refused = search(client, emu, cql)
        assert refused.status_code == 400, cql
        assert refused.json()["message"] == f"Could not parse cql : {cql}"
    assert search(client, emu, "space = OB order by id desc").status_code == 200
    assert titles(search(client, emu, "space = OB order by space, title desc"))[0] == "OB page 2"


def _walk(client: httpx.Client, url: str, params: dict[str, Any]) -> tuple[list[str], int]:
    """A client that stops when a page brings no new ids (and never loops)."""
    seen: list[str] = []
    response = client.get(url, params=params)
    requests = 1
    while True:
        body = response.json()
        fresh = [r["id"] for r in body["results"] if r["id"] not in seen]
        seen += fresh
        nxt = body["_links"].get("next")
        if not nxt or not fresh:
            return seen, requests
        response = client.get(body["_links"]["base"] + nxt)
        requests += 1


def test_dc_pages_past_the_end(dc: Site) -> None:
    """CONFSERVER-95396: above 200 items the listing keeps answering full pages and a next link."""
    emu, state, client = dc
    expected = make_space(state, "BIG", 228)
    make_space(state, "SMALL", 30)
    state.dc_past_end = True
    url = emu.endpoint + "/rest/api/content"
    tail = client.get(url, params={"spaceKey": "BIG", "start": 200, "limit": 50}).json()
    assert tail["size"] == 50 and tail["_links"]["next"].endswith("start=250")
    beyond = client.get(url, params={"spaceKey": "BIG", "start": 250, "limit": 50}).json()
    assert beyond["size"] == 50 and "next" in beyond["_links"]
    assert {r["id"] for r in beyond["results"]} <= set(expected)
    seen, requests = _walk(client, url, {"spaceKey": "BIG", "limit": 50})
    assert sorted(seen) == sorted(expected) and requests == 6
    small = client.get(url, params={"spaceKey": "SMALL", "start": 25, "limit": 10}).json()
    assert small["size"] == 5 and "next" not in small["_links"]
    searched, _ = _walk(client, emu.endpoint + "/rest/api/content/search", {"cql": "space = BIG", "limit": 100})
    assert len(searched) == 228


def test_rate_limit_variants(site: Site) -> None:
    emu, state, client = site
    url = emu.endpoint + "/rest/api/content/search"
    params = {"cql": "type = page"}
    state.rate_limit_next = 1
    state.rate_limit_style = "reset_only"
    state.retry_after = "30"
    limited = client.get(url, params=params)
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    reset = datetime.strptime(limited.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    assert timedelta(seconds=-30) < reset - datetime.now(UTC) < timedelta(seconds=31)
    state.rate_limit_style = "retry_after"
    state.rate_limit_next = 1
    state.retry_after = "9223372036854775807"
    absurd = client.get(url, params=params)
    assert absurd.status_code == 429 and absurd.headers["Retry-After"] == "9223372036854775807"
    assert datetime.strptime(absurd.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%MZ").year > 2030
    state.near_limit_next = 2
    warned = [client.get(url, params=params) for _ in range(3)]
    assert [r.status_code for r in warned] == [200, 200, 200]
    assert [r.headers.get("X-RateLimit-NearLimit") for r in warned] == ["true", "true", None]
