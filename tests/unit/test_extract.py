"""Tests for attachment text extraction, on sample files generated here with the same libraries."""

from __future__ import annotations

import datetime as dt
import io
import random
import struct
import zipfile

import docx
import openpyxl  # type: ignore[import-untyped]
import pptx
import pytest
from pptx.util import Inches
from pypdf import PdfReader, PdfWriter

from coco_operator.confluence import extract
from coco_operator.confluence.extract import Extracted, extract_text, kind_of, needs_download, skip_reason

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OCTET = "application/octet-stream"
MB = 1024 * 1024


# --- sample builders ------------------------------------------------------------------------


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: one Helvetica text object per page, one Tj per line, exact xref."""

    def literal(text: str) -> bytes:
        raw = text.encode("cp1252")  # WinAnsiEncoding, so accented Latin letters survive
        return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"

    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(pages))), len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for index, lines in enumerate(pages):
        content = b"BT /F1 12 Tf 14 TL 72 720 Td " + b" T* ".join(literal(line) + b" Tj" for line in lines) + b" ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * index)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Projekt Übersicht", level=1)
    document.add_paragraph("Das Büro in Zürich öffnet um 9 Uhr — 日本語テキスト")
    table = document.add_table(rows=3, cols=3)
    for row, values in zip(
        table.rows, [("Name", "Stadt", "Land"), ("Ana", "São Paulo", "BR"), ("Wide", "", "")], strict=True
    ):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    last = table.rows[2].cells
    last[0].merge(last[2])  # one merged cell must not be repeated per grid column
    document.add_paragraph("Closing paragraph after the table")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_pptx() -> bytes:
    presentation = pptx.Presentation()
    first = presentation.slides.add_slide(presentation.slide_layouts[1])
    first.shapes.title.text = "Roadmap 2025"
    first.placeholders[1].text_frame.text = "Ünïcödé bullet point"
    first.notes_slide.notes_text_frame.text = "Speaker notes mention Kubernetes"
    second = presentation.slides.add_slide(presentation.slide_layouts[6])
    group = second.shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "Grouped text box: Ελληνικά"
    frame = second.shapes.add_table(2, 2, Inches(1), Inches(3), Inches(4), Inches(1))
    for row, values in zip(frame.table.rows, [("Metric", "Value"), ("Latency", "42 ms")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def make_xlsx(rows: int = 3) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Budget"
    sheet.append(["Item", "Cost", "Date"])
    sheet.append(["Kaffeemaschine für Büro", 3.0, dt.datetime(2024, 5, 17)])
    sheet.append([None, None, None])  # fully empty row, skipped
    sheet.append(["Total", "=SUM(B2:B2)", 1.5])
    other = workbook.create_sheet("Résumé")
    for index in range(rows):
        other.append([f"row {index}", index])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def with_claimed_size(data: bytes, size: int) -> bytes:
    """The zip with its (only) central directory entry claiming ``size`` uncompressed bytes."""
    header = data.rfind(b"PK\x01\x02")
    assert header >= 0
    return data[: header + 24] + struct.pack("<I", size) + data[header + 28 :]


# --- kind_of / needs_download ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "filename", "kind"),
    [
        ("application/pdf", "report.bin", "pdf"),
        (OCTET, "Report.PDF", "pdf"),
        (DOCX, "x", "docx"),
        (OCTET, "notes.docx", "docx"),
        ("application/zip", "deck.pptx", "pptx"),
        ("", "sheet.xlsx", "xlsx"),
        (OCTET, "macro.xlsm", "xlsx"),
        ("text/csv; charset=utf-8", "a", "csv"),
        ("text/plain", "data.tsv", "csv"),
        ("text/plain", "README.md", "markdown"),
        ("text/markdown", "notes", "markdown"),
        ("text/html", "page", "html"),
        (OCTET, "page.htm", "html"),
        ("text/plain", "notes.txt", "text"),
        ("application/json", "a.json", "text"),
        ("application/vnd.api+json", "a", "text"),
        ("text/x-python", "script.py", "text"),
        (OCTET, "config.yaml", "text"),
        ("image/png", "diagram.png", "image"),
        (OCTET, "photo.JPG", "image"),
        ("image/svg+xml", "logo.svg", "image"),
        ("video/mp4", "demo", "video"),
        (OCTET, "call.mp3", "audio"),
        ("application/zip", "bundle.zip", "other"),
        (OCTET, "blob.bin", "other"),
        (OCTET, "no-extension", "other"),
        ("application/msword", "old.doc", "other"),
        ("application/vnd.ms-excel", "mislabelled.xlsx", "xlsx"),
        ("application/vnd.ms-excel", "legacy.xls", "other"),
        ("text/rtf", "letter.rtf", "other"),
    ],
)
def test_kind_of(media_type: str, filename: str, kind: str) -> None:
    assert kind_of(media_type, filename) == kind


def test_needs_download() -> None:
    assert needs_download("application/pdf", "a.pdf", 5 * MB, 10 * MB)
    assert needs_download(OCTET, "a.docx", 10 * MB, 10 * MB)  # the limit itself is allowed
    assert needs_download(OCTET, "a.txt", 0, 10 * MB)  # unknown size: the downloader caps it
    assert not needs_download("application/pdf", "a.pdf", 10 * MB + 1, 10 * MB)
    assert not needs_download("image/png", "a.png", 10, 10 * MB)
    assert not needs_download("video/mp4", "a.mp4", 10, 10 * MB)
    assert not needs_download("audio/mpeg", "a.mp3", 10, 10 * MB)
    assert not needs_download("application/zip", "a.zip", 10, 10 * MB)


def test_skip_reason() -> None:
    assert skip_reason("application/pdf", "a.pdf", 12 * MB, 10 * MB) == "too large: 12 MB > 10 MB limit"
    assert skip_reason("application/pdf", "a.pdf", 10 * MB + 200_000, 10 * MB) == "too large: 10.2 MB > 10.0 MB limit"
    assert skip_reason("image/png", "a.png", 1, 10 * MB) == "image: metadata only"
    assert skip_reason("application/zip", "a.zip", 1, 10 * MB) == "unsupported type application/zip"
    assert skip_reason(OCTET, "a.bin", 1, 10 * MB) == "unsupported type application/octet-stream (.bin)"
    assert skip_reason(OCTET, "a.pdf", 1, 10 * MB) is None


def test_metadata_only_types_are_not_read() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    assert extract_text(png, "image/png", "a.png") == Extracted(None, "image: metadata only", failed=False)
    result = extract_text(b"PK\x03\x04", "application/zip", "a.zip")
    assert result == Extracted(None, "unsupported type application/zip", failed=False)


# --- PDF ------------------------------------------------------------------------------------


def test_pdf_pages_separated_by_blank_lines() -> None:
    data = make_pdf([["Quarterly revenue grew", "by twelve percent"], ["Café crème à la carte"]])
    assert len(PdfReader(io.BytesIO(data)).pages) == 2  # the sample itself is a valid PDF
    result = extract_text(data, "application/pdf", "report.pdf")
    assert not result.failed and result.skipped_reason is None
    assert result.text is not None
    first, second = result.text.split("\n\n")
    assert "Quarterly revenue grew" in first and "by twelve percent" in first
    assert second == "Café crème à la carte"


def test_pdf_encrypted_with_empty_password_is_read() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Open sesame"]]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    result = extract_text(buffer.getvalue(), OCTET, "locked.pdf")
    assert result.text == "Open sesame"


def test_pdf_with_password_fails_with_reason() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Secret"]]))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    result = extract_text(buffer.getvalue(), "application/pdf", "locked.pdf")
    assert result.failed and result.text is None
    assert result.skipped_reason == "could not read PDF: encrypted with a password"


@pytest.mark.parametrize("data", [b"", b"not a pdf at all", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog"])
def test_broken_pdf_fails_with_reason(data: bytes) -> None:
    result = extract_text(data, "application/pdf", "broken.pdf")
    assert result.failed and result.text is None
    assert result.skipped_reason is not None
    assert result.skipped_reason.startswith("could not read PDF: ")
    assert "\n" not in result.skipped_reason and len(result.skipped_reason) < 200


def test_pdf_without_text() -> None:
    result = extract_text(make_pdf([[]]), "application/pdf", "scan.pdf")
    assert result == Extracted(None, "no text found", failed=False)


# --- Office ---------------------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_order() -> None:
    result = extract_text(make_docx(), DOCX, "plan.docx")
    assert result.text is not None and not result.failed
    assert result.text.split("\n") == [
        "Projekt Übersicht",
        "Das Büro in Zürich öffnet um 9 Uhr — 日本語テキスト",
        "Name | Stadt | Land",
        "Ana | São Paulo | BR",
        "Wide",
        "",
        "Closing paragraph after the table",
    ]


def test_docx_by_extension() -> None:
    assert extract_text(make_docx(), OCTET, "plan.docx").text is not None


def test_pptx_slides_with_headers() -> None:
    result = extract_text(make_pptx(), PPTX, "deck.pptx")
    assert result.text is not None and not result.failed
    text = result.text
    assert text.index("Slide 1") < text.index("Roadmap 2025") < text.index("Ünïcödé bullet point")
    assert text.index("Notes: Speaker notes mention Kubernetes") < text.index("Slide 2")
    assert text.index("Slide 2") < text.index("Grouped text box: Ελληνικά")
    assert "Metric | Value\nLatency | 42 ms" in text


def test_xlsx_sheets_and_rows() -> None:
    result = extract_text(make_xlsx(), XLSX, "budget.xlsx")
    assert result.text is not None and not result.failed and not result.truncated
    assert result.text.split("\n") == [
        "Budget",
        "Item | Cost | Date",
        "Kaffeemaschine für Büro | 3 | 2024-05-17",
        "Total | 1.5",  # a formula without a cached value (never opened in Excel) has no text
        "",
        "Résumé",
        "row 0 | 0",
        "row 1 | 1",
        "row 2 | 2",
    ]


def test_xlsx_rows_per_sheet_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract, "MAX_ROWS_PER_SHEET", 5)
    result = extract_text(make_xlsx(rows=50), OCTET, "big.xlsx")
    assert result.text is not None and result.truncated
    assert "row 4 |" in result.text and "row 5 |" not in result.text


@pytest.mark.parametrize(("media_type", "filename", "label"), [(DOCX, "a.docx", "DOCX"), (OCTET, "a.xlsx", "XLSX")])
def test_office_not_a_zip_fails_with_reason(media_type: str, filename: str, label: str) -> None:
    result = extract_text(b"PK\x03\x04 truncated garbage", media_type, filename)
    assert result.failed and result.text is None
    assert result.skipped_reason == (
        f"could not read {label}: not a valid Office file (corrupt, encrypted or an old binary format)"
    )


@pytest.mark.parametrize(("media_type", "filename"), [(DOCX, "a.docx"), (PPTX, "a.pptx"), (XLSX, "a.xlsx")])
def test_office_zip_without_document_fails(media_type: str, filename: str) -> None:
    result = extract_text(make_zip({"hello.txt": b"hi"}), media_type, filename)
    assert result.failed and result.text is None
    assert result.skipped_reason is not None and result.skipped_reason.startswith("could not read ")


def test_zip_bomb_refused_by_declared_size() -> None:
    bomb = with_claimed_size(make_zip({"word/document.xml": b"<w:document/>"}), 0xFFFF_FFF0)
    result = extract_text(bomb, DOCX, "bomb.docx")
    assert result.failed and result.text is None
    reason = "could not read DOCX: archive would expand to 4 GB (limit 200 MB), possibly a zip bomb"
    assert result.skipped_reason == reason


def test_zip_bomb_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real, otherwise valid document with a padding entry that inflates past the (lowered) limit.
    monkeypatch.setattr(extract, "MAX_UNZIPPED_BYTES", MB)
    with zipfile.ZipFile(io.BytesIO(make_xlsx())) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    entries["padding.bin"] = bytes(2 * MB)
    result = extract_text(make_zip(entries), XLSX, "bomb.xlsx")
    assert result.failed
    assert result.skipped_reason is not None and "archive would expand to 2" in result.skipped_reason


def test_truncated_office_files_fail_without_raising() -> None:
    for data, filename in [(make_docx(), "a.docx"), (make_pptx(), "a.pptx"), (make_xlsx(), "a.xlsx")]:
        result = extract_text(data[: len(data) // 2], OCTET, filename)
        assert result.failed and result.text is None and result.skipped_reason


# --- CSV, HTML and text ---------------------------------------------------------------------


def test_csv_semicolons_with_bom() -> None:
    data = '\ufeffName;Stadt;Notiz\nMüller;München;"a; quoted"\n\n;;\nLee;Seoul;서울\n'.encode()
    result = extract_text(data, "text/csv", "people.csv")
    assert result.text == "Name | Stadt | Notiz\nMüller | München | a; quoted\nLee | Seoul | 서울"


def test_csv_latin1_and_single_column() -> None:
    result = extract_text("Straße\nCafé\n".encode("latin-1"), OCTET, "list.csv")
    assert result.text == "Straße\nCafé"


def test_tsv() -> None:
    assert extract_text(b"a\tb c\n1\t2 3\n", "text/tab-separated-values", "x.tsv").text == "a | b c\n1 | 2 3"


def test_html_drops_scripts_and_separates_blocks() -> None:
    page = b"""<!doctype html><html><head><title>Release notes</title>
    <style>body { color: red }</style><script>var secret = "do not index";</script></head>
    <body><h1>Version   2.0</h1><p>Faster <b>sync</b>
    for large   spaces.</p><div>First line<br>second line</div>
    <table><tr><th>Key</th><th>Value</th></tr><tr><td>mode</td><td>fast</td></tr></table>
    <noscript>Enable JavaScript</noscript><ul><li>one</li><li>two</li></ul></body></html>"""
    result = extract_text(page, "text/html", "notes.html")
    assert result.text == (
        "Release notes\nVersion 2.0\nFaster sync for large spaces.\nFirst line\nsecond line\n"
        "Key | Value\nmode | fast\none\ntwo"
    )


def test_markdown_kept_as_text() -> None:
    data = b"# Title\n\n\n\nSome *text*   here.   \n\n- item\n  - nested\n"
    result = extract_text(data, "text/markdown", "README.md")
    assert result.text == "# Title\n\nSome *text* here.\n\n- item\n  - nested"


def test_latin1_text() -> None:
    data = "Café naïve façade — déjà vu".encode("cp1252")
    assert extract_text(data, "text/plain", "notes.txt").text == "Café naïve façade — déjà vu"
    # 0x81 is undefined in cp1252: latin-1 then decodes it, and the stray control is dropped.
    assert extract_text(b"l'\xe9t\xe9 \x81dernier", "text/plain", "odd.txt").text == "l'été dernier"


@pytest.mark.parametrize("filename", ["a.txt", "a.csv", "a.html", "a.md"])
def test_binary_content_in_text_file_fails(filename: str) -> None:
    for data in [b"abc\x00def" * 10, bytes(range(256)) * 4]:
        result = extract_text(data, OCTET, filename)
        assert result.failed and result.text is None
        assert result.skipped_reason is not None and result.skipped_reason.endswith(": binary content, not text")


def test_ansi_log_is_text() -> None:
    line = "\x1b[32mINFO\x1b[0m sync done\n"
    assert extract_text((line * 50).encode(), "text/plain", "run.log").text is not None


def test_text_boms() -> None:
    assert extract_text("\ufeffhello".encode(), "text/plain", "a.txt").text == "hello"
    assert extract_text("hällo wörld".encode("utf-16"), "text/plain", "a.txt").text == "hällo wörld"


def test_whitespace_normalised() -> None:
    data = b"\r\n\r\n  first\r\n\r\n\r\n\r\nsecond\t\t\tpart\x07   \x0cthird\n\n\n"
    assert extract_text(data, "text/plain", "a.txt").text == "  first\n\nsecond part\nthird"


def test_empty_text_file() -> None:
    assert extract_text(b"  \n\n", "text/plain", "a.txt") == Extracted(None, "no text found", failed=False)


# --- limits and robustness ------------------------------------------------------------------


def test_truncation() -> None:
    data = ("word " * 1000).encode()
    result = extract_text(data, "text/plain", "a.txt", max_chars=52)
    assert result.truncated and result.text is not None
    assert len(result.text) <= 52 and result.text.startswith("word word")
    assert not extract_text(data, "text/plain", "a.txt").truncated


def test_truncation_stops_reading_early() -> None:
    data = make_pdf([[f"page {number} text"] for number in range(200)])
    result = extract_text(data, "application/pdf", "long.pdf", max_chars=100)
    assert result.truncated and result.text is not None and len(result.text) <= 100
    assert "page 0 text" in result.text and "page 199" not in result.text


@pytest.mark.parametrize("kind", ["pdf", "docx", "pptx", "xlsx", "csv", "html", "md", "txt"])
def test_random_bytes_never_raise(kind: str) -> None:
    rng = random.Random(kind)
    samples = [b"", b"\x00" * 100, bytes(rng.randrange(256) for _ in range(2000)), b"PK\x03\x04" + rng.randbytes(500)]
    for data in samples:
        result = extract_text(data, OCTET, f"sample.{kind}")
        assert isinstance(result, Extracted)
        if result.failed:
            assert result.text is None and result.skipped_reason
