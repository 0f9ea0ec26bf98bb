"""Whole runs over the content of a 2026 Confluence (issue 14): comments, folders and the other tree types,
excluded labels, and metadata that changes without a new version."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.sync import SyncRequest, SyncResult, run_sync
from coco_operator.sync.plan import Listing
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState
from tests.hostile.server import HostileServer
from tests.sync.conftest import DC_PAT, MeiliServer, make_spec, settings_for, sync

pytestmark = pytest.mark.meili

DS = "ns/wiki"


def _docs(meili: MeiliServer, index: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["content_id"]: d for d in meili.docs(index, DS)}


def _search(meili: MeiliServer, index: str, text: str) -> list[dict[str, Any]]:
    res = meili.client().index(index).search(text, {"filter": f'source.id = "{DS}"'})
    return list(res["hits"])


def _hour_later(result: SyncResult) -> SyncResult:
    """What the next run sees once the prune interval has passed since `result`'s complete listing."""
    assert result.listing.last_prune is not None
    return dataclasses.replace(
        result, listing=Listing(last_prune=result.listing.last_prune - timedelta(hours=2), total=result.listing.total)
    )


def _cql_of(emu: ConfluenceEmulator) -> list[str]:
    return [r.query.get("cql", "") for r in emu.state.requests if "search" in r.path]


async def test_comments_are_searchable_follow_edits_and_go_with_their_page(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = confluence.state
    state.add_space("COM", "Comments")
    alice = state.add_user("Alice Author", "alice@example.com")
    root = state.add_page("COM", "Handbook", "<p>root</p>")
    page = state.add_page("COM", "Deploys", "<p>how we deploy</p>", parent_id=root)
    post = state.add_blogpost("COM", "Release notes", "<p>new things</p>")
    footer = state.add_comment(page, "<p>Remember the narwhal checklist</p>", author=alice)
    reply = state.add_comment(page, "<p>Checklist updated for walruses</p>", reply_to=footer)
    inline = state.add_comment(page, "<p>Is this step still needed?</p>", location="inline", selection="how we")
    on_post = state.add_comment(post, "<p>Great release, dolphins rejoice</p>")
    # Requests are counted without the permissions step (tests/sync/test_permissions_sync.py covers comments there).
    spec = make_spec(confluence, "COM", permissions="none", enable_comments=True, enable_blogposts=True)

    full = await sync(confluence, meili_server, index, spec)
    assert full.succeeded, full.error
    assert (full.counts.pages, full.counts.blogposts, full.counts.comments) == (2, 1, 4)
    docs = _docs(meili_server, index)
    comment = docs[footer]
    assert comment["type"] == "comment" and "narwhal checklist" in comment["content"]
    assert comment["categories"] == ["Handbook", "Deploys"] and comment["category"] == "Comments"
    assert f"focusedCommentId={footer}" in comment["url"] and comment["url"].startswith(confluence.endpoint)
    assert comment["owner"]["username"] == "Alice Author"
    assert comment["metadata"]["container_id"] == page and comment["metadata"]["location"] == "footer"
    assert docs[reply]["metadata"]["reply_to"] == footer
    assert docs[inline]["metadata"]["location"] == "inline" and docs[inline]["metadata"]["selection"] == "how we"
    assert docs[on_post]["categories"] == ["Release notes"]
    assert [h["metadata"]["content_id"] for h in _search(meili_server, index, "narwhal")] == [footer]

    # Nothing changed: comments cost no request of their own (space, count, changed window).
    quiet = await sync(confluence, meili_server, index, spec, previous=full)
    assert quiet.succeeded and quiet.requests == 3 and quiet.counts.comments == 0, quiet.requests

    state.update_comment(footer, "<p>Remember the orca checklist</p>")
    state.purge(inline)  # a deleted comment: the count drops, so the run lists everything and prunes it
    edited = await sync(confluence, meili_server, index, spec, previous=quiet)
    assert edited.succeeded, edited.error
    assert edited.counts.comments == 1 and edited.counts.deleted == 1
    assert _search(meili_server, index, "narwhal") == []
    assert [h["metadata"]["content_id"] for h in _search(meili_server, index, "orca")] == [footer]

    state.purge(page)  # its comments go with it
    gone = await sync(confluence, meili_server, index, spec, previous=edited)
    assert gone.succeeded and gone.counts.deleted == 3  # the page, the comment and the reply
    assert set(_docs(meili_server, index)) == {root, post, on_post}


async def test_comments_of_pages_out_of_scope_are_not_indexed(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    """A filter written for pages does not apply to comments' own fields: comments follow their page."""
    state = cloud.state
    state.add_space("FIL", "Filtered")
    kept = state.add_page("FIL", "Kept", "<p>kept</p>")
    hidden = state.add_page("FIL", "Hidden", "<p>hidden</p>", labels=["draft"])
    state.add_comment(kept, "<p>on the kept page</p>")
    state.add_comment(hidden, "<p>on the hidden page</p>")
    spec = make_spec(cloud, "FIL", enable_comments=True, cql='label != "draft"')
    result = await sync(cloud, meili_server, index, spec)
    assert result.succeeded, result.error
    docs = _docs(meili_server, index)
    assert hidden not in docs and result.counts.comments == 1
    assert [d["content"] for d in docs.values() if d["type"] == "comment"] == ["on the kept page"]


async def test_a_page_under_a_folder_has_the_folder_in_its_categories(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = cloud.state
    state.add_space("TREE", "Tree")
    folder = state.add_folder("TREE", "Runbooks")
    inner = state.add_folder("TREE", "Databases", parent_id=folder)
    page = state.add_page("TREE", "Postgres failover", "<p>promote the replica</p>", parent_id=inner)
    board = state.add_whiteboard("TREE", "Architecture board", parent_id=folder)
    table = state.add_database("TREE", "Service catalog")
    link = state.add_smart_link("TREE", "Status page", "https://status.example.com", parent_id=folder)
    under_board = state.add_page("TREE", "Board notes", "<p>notes</p>", parent_id=board)

    hierarchy = await sync(cloud, meili_server, index, make_spec(cloud, "TREE"))
    assert hierarchy.succeeded, hierarchy.error
    docs = _docs(meili_server, index)
    assert set(docs) == {page, under_board}  # tree items are hierarchy only unless enabled
    assert docs[page]["categories"] == ["Runbooks", "Databases"]
    assert docs[under_board]["categories"] == ["Runbooks", "Architecture board"]

    spec = make_spec(cloud, "TREE", enable_tree_items=True)
    indexed = await sync(cloud, meili_server, index, spec, ds_id="ns/tree")
    assert indexed.succeeded, indexed.error
    assert indexed.counts.pages == 2 and indexed.counts.treeItems == 5
    tree = {d["metadata"]["content_id"]: d for d in meili_server.docs(index, "ns/tree")}
    kinds = {cid: tree[cid]["type"] for cid in (folder, inner, board, table, link)}
    assert kinds == {folder: "folder", inner: "folder", board: "whiteboard", table: "database", link: "embed"}
    assert tree[inner]["title"] == "Databases" and tree[inner]["categories"] == ["Runbooks"]
    assert tree[board]["content"] == "" and tree[board]["url"].startswith(cloud.endpoint)


async def test_tree_items_are_cloud_only(
    dc_emulator: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    """Data Center has no folders: the flag asks for nothing more there."""
    dc_emulator.state.add_space("DCT", "DC")
    dc_emulator.state.add_page("DCT", "Only page", "<p>x</p>")
    result = await sync(dc_emulator, meili_server, index, make_spec(dc_emulator, "DCT", enable_tree_items=True))
    assert result.succeeded and result.counts.pages == 1 and result.counts.treeItems == 0
    assert not any("folder" in cql for cql in _cql_of(dc_emulator))


async def test_a_label_added_without_a_new_version_reaches_tags(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = confluence.state
    state.add_space("LAB", "Labels")
    pages = [state.add_page("LAB", f"Page {i}", f"<p>{i}</p>") for i in range(30)]
    # Without the permissions step: its restrictions sweep is a listing with metadata on every incremental run.
    spec = make_spec(confluence, "LAB", permissions="none")
    first = await sync(confluence, meili_server, index, spec)
    state.set_labels(pages[3], ["runbook", "oncall"])  # no new version, lastmodified unchanged
    # Between complete listings nothing shows the change (the count and the window are the same).
    between = await sync(confluence, meili_server, index, spec, previous=first)
    assert between.requests == 3 and _docs(meili_server, index)[pages[3]]["tags"] == []
    # The run that lists every id (at least once per prune interval) carries labels and fetches what differs.
    refreshed = await sync(confluence, meili_server, index, spec, previous=_hour_later(between))
    assert refreshed.succeeded, refreshed.error
    assert refreshed.counts.pages == 1 and refreshed.requests == 5  # space, count, window, listing, one batch
    assert sorted(_docs(meili_server, index)[pages[3]]["tags"]) == ["oncall", "runbook"]


async def test_a_move_or_a_renamed_parent_without_a_new_version_reaches_categories(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = confluence.state
    state.add_space("MOV", "Moves")
    ops = state.add_page("MOV", "Operations", "<p>ops</p>")
    dev = state.add_page("MOV", "Development", "<p>dev</p>")
    guide = state.add_page("MOV", "Guide", "<p>guide</p>", parent_id=ops)
    step = state.add_page("MOV", "Step one", "<p>step</p>", parent_id=guide)
    state.add_comment(step, "<p>a comment under the step</p>")
    spec = make_spec(confluence, "MOV", enable_comments=True)
    first = await sync(confluence, meili_server, index, spec, prune_interval_seconds=0)
    assert _docs(meili_server, index)[step]["categories"] == ["Operations", "Guide"]

    state.reparent(guide, dev)  # ancestors change, no version does
    moved = await sync(confluence, meili_server, index, spec, previous=first, prune_interval_seconds=0)
    assert moved.succeeded, moved.error
    docs = _docs(meili_server, index)
    assert docs[guide]["categories"] == ["Development"] and docs[step]["categories"] == ["Development", "Guide"]
    comment = next(d for d in docs.values() if d["type"] == "comment")
    assert comment["categories"] == ["Development", "Guide", "Step one"]
    assert moved.counts.pages == 2 and moved.counts.comments == 1  # only what the move touched

    state.update_page(dev, title="Engineering")  # the parent's new version; its descendants keep theirs
    renamed = await sync(confluence, meili_server, index, spec, previous=moved, prune_interval_seconds=0)
    docs = _docs(meili_server, index)
    assert docs[dev]["title"] == "Engineering" and docs[step]["categories"] == ["Engineering", "Guide"]
    assert renamed.counts.pages == 3 and renamed.counts.comments == 1


async def test_an_excluded_label_keeps_an_item_out_and_removes_it_later(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = confluence.state
    state.add_space("EXC", "Exclusions")
    public = state.add_page("EXC", "Public", "<p>public</p>")
    secret = state.add_page("EXC", "Salaries", "<p>secret numbers</p>", labels=["confidential"])
    later = state.add_page("EXC", "Roadmap", "<p>plans</p>")
    state.add_comment(secret, "<p>comment on the secret page</p>")
    later_comment = state.add_comment(later, "<p>comment on the roadmap</p>")
    state.add_attachment(later, "plan.txt", b"the roadmap in text", "text/plain")
    spec = make_spec(
        confluence, "EXC", exclude_labels=["Confidential", "hr-only"], enable_comments=True, enable_attachments=True
    )
    first = await sync(confluence, meili_server, index, spec)
    assert first.succeeded, first.error
    docs = _docs(meili_server, index)
    assert secret not in docs and {public, later, later_comment} <= set(docs)
    assert first.counts.comments == 1 and first.counts.attachments == 1
    # In CQL, quoted: excluded items cost nothing.
    assert all('label not in ("confidential", "hr-only")' in cql for cql in _cql_of(confluence) if "type" in cql)

    state.add_labels(later, "hr-only")  # no new version: the count drops, so this run lists and prunes
    second = await sync(confluence, meili_server, index, spec, previous=first)
    assert second.succeeded, second.error
    assert second.counts.deleted == 3  # the page, its comment and its attachment follow it
    assert set(_docs(meili_server, index)) == {public}

    state.remove_label(later, "hr-only")
    third = await sync(confluence, meili_server, index, spec, previous=second)
    assert third.succeeded and set(_docs(meili_server, index)) == {public, later, later_comment} | {
        d["metadata"]["content_id"] for d in meili_server.docs(index, DS) if d["type"] == "attachment"
    }
    assert third.counts.pages == 1 and third.counts.comments == 1 and third.counts.attachments == 1


async def test_an_ancestor_of_an_unknown_type_does_not_fail_the_run(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = cloud.state
    state.add_space("NEW", "New types")
    parent = state.add_page("NEW", "Slides", "")
    child = state.add_page("NEW", "Talk notes", "<p>notes</p>", parent_id=parent)
    state.get(parent).type = "slide"  # a type Confluence adds after this operator was written
    result = await sync(cloud, meili_server, index, make_spec(cloud, "NEW", enable_tree_items=True))
    assert result.succeeded, result.error
    docs = _docs(meili_server, index)
    assert set(docs) == {child} and docs[child]["categories"] == ["Slides"]


@pytest.fixture
def dc_emulator() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState()
    state.add_pat(DC_PAT)
    with ConfluenceEmulator(state, edition="dc", context_path="/confluence") as emu:
        yield emu


def _item(cid: str, kind: str, labels: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "id": cid,
        "type": kind,
        "status": "current",
        "title": f"Item {cid}",
        "space": {"key": "ODD", "name": "Odd"},
        "version": {"number": 1, "when": "2025-01-01T00:00:00.000Z"},
        "history": {"createdDate": "2025-01-01T00:00:00.000Z"},
        "body": {"storage": {"value": f"<p>text {cid}</p>"}},
        "metadata": {"labels": {"results": [{"name": n} for n in labels]}},
        "_links": {"webui": f"/pages/{cid}"},
    }


@pytest.fixture
def odd_site() -> Iterator[HostileServer]:
    """A site that answers what this operator's CQL does not ask for: an unknown type, an excluded label."""
    items = [_item("1", "page"), _item("2", "slide"), _item("3", "page", ("secret",))]

    async def search(request: web.Request) -> web.Response:
        cql = request.query["cql"]
        wanted = [i for i in items if f'"{i["id"]}"' in cql] if cql.startswith("id in (") else items
        return web.json_response({"results": wanted, "_links": {}})

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"totalSize": len(items), "results": []})

    async def space(_: web.Request) -> web.Response:
        return web.json_response({"key": "ODD", "name": "Odd"})

    server = HostileServer().start()
    server.route("/rest/api/content/search", search)
    server.route("/rest/api/search", count)
    server.route("/rest/api/space/ODD", space)
    yield server
    server.stop()


async def test_an_unknown_type_is_skipped_with_its_reason_and_an_excluded_label_is_checked_again(
    odd_site: HostileServer, meili_server: MeiliServer, index: str
) -> None:
    config = {"endpoint": odd_site.url, "tokenSecretRef": {"name": "t"}, "space": "ODD", "exclude_labels": ["secret"]}
    body = {"name": "Odd", "connector": {"id": "confluence", "config": config}, "permissions": {"mode": "none"}}
    spec = DatasourceSpec.model_validate(body)
    result = await run_sync(SyncRequest(DS, spec, "dc-pat", index), settings_for(meili_server))
    assert result.succeeded, result.error
    assert result.counts.pages == 1 and result.counts.skipped == 1
    assert result.skipped_items == ["Item 2: content type 'slide' is not indexed"]
    assert set(_docs(meili_server, index)) == {"1"}
