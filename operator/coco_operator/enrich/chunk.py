"""`chunk`: split long content into overlapping chunks, stored with the document as Coco's `document_chunk`.

Each chunk is `{"range": {"start": s, "end": e}, "text": content[s:e]}` (Coco's DocumentChunk shape, without an
embedding); the range is in characters (code points) of `content`, end exclusive. A chunk ends at the last
paragraph break, else line break, else sentence end, else space in the second half of its window; failing all of
those it is cut at `size`, but never inside a combining sequence. The next chunk starts `overlap` characters
before the end, moved forward to the start of a word when the overlap holds one (so the overlap may be
shorter, never longer). The overlap is at most half the size (admission refuses more; the run clamps it), and a
document gets at most MAX_CHUNKS chunks and MAX_CHUNKED_CHARS characters of chunk text.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from coco_operator.api.enrichment import ChunkSpec
from coco_operator.enrich.base import Document, StepResult, doc_id

log = logging.getLogger(__name__)

FIELD = "document_chunk"
# Bounds per document, whatever the spec: a chunk list never dwarfs the content it covers.
MAX_CHUNKS = 2000
MAX_CHUNKED_CHARS = 4_000_000
# Sentence end: Latin punctuation followed by whitespace, or CJK full-width punctuation.
_SENTENCE_END = re.compile("[.!?\u2026](?=\\s)|[\u3002\uff01\uff1f]")
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


def _glued(text: str, pos: int) -> bool:
    """True when cutting at `pos` would split a character sequence that belongs together."""
    if pos <= 0 or pos >= len(text):
        return False
    after, before = text[pos], text[pos - 1]
    return (
        unicodedata.combining(after) != 0
        or after in _JOINERS
        or before == "\u200d"
        or 0x1F3FB <= ord(after) <= 0x1F3FF  # emoji skin tone modifiers
        or (before == "\r" and after == "\n")
    )


def _cut(text: str, lo: int, hard: int) -> int:
    """Where a chunk starting before `lo` and at most reaching `hard` should end (lo < result <= hard)."""
    idx = text.rfind("\n\n", lo, hard)
    if idx >= 0:
        return idx + 2
    idx = text.rfind("\n", lo, hard)
    if idx >= 0:
        return idx + 1
    ends = [m.end() for m in _SENTENCE_END.finditer(text, lo, hard)]
    if ends:
        return ends[-1]
    for pos in range(hard - 1, lo - 1, -1):
        if text[pos].isspace():
            return pos + 1
    end = hard
    while end > lo and _glued(text, end):
        end -= 1
    return end if end > lo else hard


def _next_start(text: str, pos: int, end: int) -> int:
    """Start of the next chunk: `pos`, moved forward to the next word start or out of a glued sequence (< `end`)."""
    if not text[pos - 1].isspace():
        for i in range(pos, end):
            if text[i].isspace():
                j = i
                while j < end and text[j].isspace():
                    j += 1
                if j < end:
                    return j
                break
    while pos < end and _glued(text, pos):
        pos += 1
    return pos


def split(
    text: str, size: int, overlap: int, *, max_chunks: int = MAX_CHUNKS, max_chars: int = MAX_CHUNKED_CHARS
) -> list[tuple[int, int]]:
    """Character ranges (start, end exclusive) of the chunks of `text`, at most `max_chunks` of them and at most
    `max_chars` characters in all (the rest of a very long text is left unchunked).

    Bounded work whatever the spec: the overlap is at most half the size, and a chunk ends at least a quarter of
    the size past where the previous one's overlap starts, so every chunk moves the text on by size/4 or more.
    """
    overlap = min(max(overlap, 0), size // 2)
    n = len(text)
    if n == 0:
        return []
    spans: list[tuple[int, int]] = []
    start, total = 0, 0
    while len(spans) < max_chunks:
        hard = start + size
        if hard >= n:
            if total + n - start <= max_chars:
                spans.append((start, n))
            return spans
        lo = start + max(size // 2, overlap + max(size // 4, 1))
        end = _cut(text, lo, hard)
        total += end - start
        if total > max_chars:
            return spans
        spans.append((start, end))
        start = _next_start(text, end - overlap, end) if overlap else end
    return spans


def chunks(text: str, size: int, overlap: int) -> list[dict[str, object]]:
    return [{"range": {"start": s, "end": e}, "text": text[s:e]} for s, e in split(text, size, overlap)]


def run(spec: ChunkSpec, docs: list[Document]) -> StepResult:
    out = StepResult(documents=[])
    for doc in docs:
        content = doc.get("content")
        if not isinstance(content, str) or not content:
            out.documents.append(doc)
            continue
        spans = split(content, spec.size, spec.overlap)
        if spans[-1][1] < len(content):
            log.info("document %s: only its first %d characters were chunked (limits)", doc_id(doc), spans[-1][1])
        parts = [{"range": {"start": s, "end": e}, "text": content[s:e]} for s, e in spans]
        out.documents.append({**doc, FIELD: parts})
        if len(parts) > 1:
            out.chunked_ids.add(doc_id(doc))
    return out
