"""REST v2 (Cloud): spaces, pages, blog posts, attachments, labels, comments, ancestors and tree types."""

from __future__ import annotations

from typing import Any

import httpx

from .confluence import ConfluenceEmulator, ConfluenceState
from .confluence_support import cloud, dc, gateway, make_space, v2_follow

__all__ = ["cloud", "dc", "gateway"]
Site = tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]


def v2(client: httpx.Client, emu: ConfluenceEmulator, path: str, **params: Any) -> httpx.Response:
    return client.get(emu.endpoint + "/api/v2" + path, params=params)


def test_spaces_by_key_and_status(cloud: Site) -> None:
    emu, state, client = cloud
    make_space(state, "ONE", 2)
    state.add_space("OLD", "Old stuff")
    state.archive_space("OLD")
    body = v2(client, emu, "/spaces", keys="ONE,OLD").json()
    by_key = {s["key"]: s for s in body["results"]}
    assert set(by_key) == {"ONE", "OLD"}
    one = by_key["ONE"]
    assert one["status"] == "current" and by_key["OLD"]["status"] == "archived"
    assert one["id"] == str(state.spaces["ONE"].id) and one["type"] == "global"
    assert one["homepageId"] == state.spaces["ONE"].homepage_id is not None
    assert body["_links"]["base"] == emu.endpoint and "next" not in body["_links"]
    assert v2(client, emu, "/spaces", keys="NOPE").json()["results"] == []
    assert [s["key"] for s in v2(client, emu, "/spaces", status="archived").json()["results"]] == ["OLD"]
    single = v2(client, emu, f"/spaces/{one['id']}").json()
    assert single["key"] == "ONE" and single["_links"]["base"] == emu.endpoint
    missing = v2(client, emu, "/spaces/1")
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found", "detail": None}]}


def test_pages_cursor_pagination_link_header_and_limits(cloud: Site) -> None:
    emu, state, client = cloud
    expected = make_space(state, "PG", 23)
    make_space(state, "OTHER", 2)
    space_id = str(state.spaces["PG"].id)
    bodies = v2_follow(client, emu.base_url, "/wiki/api/v2/pages", {"space-id": space_id, "limit": 10})
    assert [len(b["results"]) for b in bodies] == [10, 10, 3]
    assert [p["id"] for b in bodies for p in b["results"]] == expected
    nxt = bodies[0]["_links"]["next"]
    assert nxt.startswith("/wiki/api/v2/pages?") and "cursor=" in nxt and "start=" not in nxt
    over = v2(client, emu, "/pages", limit=251)
    assert over.status_code == 400 and over.json()["errors"][0]["code"] == "INVALID_REQUEST_PARAMETER"
    assert v2(client, emu, "/pages", limit=250).status_code == 200
    assert v2(client, emu, "/pages", cursor="garbage").status_code == 400
    newest = v2(client, emu, "/pages", **{"space-id": space_id, "sort": "-id", "limit": 1}).json()["results"]
    assert newest[0]["id"] == expected[-1]
    assert v2(client, emu, "/pages", sort="-banana").status_code == 400


def test_page_shapes_bodies_and_statuses(cloud: Site) -> None:
    emu, state, client = cloud
    state.add_space("SH", "Shapes")
    root = state.add_page("SH", "Root", "<p>root</p>", labels=["a", "b"])
    child = state.add_page("SH", "Child", "<p>child</p>", parent_id=root)
    gone = state.add_page("SH", "Gone", "<p/>")
    state.trash(gone)
    listed = v2(client, emu, "/pages", **{"space-id": str(state.spaces["SH"].id), "body-format": "storage"}).json()
    page = next(p for p in listed["results"] if p["id"] == child)
    assert page["body"] == {"storage": {"value": "<p>child</p>", "representation": "storage"}}
    assert page["parentId"] == root and page["parentType"] == "page" and page["spaceId"] == str(state.spaces["SH"].id)
    assert page["version"]["number"] == 1 and page["authorId"] == state.default_user.account_id
    assert page["_links"]["webui"].startswith("/spaces/SH/pages/")
    assert gone not in {p["id"] for p in listed["results"]}
    trashed = v2(client, emu, "/pages", status="trashed").json()["results"]
    assert [p["id"] for p in trashed] == [gone]
    bare = v2(client, emu, f"/pages/{root}").json()
    assert bare["body"] == {} and bare["_links"]["base"] == emu.endpoint
    labelled = v2(client, emu, f"/pages/{root}", **{"include-labels": "true"}).json()
    assert [x["name"] for x in labelled["labels"]["results"]] == ["a", "b"]
    labels = v2(client, emu, f"/pages/{root}/labels").json()
    assert [(x["name"], x["prefix"]) for x in labels["results"]] == [("a", "global"), ("b", "global")]
    assert v2(client, emu, f"/pages/{root}", **{"body-format": "atlas_doc_format"}).status_code == 400
    assert v2(client, emu, f"/blogposts/{root}").status_code == 404
    blog = state.add_blogpost("SH", "News", "<p>news</p>")
    blogs = v2(client, emu, "/blogposts", **{"body-format": "storage"}).json()["results"]
    assert [b["id"] for b in blogs] == [blog] and "parentId" not in blogs[0]
    assert v2(client, emu, f"/blogposts/{blog}").json()["title"] == "News"
    assert [b["id"] for b in v2(client, emu, f"/spaces/{state.spaces['SH'].id}/blogposts").json()["results"]] == [blog]
    tops = v2(client, emu, f"/spaces/{state.spaces['SH'].id}/pages", depth="root").json()["results"]
    assert [p["id"] for p in tops] == [root]


def test_attachments(cloud: Site) -> None:
    emu, state, client = cloud
    (page,) = make_space(state, "AT", 1)
    att = state.add_attachment(page, "notes.txt", b"12345", "text/plain", comment="c")
    state.add_attachment(page, "other.md", b"#", "text/markdown")
    listed = v2(client, emu, f"/pages/{page}/attachments").json()["results"]
    assert [a["title"] for a in listed] == ["notes.txt", "other.md"]
    single = v2(client, emu, f"/attachments/{att}").json()
    assert single["pageId"] == page and single["fileSize"] == 5 and single["mediaType"] == "text/plain"
    assert single["downloadLink"].startswith(f"/download/attachments/{page}/notes.txt?version=1")
    assert single["_links"]["download"] == single["downloadLink"]
    assert [
        a["title"] for a in v2(client, emu, f"/pages/{page}/attachments", mediaType="text/markdown").json()["results"]
    ] == ["other.md"]


def test_comments_footer_inline_and_replies(cloud: Site) -> None:
    emu, state, client = cloud
    (page,) = make_space(state, "CM", 1)
    bob = state.add_user("Bob", "bob@example.com")
    top = state.add_comment(page, "<p>question</p>", author=bob)
    reply = state.add_comment(page, "<p>answer</p>", reply_to=top)
    inline = state.add_comment(page, "<p>typo</p>", location="inline", selection="teh")
    state.resolve_comment(inline)
    footer = v2(client, emu, f"/pages/{page}/footer-comments", **{"body-format": "storage"}).json()["results"]
    assert [c["id"] for c in footer] == [top]
    assert footer[0]["pageId"] == page and footer[0]["body"]["storage"]["value"] == "<p>question</p>"
    assert footer[0]["version"]["authorId"] == bob.account_id
    children = v2(client, emu, f"/footer-comments/{top}/children").json()["results"]
    assert [(c["id"], c["parentCommentId"]) for c in children] == [(reply, top)]
    inl = v2(client, emu, f"/pages/{page}/inline-comments").json()["results"]
    assert [c["id"] for c in inl] == [inline]
    assert inl[0]["resolutionStatus"] == "resolved"
    assert inl[0]["properties"]["inline-original-selection"] == "teh"
    assert v2(client, emu, f"/pages/{page}/inline-comments", **{"resolution-status": "open"}).json()["results"] == []
    assert v2(client, emu, f"/inline-comments/{inline}").json()["id"] == inline
    assert v2(client, emu, f"/footer-comments/{inline}").status_code == 404
    state.update_comment(top, "<p>question, edited</p>")
    assert v2(client, emu, f"/footer-comments/{top}").json()["version"]["number"] == 2
    blog = state.add_blogpost("CM", "Post", "<p/>")
    on_blog = state.add_comment(blog, "<p>nice</p>")
    blog_comments = v2(client, emu, f"/blogposts/{blog}/footer-comments").json()["results"]
    assert [(c["id"], c["blogPostId"]) for c in blog_comments] == [(on_blog, blog)]


def test_tree_types_and_ancestors(cloud: Site) -> None:
    emu, state, client = cloud
    state.add_space("TR", "Tree")
    home = state.add_page("TR", "Home", "<p/>")
    folder = state.add_folder("TR", "Runbooks", parent_id=home)
    page = state.add_page("TR", "Deploy", "<p/>", parent_id=folder)
    board = state.add_whiteboard("TR", "Board", parent_id=page)
    db = state.add_database("TR", "Inventory", parent_id=folder)
    link = state.add_smart_link("TR", "Dashboard", "https://grafana.example.com/d/1", parent_id=home)
    ancestors = v2(client, emu, f"/pages/{page}/ancestors").json()
    assert ancestors["results"] == [{"id": home, "type": "page"}, {"id": folder, "type": "folder"}]
    nearest = v2(client, emu, f"/whiteboards/{board}/ancestors", limit=1).json()["results"]
    assert nearest == [{"id": page, "type": "page"}]
    f = v2(client, emu, f"/folders/{folder}").json()
    assert (f["type"], f["title"], f["parentId"], f["parentType"]) == ("folder", "Runbooks", home, "page")
    assert v2(client, emu, f"/databases/{db}").json()["parentType"] == "folder"
    assert v2(client, emu, f"/whiteboards/{board}").json()["type"] == "whiteboard"
    assert v2(client, emu, f"/embeds/{link}").json()["embedUrl"] == "https://grafana.example.com/d/1"
    assert v2(client, emu, f"/folders/{page}").status_code == 404
    assert v2(client, emu, f"/pages/{page}").json()["parentType"] == "folder"


def test_v2_is_cloud_only(dc: Site) -> None:
    emu, state, client = dc
    make_space(state, "D", 1)
    assert client.get(emu.endpoint + "/api/v2/pages").status_code == 404


def test_v2_links_are_relative_to_the_site_through_the_gateway(gateway: Site) -> None:
    emu, state, client = gateway
    make_space(state, "GV", 5)
    first = client.get(emu.gateway_endpoint + "/api/v2/pages", params={"limit": 2})
    nxt = first.json()["_links"]["next"]
    assert nxt.startswith("/wiki/api/v2/pages?") and first.json()["_links"]["base"] == emu.endpoint
    assert first.headers["Link"] == f'<{nxt}>; rel="next"'
    gateway_root = emu.gateway_endpoint.removesuffix("/wiki")
    bodies = v2_follow(client, gateway_root, "/wiki/api/v2/pages", {"limit": 2})
    assert sum(len(b["results"]) for b in bodies) == 5
