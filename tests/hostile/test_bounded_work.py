"""A tenant's spec cannot make the operator work unboundedly: catastrophic title patterns, extreme chunk overlaps,
huge titles and bodies. Bounds are generous multiples, not tight timings."""

from __future__ import annotations

import re
import time

import pytest

from coco_operator.api.enrichment import ChunkSpec, ExcludeSpec, Processor
from coco_operator.enrich import EnrichContext, EnrichingWriter, chunk, exclude
from coco_operator.enrich.base import ProcessorError
from coco_operator.limits import MAX_CONTENT_CHARS, MAX_TITLE_CHARS


def test_a_catastrophic_title_pattern_runs_in_linear_time() -> None:
    """Python's re takes seconds on (a+)+$ against 25 characters (x3.3 per 2 more); RE2 takes microseconds."""
    drops = exclude.matcher(ExcludeSpec(titlePatterns=["(a+)+$", "(x+x+)+y", "^(\\w+\\s?)*$"]))
    titles = ["a" * 25 + "!", "a" * 40 + "!", "x" * 900, "word " * 150 + "!"]
    t0 = time.monotonic()
    results = [drops({"title": t}) for _ in range(100) for t in titles]
    took = time.monotonic() - t0
    print(f"\n[hostile] 400 matches of catastrophic patterns: {took * 1000:.1f} ms")
    assert results[:4] == [False, False, True, False]  # only "x" * 900 matches (^(\w+\s?)*$)
    assert took < 1.0


def test_python_re_would_have_stalled_on_the_same_pattern() -> None:
    """The case above is a real hazard, not a strawman: 22 characters already cost Python's re measurable time."""
    t0 = time.monotonic()
    re.search("(a+)+$", "a" * 22 + "!")
    assert time.monotonic() - t0 > 0.05


def test_a_pattern_re2_cannot_compile_fails_the_run_with_a_reason() -> None:
    spec = ExcludeSpec.model_construct(titlePatterns=["(?<=x)y"], labels=[], ancestors=[], types=[], maxSize=None)
    with pytest.raises(ProcessorError, match="RE2") as err:
        exclude.run(spec, [{"id": "1", "title": "xy"}])
    assert not err.value.retryable


def test_an_extreme_overlap_cannot_multiply_the_chunks() -> None:
    """overlap = size - 1 on a 100k-character CJK page made 98,001 chunks (14 s, 483 MB) before."""
    text = "日本語の文章です" * 12_500  # 100,000 characters, no spaces
    spec = ChunkSpec.model_construct(size=1000, overlap=999)  # as if admitted before the rule
    t0 = time.monotonic()
    spans = chunk.split(text, spec.size, spec.overlap)
    took = time.monotonic() - t0
    print(f"\n[hostile] 100k CJK characters, size 1000, overlap 999: {len(spans)} chunks in {took * 1000:.0f} ms")
    assert len(spans) <= 4 * len(text) // spec.size + 1
    assert spans[-1][1] == len(text) and took < 2


def test_chunks_per_document_are_capped() -> None:
    text = "x" * MAX_CONTENT_CHARS
    spans = chunk.split(text, 200, 100)
    covered = sum(e - s for s, e in spans)
    assert len(spans) <= chunk.MAX_CHUNKS and covered <= chunk.MAX_CHUNKED_CHARS


async def test_documents_are_bounded_before_enrichment() -> None:
    written: list[dict[str, object]] = []

    async def write(doc: dict[str, object]) -> None:
        written.append(doc)

    pipeline = [Processor.model_validate({"type": "exclude", "exclude": {"titlePatterns": ["(a+)+!$"]}})]
    writer = EnrichingWriter(pipeline, EnrichContext(), write)
    huge = {"id": "1", "title": "a" * 10_000_000, "content": "b" * (3 * MAX_CONTENT_CHARS)}
    t0 = time.monotonic()
    await writer.add(huge)
    await writer.flush()
    assert time.monotonic() - t0 < 2
    assert len(written[0]["title"]) == MAX_TITLE_CHARS  # type: ignore[arg-type]
    assert len(written[0]["content"]) == MAX_CONTENT_CHARS  # type: ignore[arg-type]


def test_admission_model_refuses_what_the_crd_refuses() -> None:
    with pytest.raises(ValueError, match="at most half"):
        ChunkSpec(size=500, overlap=251)
    with pytest.raises(ValueError, match="lookaround"):
        ExcludeSpec(titlePatterns=["^(?!Draft)"])
    assert ExcludeSpec(titlePatterns=["(a+)+$"]).titlePatterns == ["(a+)+$"]  # linear under RE2: allowed
