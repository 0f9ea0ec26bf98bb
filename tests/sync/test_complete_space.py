"""A realistic space syncs completely on both editions: deep tree, unicode, large pages, blog posts, attachments of
every supported type, archived and trashed pages; then a change, a move and a deletion show after the next run."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from tests.emulators.confluence import ConfluenceEmulator
from tests.sync.conftest import MeiliServer, make_spec, sync

pytestmark = pytest.mark.meili
DS = "ns/wiki"


def _files() -> dict[str, tuple[bytes, str, str]]:
    """filename -> (bytes, media type, a phrase that must be searchable)."""
    import docx
    import openpyxl
    import pptx

    out: dict[str, tuple[bytes, str, str]] = {}
    d = docx.Document()
    d.add_paragraph("docx phrase capybara")
    buf = io.BytesIO()
    d.save(buf)
    out["report.docx"] = (
        buf.getvalue(),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "capybara",
    )
    p = pptx.Presentation()
    slide = p.slides.add_slide(p.slide_layouts[5])
    slide.shapes.title.text = "pptx phrase axolotl"
    buf = io.BytesIO()
    p.save(buf)
    out["deck.pptx"] = (
        buf.getvalue(),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "axolotl",
    )
    wb = openpyxl.Workbook()
    wb.active.append(["xlsx phrase", "quokka"])
    buf = io.BytesIO()
    wb.save(buf)
    out["sheet.xlsx"] = (buf.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "quokka")
    out["data.csv"] = (b"name;animal\nrow;pangolin\n", "text/csv", "pangolin")
    out["readme.md"] = (b"# Readme\n\nmarkdown phrase tapir\n", "text/markdown", "tapir")
    out["page.html"] = (b"<html><body><p>html phrase okapi</p><script>x()</script></body></html>", "text/html", "okapi")
    out["notes.txt"] = ("plain phrase dugong ünïcödé".encode(), "text/plain", "dugong")
    out["paper.pdf"] = (_pdf("pdf phrase gharial"), "application/pdf", "gharial")
    out["diagram.png"] = (b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png", "")
    out["demo.mp4"] = (bytes(64), "video/mp4", "")
    return out


def _pdf(text: str) -> bytes:
    """A minimal valid one-page PDF with a text object (offsets computed, so pypdf reads it without repair)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


async def test_complete_space_then_change_move_delete(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = confluence.state
    state.add_space("FULL", "Full Space ✓")
    state.add_space("ELSE", "Elsewhere")
    # A deep tree: each level a child of the previous one.
    parent = None
    chain = []
    for depth in range(8):
        parent = state.add_page("FULL", f"Level {depth} — ñ 中文 🚀", f"<p>depth {depth} text</p>", parent_id=parent)
        chain.append(parent)
    large = state.add_page(
        "FULL", "Large page", "<p>" + "lorem ipsum dolor " * 20000 + "needle</p>", parent_id=chain[0]
    )
    archived = state.add_page("FULL", "Old", "<p>archived page</p>")
    state.archive(archived)
    trashed = state.add_page("FULL", "Gone", "<p>trashed page</p>")
    state.trash(trashed)
    posts = [state.add_blogpost("FULL", f"Blog {i}", f"<p>blog {i} text</p>") for i in range(3)]
    holder = state.add_page("FULL", "Attachments", "<p>see files</p>", parent_id=chain[2])
    files = _files()
    for name, (data, media, _) in files.items():
        state.add_attachment(holder, name, data, media)

    spec = make_spec(confluence, "FULL", enable_blogposts=True, enable_attachments=True)
    first = await sync(confluence, meili_server, index, spec)
    assert first.succeeded, first.error
    assert first.counts.pages == 10 and first.counts.blogposts == 3 and first.counts.attachments == len(files)
    assert first.counts.skipped == 0, first.skipped_items
    docs = {d["metadata"]["content_id"]: d for d in meili_server.docs(index, DS)}
    assert archived not in docs and trashed not in docs
    assert set(posts) <= set(docs)
    deepest = docs[chain[-1]]
    assert deepest["categories"] == [f"Level {i} — ñ 中文 🚀" for i in range(7)]
    assert deepest["title"] == "Level 7 — ñ 中文 🚀" and deepest["category"] == "Full Space ✓"
    assert docs[large]["content"].endswith("needle") and docs[large]["size"] > 300_000
    client = meili_server.client().index(index)
    for name, (_, _, phrase) in files.items():
        if phrase:
            hits = client.search(phrase, {"filter": f'source.id = "{DS}"'})["hits"]
            assert [h["title"] for h in hits] == [name], (name, phrase)
    assert {d["title"] for d in docs.values() if d["type"] == "attachment" and not d["content"]} == {
        "diagram.png",
        "demo.mp4",
    }

    state.update_page(chain[3], title="Level 3 renamed", body="<p>changed text about lemurs</p>")
    state.move_page(posts[0], "ELSE")
    state.purge(chain[7])
    second = await sync(confluence, meili_server, index, spec, previous=first)
    assert second.succeeded and second.incremental
    docs = {d["metadata"]["content_id"]: d for d in meili_server.docs(index, DS)}
    assert "lemurs" in docs[chain[3]]["content"] and docs[chain[3]]["title"] == "Level 3 renamed"
    assert posts[0] not in docs and chain[7] not in docs
    assert second.counts.deleted == 2


async def test_request_cost_of_a_1000_page_space(
    confluence: ConfluenceEmulator, meili_server: MeiliServer, index: str, record_property: object
) -> None:
    state = confluence.state
    state.add_space("K", "Thousand")
    # Written two days ago, so the incremental window (12h overlap for the site's time zone) holds nothing.
    state.set_now(datetime.now(UTC) - timedelta(days=2))
    for i in range(1000):
        state.add_page("K", f"Page {i}", f"<p>body {i}</p>")
    state.set_now(None)
    spec = make_spec(confluence, "K")
    full = await sync(confluence, meili_server, index, spec)
    unchanged = await sync(confluence, meili_server, index, spec, previous=full)
    assert full.succeeded and unchanged.succeeded and full.documents == 1000
    edition = "cloud" if confluence.endpoint.endswith("/wiki") else "dc"
    print(f"\n[{edition}] 1000-page space: full sync {full.requests} requests, unchanged {unchanged.requests}")
    # Bodies come 50 to a request (the servers' cap with bodies); ids up to 1000 (DC) or 250 (Cloud) per request.
    # Permissions (spec.permissions.mode sync): the space's, 2 (Cloud) or 3 (DC) requests per run; restrictions
    # come with the bodies, and an incremental run sweeps them (1,000 per request on Cloud, 200 on DC).
    permissions, sweep = (2, 1) if confluence.cloud else (3, 5)
    assert full.requests <= 1 + 4 + 20 + 2 + permissions
    assert unchanged.requests <= 1 + 4 + 1 + permissions + sweep
