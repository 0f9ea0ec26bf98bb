"""`chunk`: split long content into overlapping chunks, stored with the document as Coco's `document_chunk`.

Each chunk is `{"range": {"start": s, "end": e}, "text": content[s:e]}` (Coco's DocumentChunk shape, without an
embedding); the range is in characters (code points) of `content`, end exclusive. A chunk ends at the last
paragraph break, else line break, else sentence end, else space in the second half of its window; failing all of
those it is cut at `size`, but never inside a combining sequence. The next chunk starts `overlap` characters
before the end, moved forward to the start of a word when the overlap holds one (so the overlap may be
shorter, never longer).
"""

from __future__ import annotations

import re
import unicodedata

from coco_operator.api.enrichment import ChunkSpec
from coco_operator.enrich.base import Document, StepResult, doc_id

FIELD = "document_chunk"
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


def split(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character ranges (start, end exclusive) of the chunks of `text`."""
    n = len(text)
    if n == 0:
        return []
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        hard = start + size
        if hard >= n:
            spans.append((start, n))
            return spans
        lo = start + max(size // 2, overlap + 1)
        end = _cut(text, lo, hard)
        spans.append((start, end))
        start = _next_start(text, end - overlap, end) if overlap else end


def chunks(text: str, size: int, overlap: int) -> list[dict[str, object]]:
    return [{"range": {"start": s, "end": e}, "text": text[s:e]} for s, e in split(text, size, overlap)]


def run(spec: ChunkSpec, docs: list[Document]) -> StepResult:
    out = StepResult(documents=[])
    for doc in docs:
        content = doc.get("content")
        if not isinstance(content, str) or not content:
            out.documents.append(doc)
            continue
        parts = chunks(content, spec.size, spec.overlap)
        out.documents.append({**doc, FIELD: parts})
        if len(parts) > 1:
            out.chunked_ids.add(doc_id(doc))
    return out
