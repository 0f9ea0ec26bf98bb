"""Whole sync runs against the Confluence emulator (both editions) and Meilisearch: what ends up in the index."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta

import pytest

from coco_operator.api.datasource import PermissionsSpec
from coco_operator.confluence.text_workers import TextWorkers
from coco_operator.sync import SyncRequest, run_sync
from coco_operator.sync.plan import Listing
from tests.emulators.confluence import ConfluenceEmulator
from tests.sync.conftest import MeiliServer, make_spec, settings_for, sync, token_for

pytestmark = pytest.mark.meili

DS = "ns/wiki"


def _fill(emu: ConfluenceEmulator, key: str, pages: int, posts: int = 0) -> list[str]:
    state = emu.state
    state.add_space(key, f"Space {key}")
    root = state.add_page(key, "Root", "<p>root</p>")
    ids = [root]
    for i in range(pages - 1):
        ids.append(state.add_page(key, f"Page {i} ✓ 日本語", f"<p>body {i} words</p>", parent_id=root))
    for i in range(posts):
        ids.append(state.add_blogpost(key, f"Post {i}", f"<p>post {i}</p>"))
    return ids


async def test_space_larger_than_every_cap_indexed_exactly_once(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = confluence.state
    # Caps far below the space size, the Data Center miscount and an empty page that still links onwards.
    state.dc_body_cap = state.cloud_body_cap = 7
    state.dc_expand_cap = state.cloud_cap = 13
    state.dc_plain_cap = 17
    state.dc_miscount_start = True
    state.empty_page_with_next = True
    ids = _fill(confluence, "BIG", 120, posts=9)
    spec = make_spec(confluence, "BIG", enable_blogposts=True)
    result = await sync(confluence, meili_server, index, spec)
    assert result.succeeded, result.error
    docs = meili_server.docs(index, DS)
    content_ids = [d["metadata"]["content_id"] for d in docs]
    assert sorted(content_ids) == sorted(ids)
    assert len(content_ids) == len(set(content_ids))
    assert result.counts.pages == 120 and result.counts.blogposts == 9 and result.documents == 129


async def test_incremental_sync_fetches_only_changes(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(confluence, "INC", 60)
    spec = make_spec(confluence, "INC")
    full = await sync(confluence, meili_server, index, spec)
    assert full.succeeded and not full.incremental and full.counts.pages == 60

    unchanged = await sync(confluence, meili_server, index, spec, previous=full)
    assert unchanged.succeeded and unchanged.incremental
    assert unchanged.counts.pages == 0 and unchanged.counts.deleted == 0 and unchanged.documents == 60
    # space, count and changed window: the count adds up, so no id listing. Then the space's permissions (Cloud:
    # v1 anonymous flag and v2 assignments; Data Center: REST, anonymous, the admin's identities) and the
    # restrictions sweep (one page).
    assert unchanged.requests == 3 + (2 if confluence.cloud else 3) + 1, unchanged.requests
    assert unchanged.prune_reason is None and full.prune_reason == "full sync"

    state = confluence.state
    state.update_page(ids[5], body="<p>now about narwhals</p>")
    state.trash(ids[6])
    state.archive(ids[7])
    state.purge(ids[8])
    new = state.add_page("INC", "Fresh page", "<p>brand new</p>")
    changed = await sync(confluence, meili_server, index, spec, previous=unchanged)
    assert changed.succeeded and changed.incremental
    assert changed.counts.pages == 2  # the update and the new page
    assert changed.counts.deleted == 3
    # 60 at the last run, 1 created, 59 now (archived pages still count): something left, so every id is listed.
    assert changed.prune_reason and "59 items where 61 were expected" in changed.prune_reason
    docs = {d["metadata"]["content_id"]: d for d in meili_server.docs(index, DS)}
    assert "narwhals" in docs[ids[5]]["content"]
    assert new in docs and not {ids[6], ids[7], ids[8]} & set(docs)
    assert changed.watermark is not None and changed.watermark > unchanged.watermark  # type: ignore[operator]


async def test_changes_a_count_cannot_see_wait_for_the_prune_interval(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = cloud.state
    state.set_now(datetime.now(UTC) - timedelta(days=3))  # written long before any window
    ids = _fill(cloud, "CNT", 7)
    state.add_space("OUT", "Elsewhere")
    outsider = state.add_page("OUT", "Visitor", "<p>from another space</p>")
    state.set_now(None)
    # The count at work, as in mode none: permissions' restrictions sweep would list every id on every run.
    spec = make_spec(cloud, "CNT").model_copy(update={"permissions": PermissionsSpec(mode="none")})
    first = await sync(cloud, meili_server, index, spec)
    assert first.listing.total == 7 and first.listing.last_prune == first.started
    # One page leaves, another arrives: the count stays at 7. Archiving edits nothing, and archived pages still
    # count; an archived page in the window (here: one edited, then archived) is removed at once.
    state.move_page(ids[4], "OUT")
    state.move_page(outsider, "CNT")
    state.archive(ids[5])
    state.update_page(ids[6], body="<p>last words</p>")
    state.archive(ids[6])
    second = await sync(cloud, meili_server, index, spec, previous=first)
    assert second.prune_reason is None, second.prune_reason
    assert second.counts.pages == 1 and second.counts.deleted == 1
    assert second.listing.last_prune == first.started
    docs = {d["metadata"]["content_id"] for d in meili_server.docs(index, DS)}
    assert {ids[4], ids[5], outsider} <= docs and ids[6] not in docs  # the leavers wait for the next listing
    # Once the prune interval has passed since the last complete listing, the run lists every id.
    stale = dataclasses.replace(second, listing=Listing(last_prune=first.started - timedelta(hours=2), total=7))
    third = await sync(cloud, meili_server, index, spec, previous=stale)
    assert third.prune_reason and "prune interval 1h0m0s" in third.prune_reason
    assert third.counts.deleted == 2 and third.listing.last_prune == third.started
    assert {d["metadata"]["content_id"] for d in meili_server.docs(index, DS)} == {*ids[:4], outsider}
    # An interval of 0 lists on every run.
    fourth = await sync(cloud, meili_server, index, spec, previous=third, prune_interval_seconds=0)
    assert fourth.prune_reason and "prune interval 0" in fourth.prune_reason and fourth.counts.deleted == 0


async def test_restored_content_comes_back_even_if_not_modified(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(cloud, "RST", 5)
    spec = make_spec(cloud, "RST")
    first = await sync(cloud, meili_server, index, spec)
    # Trashed, synced (leaves the index), then restored without a new version.
    cloud.state.trash(ids[2])
    second = await sync(cloud, meili_server, index, spec, previous=first)
    assert second.counts.deleted == 1
    cloud.state.get(ids[2]).status = "current"
    cloud.state.set_now(cloud.state.now() + timedelta(days=3))
    third = await sync(cloud, meili_server, index, spec, previous=second)
    assert third.counts.pages == 1 and third.documents == 5


async def test_moved_to_another_space_leaves_this_datasource(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(cloud, "MVA", 4)
    cloud.state.add_space("MVB", "Other")
    spec = make_spec(cloud, "MVA")
    first = await sync(cloud, meili_server, index, spec)
    cloud.state.move_page(ids[3], "MVB")
    second = await sync(cloud, meili_server, index, spec, previous=first)
    assert second.counts.deleted == 1 and second.documents == 3


async def test_failed_listing_deletes_nothing(cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str) -> None:
    _fill(cloud, "FAIL", 30)
    spec = make_spec(cloud, "FAIL")
    first = await sync(cloud, meili_server, index, spec)
    assert first.documents == 30
    cloud.state.fail_next = [500] * 100
    failed = await sync(cloud, meili_server, index, spec, previous=first, confluence_max_retry_seconds=2)
    assert not failed.succeeded and failed.error and failed.error.reason == "ConfluenceUnavailable"
    cloud.state.fail_next = []
    assert len(meili_server.docs(index, DS)) == 30


async def test_rate_limits_and_transient_errors_are_survived(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    _fill(confluence, "RATE", 12)
    state = confluence.state
    state.rate_limit_next = 2
    state.retry_after = "1"
    state.fail_next = [502, 503]
    state.malformed_next = 1
    result = await sync(confluence, meili_server, index, make_spec(confluence, "RATE"))
    assert result.succeeded, result.error
    assert result.documents == 12
    statuses = [r.status for r in state.requests]
    assert 429 in statuses or 403 in statuses


async def test_gateway_timeouts_shrink_body_batches(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    _fill(cloud, "BODY", 40)
    cloud.state.timeout_body_pages_over = 10
    result = await sync(cloud, meili_server, index, make_spec(cloud, "BODY"))
    assert result.succeeded, result.error
    assert result.documents == 40
    assert any(r.status == 504 for r in cloud.state.requests)


async def test_several_spaces_and_a_cql_filter(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    _fill(cloud, "SPA", 3)
    _fill(cloud, "SPB", 2)
    hidden = cloud.state.add_page("SPB", "Secret", "<p>hidden</p>", labels=["no-index"])
    spec = make_spec(cloud, "SPA", spaces=["SPB"], cql='label != "no-index"')
    result = await sync(cloud, meili_server, index, spec)
    assert result.succeeded, result.error
    docs = meili_server.docs(index, DS)
    assert {d["metadata"]["space_key"] for d in docs} == {"SPA", "SPB"}
    assert hidden not in {d["metadata"]["content_id"] for d in docs} and len(docs) == 5
    assert {d["category"] for d in docs} == {"Space SPA", "Space SPB"}


async def test_unknown_space_and_bad_token(cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str) -> None:
    result = await sync(cloud, meili_server, index, make_spec(cloud, "NOPE"))
    assert result.error and result.error.reason == "SpaceNotFound"
    _fill(cloud, "TOK", 2)
    spec = make_spec(cloud, "TOK")
    from coco_operator.sync import SyncRequest, run_sync
    from tests.sync.conftest import settings_for

    bad = await run_sync(SyncRequest("ns/wiki", spec, "wrong", index), settings_for(meili_server))
    assert bad.error and bad.error.reason == "AuthenticationFailed"


def _docx(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


async def test_attachments_extracted_skipped_and_counted(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = confluence.state
    state.add_space("ATT", "Attachments")
    page = state.add_page("ATT", "Files", "<p>files</p>")
    state.add_attachment(page, "notes.txt", b"plain text about walruses", "text/plain")
    state.add_attachment(page, "spec.docx", _docx("word document about ocelots"), "application/octet-stream")
    state.add_attachment(page, "photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")
    state.add_attachment(page, "big.txt", b"x" * 60_000, "text/plain")
    state.add_attachment(page, "broken.pdf", b"%PDF-1.4 not really", "application/pdf")
    spec = make_spec(confluence, "ATT", enable_attachments=True)
    result = await sync(confluence, meili_server, index, spec, attachment_max_bytes=50_000)
    assert result.succeeded, result.error
    assert result.counts.attachments == 5 and result.counts.skipped == 2, result.skipped_items
    assert any(s.startswith("big.txt: too large") for s in result.skipped_items)
    assert any(s.startswith("broken.pdf: could not read PDF") for s in result.skipped_items)
    docs = {d["title"]: d for d in meili_server.docs(index, DS) if d["type"] == "attachment"}
    assert "walruses" in docs["notes.txt"]["content"]
    assert "ocelots" in docs["spec.docx"]["content"]
    assert docs["photo.png"]["content"] == "" and docs["photo.png"]["metadata"]["media_type"] == "image/png"
    assert docs["notes.txt"]["categories"][-1] == "Files"
    if confluence.endpoint.endswith("/wiki"):
        # Cloud: through the REST download path (302 to the media host), never the legacy path.
        paths = [r.path for r in state.requests]
        assert any("/child/attachment/" in p and p.endswith("/download") for p in paths)
        assert not any(p.startswith("/wiki/download/attachments") for p in paths)
    # An unchanged attachment is not downloaded again.
    before = len(state.requests)
    again = await sync(confluence, meili_server, index, spec, previous=result, attachment_max_bytes=50_000)
    assert again.counts.attachments == 0
    assert not any("download" in r.path or "/media/" in r.path for r in state.requests[before:])


async def test_text_workers_index_the_same_documents(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coco_operator.sync import plan

    state = cloud.state
    state.add_space("TXW", "Workers")
    mention = f'<ac:link><ri:user ri:account-id="{state.default_user.account_id}"/></ac:link>'
    for i in range(40):
        state.add_page("TXW", f"Page {i}", f"<h2>Part {i}</h2><p>{mention} wrote <b>{i}</b></p><ul><li>x</li></ul>")
    monkeypatch.setattr(plan, "MIN_ITEMS", 10)  # the worker path, on a small space
    spec = make_spec(cloud, "TXW")
    inline = await sync(cloud, meili_server, index, spec, ds_id="ns/inline", text_workers=0)
    pool = TextWorkers(2)  # shared and already up, as in the operator after its first large run
    try:
        assert await pool.warm()
        request = SyncRequest("ns/pooled", spec, token_for(cloud), index)
        pooled = await run_sync(request, settings_for(meili_server, text_workers=2), text_workers=pool)
    finally:
        await pool.close()
    assert inline.succeeded and pooled.succeeded and pooled.counts.pages == inline.counts.pages == 40
    assert pool.converted_by_workers > 0 and pool.converted_here == 0  # every page went through a worker

    def contents(ds: str) -> dict[str, str]:
        return {d["metadata"]["content_id"]: d["content"] for d in meili_server.docs(index, ds)}

    assert contents("ns/pooled") == contents("ns/inline")
    assert "@Admin wrote 39" in contents("ns/pooled")[state.contents[max(state.contents)].id]
