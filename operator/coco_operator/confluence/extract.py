"""Text extraction from Confluence attachments for the search index.

Everything here is pure and defensive: attachments are user uploads, so a broken or hostile
file must cost a bounded amount of work and come back as a reason, never as an exception.
Types that carry no useful text (images, media, archives) are indexed by metadata only and
need not be downloaded at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pptx.shapes.base import BaseShape
    from selectolax.lexbor import LexborNode

# The document parsers are imported by the extractor of their kind, in the extraction worker process that runs it
# (`extraction_worker`): the operator itself only decides what to download, and a worker boots in a tenth of a second
# (all parsers: about half a second) and pays for the parsers it needs.

__all__ = [
    "MAX_ROWS_PER_SHEET",
    "MAX_UNZIPPED_BYTES",
    "Extracted",
    "extract_text",
    "kind_of",
    "needs_download",
    "skip_reason",
]

# Office files are zips of XML: a few KB can claim gigabytes, so refuse before parsing.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_ENTRIES = 10_000
# Rows per sheet (empty ones included, as a sparse sheet costs time per row too) and columns per row.
MAX_ROWS_PER_SHEET = 20_000
MAX_COLUMNS = 256

READABLE_KINDS = frozenset({"pdf", "docx", "pptx", "xlsx", "csv", "markdown", "html", "text"})

_LABELS = {
    "pdf": "PDF",
    "docx": "DOCX",
    "pptx": "PPTX",
    "xlsx": "XLSX",
    "csv": "CSV",
    "markdown": "Markdown",
    "html": "HTML",
    "text": "text",
}

_MEDIA_TYPES = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/comma-separated-values": "csv",
    "text/tab-separated-values": "csv",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/json": "text",
    "application/xml": "text",
    "application/yaml": "text",
    "application/x-yaml": "text",
    "application/toml": "text",
    "application/javascript": "text",
    "application/x-sh": "text",
    "application/sql": "text",
}
# Formatting languages whose markup would be noise rather than text.
_NOT_TEXT = frozenset({"text/rtf", "text/x-rtf"})

_EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".csv": "csv",
    ".tsv": "csv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    **dict.fromkeys(
        (
            ".txt",
            ".text",
            ".log",
            ".json",
            ".xml",
            ".yaml",
            ".yml",
            ".toml",
            ".ini",
            ".cfg",
            ".conf",
            ".properties",
            ".sql",
            ".sh",
            ".rst",
            ".adoc",
        ),
        "text",
    ),
    **dict.fromkeys(
        (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".tif", ".tiff", ".ico", ".heic", ".avif"),
        "image",
    ),
    **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".m4v", ".mpeg", ".mpg"), "video"),
    **dict.fromkeys((".mp3", ".wav", ".ogg", ".oga", ".m4a", ".flac", ".aac", ".wma", ".opus"), "audio"),
}
# Zip-based office files are often uploaded as a plain zip; the extension then tells what it is.
_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})
_OFFICE_KINDS = frozenset({"docx", "pptx", "xlsx"})

_HTML_DROPPED = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed", "canvas"}
)
_HTML_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "title",
        "tr",
        "ul",
    }
)
# A character no extracted text keeps (controls are stripped from text nodes) marks table cells.
_CELL = "\x1f"

# ESC is left out: logs keep ANSI colour codes.
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_IO_REPR = re.compile(r"'?<_io\.BytesIO object at 0x[0-9a-fA-F]+>'?")
_H_SPACE = re.compile(r"[ \t]{2,}")
_ANY_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Extracted:
    """What an attachment contributes to the index."""

    text: str | None  # None: indexed by metadata only
    skipped_reason: str | None  # why there is no text, e.g. "image: metadata only" or "could not read PDF: ..."
    failed: bool  # the file was of a readable type but broken
    truncated: bool = False  # the text stops at max_chars (or a row cap); the rest was dropped


class _Refused(Exception):
    """A file declined before parsing; the message is the reason shown to people."""


class _Budget:
    """Collects text parts until the character budget is used up, so huge files stop early."""

    def __init__(self, max_chars: int) -> None:
        # Normalisation only shrinks text, so collect some slack beyond the final limit.
        self._limit = max_chars * 2 + 1024
        self._size = 0
        self.parts: list[str] = []
        self.truncated = False

    @property
    def full(self) -> bool:
        return self._size >= self._limit

    def add(self, part: str) -> bool:
        """Keep ``part``; False once the budget is used up and the caller should stop."""
        if self.full:
            self.truncated = True
            return False
        self.parts.append(part)
        self._size += len(part) + 1
        return True


def kind_of(media_type: str, filename: str) -> str:
    """Classify an attachment by media type, falling back to the extension for generic types.

    Confluence frequently reports ``application/octet-stream`` (or ``text/plain`` for any text
    file), so only a specific media type beats the extension.
    """
    mime = media_type.split(";", 1)[0].strip().lower()
    by_ext = _EXTENSIONS.get(PurePosixPath(filename.strip().lower()).suffix, "other")
    if mime in _MEDIA_TYPES:
        return _MEDIA_TYPES[mime]
    if mime in _ZIP_TYPES and by_ext in _OFFICE_KINDS:
        return by_ext
    major, _, minor = mime.partition("/")
    if major in ("image", "video", "audio") and minor:
        return major
    if mime.endswith(("+json", "+xml", "+yaml")):
        return "text"
    if major == "text" and mime not in _NOT_TEXT:
        # text/plain is what many clients send for any text file: a .csv or .md is still one.
        return by_ext if by_ext in ("csv", "markdown", "html") else "text"
    if not mime or mime in ("application/octet-stream", "binary/octet-stream", "application/x-download", "unknown"):
        return by_ext
    # Some other specific type: trust a known extension (e.g. .xlsx sent as application/vnd.ms-excel).
    return "other" if mime in _ZIP_TYPES else by_ext


def skip_reason(media_type: str, filename: str, size: int, max_bytes: int) -> str | None:
    """Why the attachment should be indexed by metadata only without downloading it, or None."""
    kind = kind_of(media_type, filename)
    if kind not in READABLE_KINDS:
        return _not_readable(kind, media_type, filename)
    if size > max_bytes:
        big, limit = _sizes(size, max_bytes)
        return f"too large: {big} > {limit} limit"
    return None


def needs_download(media_type: str, filename: str, size: int, max_bytes: int) -> bool:
    """True when the attachment is of a readable type and small enough to fetch and extract.

    An unknown size (0 or negative) is left to the downloader's own cap.
    """
    return skip_reason(media_type, filename, size, max_bytes) is None


def extract_text(data: bytes, media_type: str, filename: str, *, max_chars: int = 1_000_000) -> Extracted:
    """Extract searchable text; never raises.

    A broken file of a readable type gives ``failed=True`` with a short reason. Text is
    whitespace-normalised and cut to ``max_chars`` characters.
    """
    kind = kind_of(media_type, filename)
    if kind not in READABLE_KINDS:
        return Extracted(None, _not_readable(kind, media_type, filename), failed=False)
    budget = _Budget(max(max_chars, 0))
    try:
        _EXTRACTORS[kind](data, budget, filename)
    except _Refused as exc:
        return Extracted(None, f"could not read {_LABELS[kind]}: {exc}", failed=True)
    except Exception as exc:  # any library error on any input is a broken file, not an operator crash
        return Extracted(None, f"could not read {_LABELS[kind]}: {_cause(exc)}", failed=True)
    text = _normalise("\n".join(budget.parts))
    truncated = budget.truncated
    if len(text) > max_chars:
        text = text[:max_chars].rstrip()
        truncated = True
    if not text:
        return Extracted(None, "no text found", failed=False, truncated=truncated)
    return Extracted(text, None, failed=False, truncated=truncated)


# --- per kind -------------------------------------------------------------------------------


def _pdf(data: bytes, budget: _Budget, _filename: str) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        # Many PDFs are "encrypted" only against editing, with an empty user password.
        try:
            opened = reader.decrypt("")
        except Exception as exc:
            raise _Refused(f"encrypted ({_cause(exc)})") from exc
        if not opened:
            raise _Refused("encrypted with a password")
    for page in reader.pages:
        # Blank line between pages.
        if not budget.add(page.extract_text() + "\n"):
            break


def _docx(data: bytes, budget: _Budget, _filename: str) -> None:
    import docx
    from docx.table import Table

    _check_zip(data)
    document = docx.Document(io.BytesIO(data))
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                previous = None
                for cell in row.cells:
                    # A merged cell is repeated once per grid column it spans.
                    if previous is not None and cell._tc is previous._tc:
                        continue
                    previous = cell
                    cells.append(_one_line(cell.text))
                if not _add_row(budget, cells):
                    return
            if not budget.add(""):
                return
        elif not budget.add(block.text):
            return


def _pptx(data: bytes, budget: _Budget, _filename: str) -> None:
    import pptx
    from pptx.shapes.autoshape import Shape
    from pptx.shapes.graphfrm import GraphicFrame
    from pptx.shapes.group import GroupShape

    _check_zip(data)
    presentation = pptx.Presentation(io.BytesIO(data))
    for number, slide in enumerate(presentation.slides, start=1):
        if not budget.add(f"\nSlide {number}"):
            return
        # Depth-first over shapes, groups expanded in place, without recursion.
        stack: list[BaseShape] = list(reversed(list(slide.shapes)))
        while stack:
            shape = stack.pop()
            if isinstance(shape, GroupShape):
                stack.extend(reversed(list(shape.shapes)))
            elif isinstance(shape, GraphicFrame) and shape.has_table:
                for row in shape.table.rows:
                    if not _add_row(budget, [_one_line(cell.text) for cell in row.cells]):
                        return
            elif isinstance(shape, Shape) and shape.has_text_frame and not budget.add(shape.text_frame.text):
                return
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip() and not budget.add(f"Notes: {notes.text}"):
                return


def _xlsx(data: bytes, budget: _Budget, _filename: str) -> None:
    import openpyxl  # type: ignore[import-untyped]

    _check_zip(data)
    # read_only streams rows from the zip instead of building every cell; data_only gives the
    # cached results of formulas rather than the formulas.
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            if not budget.add(f"\n{sheet.title}"):
                return
            first_row = sheet.min_row or 1
            last_col = min(sheet.max_column or MAX_COLUMNS, MAX_COLUMNS)
            last_row = first_row + MAX_ROWS_PER_SHEET - 1
            for values in sheet.iter_rows(min_row=first_row, max_row=last_row, max_col=last_col, values_only=True):
                if not _add_row(budget, [_cell_text(value) for value in values]):
                    return
            if (sheet.max_row or 0) > last_row or (sheet.max_column or 0) > last_col:
                budget.truncated = True
    finally:
        workbook.close()


def _csv(data: bytes, budget: _Budget, filename: str) -> None:
    text = _text_of(data)
    sample = text[:65_536]
    dialect: type[csv.Dialect] | csv.Dialect
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        # Too little or too regular to tell: a single column, or a TSV file that says so by name.
        dialect = csv.excel_tab if filename.lower().endswith(".tsv") else csv.excel
    for row in csv.reader(io.StringIO(text, newline=""), dialect):
        if not _add_row(budget, [_one_line(cell) for cell in row]):
            return


def _html(data: bytes, budget: _Budget, _filename: str) -> None:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_text_of(data))
    root = tree.root
    if root is None:
        return
    text = "".join(_html_pieces(root))
    for line in text.split("\n"):
        if _CELL in line:
            line = " | ".join(cell for cell in (part.strip() for part in line.split(_CELL)) if cell)
        # Blocks nest, so their newlines pile up: one line per block, no blank lines.
        line = line.strip()
        if line and not budget.add(line):
            return


def _plain(data: bytes, budget: _Budget, _filename: str) -> None:
    budget.add(_text_of(data))


_EXTRACTORS = {
    "pdf": _pdf,
    "docx": _docx,
    "pptx": _pptx,
    "xlsx": _xlsx,
    "csv": _csv,
    "html": _html,
    "markdown": _plain,
    "text": _plain,
}


# --- helpers --------------------------------------------------------------------------------


def _html_pieces(root: LexborNode) -> Iterator[str]:
    """Text of the tree in document order, newlines around blocks, without recursion."""
    from selectolax.lexbor import LexborNode

    pre_end = object()  # marks leaving a <pre>, inside which whitespace is kept
    stack: list[LexborNode | str | object] = [root]
    pre_depth = 0
    while stack:
        item = stack.pop()
        if item is pre_end:
            pre_depth -= 1
            continue
        if isinstance(item, str):
            yield item
            continue
        if not isinstance(item, LexborNode):
            continue
        tag = item.tag or ""
        if tag == "-text":
            value = _CONTROLS.sub("", item.text_content or "")
            yield value if pre_depth else _ANY_SPACE.sub(" ", value)
            continue
        if tag.startswith("-") or tag in _HTML_DROPPED:
            continue  # comments, doctype, and elements whose text is code or invisible
        if tag == "br":
            yield "\n"
            continue
        if tag in ("td", "th"):
            yield _CELL
        elif tag in _HTML_BLOCKS:
            yield "\n"
            stack.append("\n")
        if tag == "pre":
            pre_depth += 1
            stack.append(pre_end)
        children: list[LexborNode] = []
        child = item.first_child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend(reversed(children))


def _check_zip(data: bytes) -> None:
    """Refuse archives whose declared contents are too big before any library inflates them.

    zipfile never inflates an entry past its declared size, so the declared total is a bound.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise _Refused("not a valid Office file (corrupt, encrypted or an old binary format)") from exc
    if len(entries) > MAX_ZIP_ENTRIES:
        raise _Refused(f"archive has {len(entries)} entries (limit {MAX_ZIP_ENTRIES})")
    total = sum(entry.file_size for entry in entries)
    if total > MAX_UNZIPPED_BYTES:
        big, limit = _sizes(total, MAX_UNZIPPED_BYTES)
        raise _Refused(f"archive would expand to {big} (limit {limit}), possibly a zip bomb")


def _add_row(budget: _Budget, cells: Iterable[str]) -> bool:
    values = [cell for cell in cells if cell]
    # Fully empty rows carry nothing; the budget is still consulted so callers stop in time.
    return budget.add(" | ".join(values)) if values else not budget.full


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return _one_line(str(value))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _text_of(data: bytes) -> str:
    """Decode a file that claims to be text, refusing binary content mislabelled as such."""
    text = _decode(data)
    head = text[:8192]
    # Like git: a NUL byte means binary (UTF-16 was decoded above, so its NULs are gone); failing
    # that, real text in any 8-bit encoding has almost no control characters.
    if "\x00" in head or len(_BINARY_CONTROLS.findall(head)) > 1 + len(head) // 20:
        raise _Refused("binary content, not text")
    return text


def _decode(data: bytes) -> str:
    """Decode text of unknown encoding: BOMs first, then UTF-8, then the usual Windows legacy."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")  # the codec consumes the BOM
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # cp1252 is what "latin-1" files from Windows mostly are (curly quotes, euro sign)...
        return data.decode("cp1252")
    except UnicodeDecodeError:
        # ...and latin-1 decodes any byte, for the few cp1252 leaves undefined.
        return data.decode("latin-1")


def _normalise(text: str) -> str:
    """Unix newlines, no control characters, no trailing or repeated spaces, no blank runs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\v", "\n")
    text = _CONTROLS.sub("", text)
    lines: list[str] = []
    gap = False
    for raw in text.split("\n"):
        line = raw.rstrip()
        body = line.lstrip()
        if not body:
            gap = bool(lines)
            continue
        if gap:
            lines.append("")
            gap = False
        # Indentation is kept (code, YAML); space runs inside a line are layout, not content.
        lines.append(line[: len(line) - len(body)] + _H_SPACE.sub(" ", body))
    return "\n".join(lines)


def _not_readable(kind: str, media_type: str, filename: str) -> str:
    if kind in ("image", "video", "audio"):
        return f"{kind}: metadata only"
    mime = media_type.split(";", 1)[0].strip().lower()
    suffix = PurePosixPath(filename.strip().lower()).suffix
    if mime and mime not in ("application/octet-stream", "binary/octet-stream"):
        return f"unsupported type {mime}"
    return f"unsupported type {mime or 'unknown'}" + (f" ({suffix})" if suffix else "")


def _sizes(size: int, limit: int) -> tuple[str, str]:
    """Both sizes for a message, precise enough that the first visibly exceeds the second."""
    for decimals in (0, 1, 2):
        big, small = _human(size, decimals), _human(limit, decimals)
        if big != small:
            return big, small
    return f"{size} bytes", f"{limit} bytes"


def _human(size: int, decimals: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            value = f"{size / scale:.{decimals}f}"
            return f"{value} {unit}"
    return f"{size} B"


def _cause(exc: BaseException) -> str:
    """A one-line, bounded description of a library error."""
    message = _IO_REPR.sub("the file", _one_line(str(exc)))
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
