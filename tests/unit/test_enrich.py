"""Enrichment: the processors of `spec.enrichment` over realistic documents, the webhook against a real HTTP server,
the pipeline, the models' validation and the CRD schema they generate."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from coco_operator.api.common import ApiModel
from coco_operator.api.crd import openapi_schema
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.api.enrichment import (
    EMBEDDERS_FREE_TEXT,
    Embedders,
    Enrichment,
    Processor,
    webhook_token_refs,
)
from coco_operator.documents import MappingContext, attachment_document, content_document
from coco_operator.enrich import EnrichContext, EnrichingWriter, apply
from coco_operator.enrich.chunk import split
from coco_operator.errors import SyncError

DS = "ns/wiki"
CTX = MappingContext(
    datasource_id=DS,
    datasource_name="Engineering wiki",
    site_base="https://acme.atlassian.net/wiki",
    space_key="ENG",
    space_name="Engineering",
)
TOKEN = "s3cret-webhook-token"


# ----------------------------------------------------------------------------------------------- documents


def _item(
    cid: str,
    title: str,
    body: str = "<p>Some text.</p>",
    *,
    labels: tuple[str, ...] = (),
    ancestors: tuple[tuple[str, str], ...] = (),
    kind: str = "page",
) -> dict[str, Any]:
    user = {"accountId": "557058:1", "displayName": "Ada Lovelace"}
    return {
        "id": cid,
        "type": kind,
        "status": "current",
        "title": title,
        "space": {"key": "ENG", "name": "Engineering"},
        "version": {"number": 3, "when": "2025-03-01T10:00:00.000Z", "by": user},
        "history": {"createdDate": "2024-01-01T09:00:00.000Z", "createdBy": user},
        "ancestors": [{"id": aid, "title": atitle} for aid, atitle in ancestors],
        "metadata": {"labels": {"results": [{"prefix": "global", "name": n} for n in labels]}},
        "body": {"storage": {"value": body}},
        "_links": {"webui": f"/spaces/ENG/pages/{cid}"},
    }


def page(cid: str, title: str, body: str = "<p>Some text.</p>", **kw: Any) -> dict[str, Any]:
    return content_document(_item(cid, title, body, **kw), CTX)


def attachment(cid: str, title: str, container: tuple[str, str], size: int = 1000) -> dict[str, Any]:
    item = _item(cid, title, kind="attachment")
    item["container"] = {"id": container[0], "title": container[1]}
    item["extensions"] = {"mediaType": "application/pdf", "fileSize": size}
    return attachment_document(item, "extracted text", CTX)


ARCHIVE = ("100", "Archive")
HOME = ("1", "Engineering Home")


def space() -> list[dict[str, Any]]:
    return [
        page("1", "Engineering Home", "<p>Welcome.</p>"),
        page("2", "Deploy runbook", "<p>Steps.</p>", labels=("runbook",), ancestors=(HOME,)),
        page("3", "Old deploy runbook", "<p>Old.</p>", labels=("runbook", "no-index"), ancestors=(HOME,)),
        page("100", "Archive", "<p>Old things.</p>", ancestors=(HOME,)),
        page("101", "2019 on-call", "<p>Rota.</p>", ancestors=(HOME, ARCHIVE)),
        page("102", "DRAFT: new onboarding", "<p>Soon.</p>", ancestors=(HOME,)),
        page("103", "Capacity plan", "<p>" + "Numbers. " * 500 + "</p>", ancestors=(HOME,)),
        content_document({**_item("200", "Release notes 4.2"), "type": "blogpost"}, CTX),
        attachment("att300", "rota.pdf", ARCHIVE),
        attachment("att301", "diagram.pdf", ("2", "Deploy runbook"), size=50_000_000),
    ]


def by_cid(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["content_id"]: d for d in docs}


def procs(*raw: dict[str, Any]) -> list[Processor]:
    return [Processor.model_validate(p) for p in raw]


async def run(raw: list[dict[str, Any]], docs: list[dict[str, Any]], **ctx: Any) -> Any:
    context = EnrichContext(datasource_id=DS, datasource_name="Engineering wiki", backoff_base_s=0.01, **ctx)
    return await apply(procs(*raw), docs, context)


# ----------------------------------------------------------------------------------------------- exclude


async def test_exclude_by_label_case_insensitive() -> None:
    res = await run([{"type": "exclude", "exclude": {"labels": ["No-Index"]}}], space())
    assert sorted(by_cid(res.documents)) == sorted(set(by_cid(space())) - {"3"})
    assert res.dropped_ids == [by_cid(space())["3"]["id"]]
    assert res.counts.dropped == 1 and res.counts.enriched == 0


async def test_exclude_by_title_pattern() -> None:
    res = await run([{"type": "exclude", "exclude": {"titlePatterns": ["^DRAFT:", "(?i)^old "]}}], space())
    assert set(by_cid(space())) - set(by_cid(res.documents)) == {"102", "3"}


async def test_exclude_by_ancestor_title_drops_the_page_its_children_and_attachments() -> None:
    res = await run([{"type": "exclude", "exclude": {"ancestors": ["Archive"]}}], space())
    assert set(by_cid(space())) - set(by_cid(res.documents)) == {"100", "101", "att300"}
    assert res.counts.dropped == 3


async def test_exclude_by_ancestor_id() -> None:
    docs = space()
    # Page ids of ancestors, when the document carries them, work as well as titles.
    by_cid(docs)["101"]["metadata"]["ancestor_ids"] = ["1", "100"]
    res = await run([{"type": "exclude", "exclude": {"ancestors": ["100"]}}], docs)
    assert set(by_cid(docs)) - set(by_cid(res.documents)) == {"100", "101", "att300"}


async def test_exclude_by_type_and_size() -> None:
    res = await run([{"type": "exclude", "exclude": {"types": ["blogpost"]}}], space())
    assert set(by_cid(space())) - set(by_cid(res.documents)) == {"200"}
    res = await run([{"type": "exclude", "exclude": {"maxSize": 4000}}], space())
    # The capacity plan's text (4.5 kB) and the 50 MB attachment.
    assert set(by_cid(space())) - set(by_cid(res.documents)) == {"103", "att301"}


async def test_exclude_any_criterion_is_enough() -> None:
    res = await run([{"type": "exclude", "exclude": {"labels": ["no-index"], "types": ["attachment"]}}], space())
    assert set(by_cid(space())) - set(by_cid(res.documents)) == {"3", "att300", "att301"}


# ----------------------------------------------------------------------------------------------- set


async def test_set_fields_tags_and_labels() -> None:
    labels = {"app.kubernetes.io/part-of": "search", "coco.rs/visibility": "internal"}
    res = await run(
        [
            {
                "type": "set",
                "set": {
                    "fields": {"team": "platform", "visibility": "public"},
                    "tags": ["engineering", "runbook"],
                    "fromLabels": {
                        "visibility": "coco.rs/visibility",
                        "system": "app.kubernetes.io/part-of",
                        "environment": "app.kubernetes.io/environment",  # no such label: left out
                    },
                },
            }
        ],
        space(),
        labels=labels,
    )
    docs = by_cid(res.documents)
    runbook = docs["2"]
    assert runbook["team"] == "platform"
    assert runbook["visibility"] == "internal"  # the label wins over the fixed value
    assert runbook["system"] == "search"
    assert "environment" not in runbook
    assert runbook["tags"] == ["runbook", "engineering"]  # no duplicate, document's own labels first
    assert docs["1"]["tags"] == ["engineering", "runbook"]
    assert res.counts.enriched == len(space())
    # Everything else is untouched, and the input documents were not modified.
    assert {k: v for k, v in runbook.items() if k not in ("team", "visibility", "system", "tags")} == {
        k: v for k, v in by_cid(space())["2"].items() if k != "tags"
    }


async def test_set_counts_only_changed_documents() -> None:
    docs = space()
    res = await run([{"type": "set", "set": {"tags": ["runbook"]}}], docs)
    assert res.counts.enriched == len(docs) - 2  # the two runbooks already had the tag
    assert docs[0]["tags"] == []  # input untouched


# ----------------------------------------------------------------------------------------------- chunk


def _assert_chunks(text: str, spans: list[tuple[int, int]], size: int, overlap: int) -> None:
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(0 < e - s <= size for s, e in spans)
    for (s1, e1), (s2, e2) in itertools.pairwise(spans):
        assert s1 < s2 <= e1 < e2  # moves forward, never leaves a gap
        assert e1 - s2 <= overlap


PARAGRAPHS = "\n\n".join(
    f"Paragraph {i}. " + " ".join(f"The service number {j} restarts cleanly." for j in range(12)) for i in range(40)
)


async def test_chunk_sizes_overlap_and_boundaries() -> None:
    docs = [page("1", "Long", "".join(f"<p>{p}</p>" for p in PARAGRAPHS.split("\n\n"))), page("2", "Short")]
    res = await run([{"type": "chunk", "chunk": {"size": 1000, "overlap": 100}}], docs)
    long, short = res.documents
    content = long["content"]
    chunks = long["document_chunk"]
    assert len(chunks) > 10 and res.counts.chunked == 1
    spans = [(c["range"]["start"], c["range"]["end"]) for c in chunks]
    _assert_chunks(content, spans, 1000, 100)
    for c in chunks:
        assert content[c["range"]["start"] : c["range"]["end"]] == c["text"]
    for c in chunks[:-1]:
        # Cut at a paragraph, line or sentence end, never inside a word.
        assert c["text"].rstrip(" ").endswith((".", "\n")), c["text"][-30:]
    for c in chunks[1:]:
        assert not content[c["range"]["start"] - 1].isalnum()  # starts at a word
    assert short["document_chunk"] == [{"range": {"start": 0, "end": len(short["content"])}, "text": short["content"]}]


def test_chunk_prefers_paragraph_then_sentence_then_space() -> None:
    text = "a" * 150 + "\n\n" + "b" * 40 + ". " + "c" * 50 + " " + "d" * 300
    assert split(text, 250, 0)[0] == (0, 152)  # paragraph break in the second half wins
    text = "a" * 150 + " bb. " + "c" * 50 + " " + "d" * 300
    assert split(text, 250, 0)[0] == (0, 154)  # then a sentence end
    text = "a" * 150 + " " + "c" * 50 + " " + "d" * 300
    assert split(text, 250, 0)[0] == (0, 202)  # then the last space
    text = "x" * 1000
    assert split(text, 250, 50) == [(0, 250), (200, 450), (400, 650), (600, 850), (800, 1000)]


def test_chunk_overlap_extremes() -> None:
    text = " ".join(f"w{i}" for i in range(2000))
    _assert_chunks(text, split(text, 200, 0), 200, 0)
    _assert_chunks(text, split(text, 200, 199), 200, 199)
    _assert_chunks(text, split(text, 500, 250), 500, 250)
    assert split("", 200, 0) == []


def test_chunk_unicode_is_counted_in_characters_and_never_splits_a_character() -> None:
    # Decomposed accents (e + combining acute), CJK without spaces and emoji ZWJ sequences.
    text = ("e\u0301" * 300) + ("日本語の文章です" * 60) + ("👩\u200d💻" * 200)
    spans = split(text, 200, 20)
    _assert_chunks(text, spans, 200, 20)
    for s, e in spans:
        assert not unicodedata.combining(text[s]) and text[s] != "\u200d"
        assert e == len(text) or (not unicodedata.combining(text[e]) and text[e] != "\u200d")
    cjk = "日本語の文章です。" * 100
    first = split(cjk, 200, 0)[0]
    assert cjk[first[1] - 1] == "。"  # a CJK sentence end counts as a boundary


# ----------------------------------------------------------------------------------------------- webhook


@dataclass
class Hook:
    server: TestServer
    calls: dict[str, int] = field(default_factory=dict)
    auth: list[str | None] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    state: dict[str, Hook] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        h = state["hook"]
        name = request.match_info["name"]
        h.calls[name] = h.calls.get(name, 0) + 1
        h.auth.append(request.headers.get("Authorization"))
        body = await request.json()
        h.bodies.append(body)
        docs = body["documents"]
        if name == "enrich":
            return web.json_response({"documents": [{**d, "summary": f"About {d['title']}"} for d in docs]})
        if name == "list":
            return web.json_response([{**d, "lang": "en"} for d in docs])
        if name == "slow":
            await asyncio.sleep(5)
            return web.json_response({"documents": docs})
        if name == "malformed":
            return web.Response(text='{"documents": [', content_type="application/json")
        if name == "wrong-shape":
            return web.json_response({"docs": docs})
        if name == "flaky":
            if h.calls[name] <= 2:
                return web.Response(status=503 if h.calls[name] == 1 else 500, text="warming up")
            return web.json_response({"documents": [{**d, "flaky": True} for d in docs]})
        if name == "change-ids":
            return web.json_response({"documents": [{**d, "id": d["id"] + "-x"} for d in docs]})
        if name == "change-source":
            return web.json_response(
                {"documents": [{**d, "source": {"type": "connector", "id": "other"}} for d in docs]}
            )
        if name == "drop":
            return web.json_response({"documents": docs[1:]})
        if name == "echo-auth":
            return web.Response(status=400, text=f"bad request, you sent {request.headers.get('Authorization')}")
        if name == "unauthorized":
            return web.Response(status=401, text="invalid token")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_post("/{name}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state["hook"] = Hook(server)
    yield state["hook"]
    await server.close()


def webhook(url: str, **options: Any) -> dict[str, Any]:
    return {"type": "webhook", "name": "summaries", "webhook": {"url": url, **options}}


async def test_webhook_enriches_with_bearer_token(hook: Hook) -> None:
    docs = space()[:3]
    ref = {"name": "enricher-token", "key": "token"}
    res = await run([webhook(hook.url("/enrich"), tokenSecretRef=ref)], docs, tokens={0: TOKEN})
    assert [d["summary"] for d in res.documents] == [f"About {d['title']}" for d in docs]
    assert res.counts.enriched == 3 and res.counts.dropped == 0 and not res.warnings
    assert hook.auth == [f"Bearer {TOKEN}"]
    sent = hook.bodies[0]
    assert sent["datasource"] == {"id": DS, "name": "Engineering wiki"}
    assert sent["processor"] == {"index": 0, "name": "summaries"}
    assert [d["id"] for d in sent["documents"]] == [d["id"] for d in docs]


async def test_webhook_bare_list_answer_and_no_token(hook: Hook) -> None:
    res = await run([webhook(hook.url("/list"))], space()[:2])
    assert [d["lang"] for d in res.documents] == ["en", "en"]
    assert hook.auth == [None]


async def test_webhook_may_drop_documents(hook: Hook) -> None:
    docs = space()[:3]
    res = await run([webhook(hook.url("/drop"))], docs)
    assert [d["id"] for d in res.documents] == [d["id"] for d in docs[1:]]
    assert res.dropped_ids == [docs[0]["id"]] and res.counts.dropped == 1


async def test_webhook_retries_5xx_then_succeeds(hook: Hook) -> None:
    res = await run([webhook(hook.url("/flaky"), retries=2)], space()[:2])
    assert hook.calls["flaky"] == 3
    assert all(d["flaky"] for d in res.documents)


async def test_webhook_gives_up_after_its_retries(hook: Hook) -> None:
    with pytest.raises(SyncError) as err:
        await run([webhook(hook.url("/flaky"), retries=1)], space()[:2])
    assert hook.calls["flaky"] == 2
    assert err.value.reason == "EnrichmentFailed" and err.value.retryable
    assert "HTTP 500: warming up (2 attempts)" in err.value.message


async def test_webhook_timeout(hook: Hook) -> None:
    with pytest.raises(SyncError) as err:
        await run([webhook(hook.url("/slow"), timeoutSeconds=1, retries=0)], space()[:1])
    assert "no answer within 1s" in err.value.message


async def test_webhook_connection_refused_is_retried_then_fails() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SyncError) as err:
        await run([webhook(f"http://127.0.0.1:{port}/enrich", retries=2)], space()[:1])
    assert "could not reach it" in err.value.message and "(3 attempts)" in err.value.message


async def test_webhook_malformed_json_fails_the_run_and_names_the_processor(hook: Hook) -> None:
    pipeline = [{"type": "set", "set": {"tags": ["x"]}}, webhook(hook.url("/malformed") + "?key=abc")]
    with pytest.raises(SyncError) as err:
        await run(pipeline, space()[:2])
    message = err.value.message
    assert message.startswith(f'processor #2 (webhook "summaries" {hook.url("/malformed")}) failed: ')
    assert "not valid JSON" in message and "onFailure: Skip" in message
    assert "key=abc" not in message  # no query string (it may carry credentials)
    assert hook.calls["malformed"] == 1  # a malformed answer is not retried


async def test_webhook_wrong_answer_shape(hook: Hook) -> None:
    with pytest.raises(SyncError, match=r'answer must be \{"documents": \[\.\.\.\]\}'):
        await run([webhook(hook.url("/wrong-shape"))], space()[:1])


@pytest.mark.parametrize(
    ("path", "what"), [("/change-ids", "which was not sent"), ("/change-source", "changed source")]
)
async def test_webhook_may_not_invent_ids_or_change_source(hook: Hook, path: str, what: str) -> None:
    with pytest.raises(SyncError) as err:
        await run([webhook(hook.url(path))], space()[:2])
    assert what in err.value.message


async def test_webhook_skip_passes_documents_unenriched_and_warns(hook: Hook) -> None:
    pipeline = [
        {"type": "set", "set": {"fields": {"team": "platform"}}},
        webhook(hook.url("/malformed"), onFailure="Skip"),
        {"type": "chunk", "chunk": {"size": 200, "overlap": 0}},
    ]
    docs = space()
    res = await run(pipeline, docs)
    assert len(res.documents) == len(docs)
    assert all(d["team"] == "platform" and "document_chunk" in d for d in res.documents)
    assert not any("summary" in d for d in res.documents)
    assert len(res.warnings) == 1
    warning = res.warnings[0]
    assert warning.index == 1 and warning.documents == len(docs)
    assert str(warning).startswith('processor #2 (webhook "summaries"')
    assert "indexed without it" in str(warning)


async def test_webhook_token_never_appears_in_errors(hook: Hook) -> None:
    ref = {"name": "enricher-token"}
    with pytest.raises(SyncError) as err:
        await run([webhook(hook.url("/echo-auth"), tokenSecretRef=ref)], space()[:1], tokens={0: TOKEN})
    assert hook.auth == [f"Bearer {TOKEN}"]
    assert "HTTP 400" in err.value.message and TOKEN not in err.value.message and TOKEN not in str(err.value)
    res = await run(
        [webhook(hook.url("/echo-auth"), tokenSecretRef=ref, onFailure="Skip")], space()[:1], tokens={0: TOKEN}
    )
    assert TOKEN not in str(res.warnings[0])


async def test_webhook_unauthorized_is_not_retried_and_points_at_the_secret(hook: Hook) -> None:
    ref = {"name": "enricher-token"}
    with pytest.raises(SyncError) as err:
        await run([webhook(hook.url("/unauthorized"), tokenSecretRef=ref)], space()[:1], tokens={0: "wrong"})
    assert hook.calls["unauthorized"] == 1
    assert not err.value.retryable and "tokenSecretRef" in err.value.message


async def test_webhook_missing_token_fails_before_sending(hook: Hook) -> None:
    with pytest.raises(SyncError, match="Secret enricher-token"):
        await run([webhook(hook.url("/enrich"), tokenSecretRef={"name": "enricher-token"})], space()[:1])
    assert hook.calls == {}


# ----------------------------------------------------------------------------------------------- pipeline


async def test_pipeline_runs_in_order(hook: Hook) -> None:
    # set adds a tag that a later exclude acts on; chunks exist by the time the webhook sees the documents.
    pipeline = [
        {"type": "set", "set": {"tags": ["hidden"]}},
        {"type": "exclude", "exclude": {"labels": ["hidden"]}},
    ]
    res = await run(pipeline, space())
    assert res.documents == [] and res.counts.dropped == len(space()) and res.counts.enriched == 0
    assert hook.calls == {}

    pipeline = [
        {"type": "exclude", "exclude": {"labels": ["no-index"], "ancestors": ["Archive"]}},
        {"type": "set", "set": {"fields": {"team": "platform"}}},
        {"type": "chunk", "chunk": {"size": 1000, "overlap": 100}},
        webhook(hook.url("/enrich")),
    ]
    res = await run(pipeline, space())
    sent = hook.bodies[0]["documents"]
    assert len(sent) == len(space()) - 4
    assert all(d["team"] == "platform" and d["document_chunk"] for d in sent)
    assert res.counts.dropped == 4 and res.counts.enriched == len(sent) and res.counts.chunked == 1


async def test_empty_pipeline_passes_documents_through() -> None:
    docs = space()
    res = await apply(None, docs, EnrichContext())
    assert res.documents == docs and res.counts.dropped == res.counts.enriched == res.counts.chunked == 0


async def test_writer_batches_and_accumulates(hook: Hook) -> None:
    written: list[dict[str, Any]] = []

    async def write(doc: dict[str, Any]) -> None:
        written.append(doc)

    pipeline = procs(
        {"type": "exclude", "exclude": {"labels": ["no-index"]}},
        {"type": "set", "set": {"tags": ["eng"]}},
        webhook(hook.url("/malformed"), onFailure="Skip"),
    )
    writer = EnrichingWriter(pipeline, EnrichContext(backoff_base_s=0.01), write, batch_size=4)
    for doc in space():
        await writer.add(doc)
    assert len(written) == 8 - 1  # two batches written (minus the no-index page), the last 2 still buffered
    await writer.flush()
    assert len(written) == len(space()) - 1
    assert hook.calls["malformed"] == 3  # batches of 4, 4, 2
    assert writer.counts.dropped == 1 and writer.counts.enriched == len(space()) - 1
    assert writer.dropped_ids == {by_cid(space())["3"]["id"]}
    [warning] = writer.warnings
    assert warning.startswith('processor #3 (webhook "summaries"') and "9 documents in 3 batches" in warning


async def test_writer_without_pipeline_writes_through() -> None:
    written: list[dict[str, Any]] = []

    async def write(doc: dict[str, Any]) -> None:
        written.append(doc)

    writer = EnrichingWriter(None, EnrichContext(), write)
    await writer.add({"id": "a"})
    assert written == [{"id": "a"}]


# ----------------------------------------------------------------------------------------------- models


class _Spec(ApiModel):
    enrichment: Enrichment = None
    embedders: Embedders = None


class _Wrapper(ApiModel):
    spec: _Spec


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as err:
        _Spec.model_validate(raw)
    return str(err.value)


@pytest.mark.parametrize(
    ("processor", "message"),
    [
        ({"type": "translate"}, "Input should be 'exclude', 'set', 'chunk' or 'webhook'"),
        ({"type": "chunk"}, "type: chunk needs its options under `chunk:`"),
        (
            {"type": "set", "set": {"tags": ["a"]}, "chunk": {}},
            "`chunk:` options belong to a processor with type: chunk",
        ),
        ({"type": "chunk", "chunk": {"size": 500, "sizee": 1}}, "Extra inputs are not permitted"),
        ({"type": "exclude", "exclude": {}}, "exclude needs at least one of"),
        ({"type": "exclude", "exclude": {"titlePatterns": ["(unclosed"]}}, "is not a valid RE2 regular expression"),
        ({"type": "exclude", "exclude": {"titlePatterns": ["^(?!Draft)"]}}, "RE2-compatible"),
        ({"type": "exclude", "exclude": {"titlePatterns": [r"(a)\1"]}}, "RE2-compatible"),
        ({"type": "exclude", "exclude": {"types": ["comment"]}}, "Input should be 'page', 'blogpost' or 'attachment'"),
        ({"type": "set", "set": {}}, "set needs at least one of"),
        ({"type": "set", "set": {"fields": {"id": "x"}}}, "may not write id"),
        ({"type": "set", "set": {"fromLabels": {"content": "team"}}}, "may not write content"),
        ({"type": "set", "set": {"fields": {"a.b": "x"}}}, "top-level field names"),
        ({"type": "set", "set": {"fromLabels": {"team": "not a label"}}}, "must be label keys"),
        ({"type": "chunk", "chunk": {"size": 100}}, "greater than or equal to 200"),
        ({"type": "chunk", "chunk": {"size": 500, "overlap": 500}}, "overlap must be at most half of chunk.size"),
        ({"type": "webhook", "webhook": {"url": "ftp://x/y"}}, "should match pattern"),
        ({"type": "webhook", "webhook": {"url": "https://user:pw@x/y"}}, "should match pattern"),
        ({"type": "webhook", "webhook": {"url": "https://x/y", "retries": 11}}, "less than or equal to 10"),
        ({"type": "webhook", "webhook": {"url": "https://x/y", "onFailure": "Ignore"}}, "'Fail' or 'Skip'"),
    ],
)
def test_bad_processors_are_refused(processor: dict[str, Any], message: str) -> None:
    assert message in _error({"enrichment": [processor]})


def test_at_most_20_processors() -> None:
    assert "at most 20 items" in _error({"enrichment": [{"type": "chunk", "chunk": {}}] * 21})


def test_good_spec_and_defaults() -> None:
    spec = _Spec.model_validate(
        {
            "enrichment": [
                {"type": "chunk", "chunk": {}},
                {"type": "webhook", "webhook": {"url": "http://enricher.search.svc:8080/enrich"}},
                {"type": "webhook", "webhook": {"url": "https://x/y", "tokenSecretRef": {"name": "tok"}}},
            ]
        }
    )
    assert spec.enrichment is not None
    chunk, hook, _ = spec.enrichment
    assert chunk.chunk is not None and (chunk.chunk.size, chunk.chunk.overlap) == (2000, 200)
    assert hook.webhook is not None
    assert (hook.webhook.timeoutSeconds, hook.webhook.retries, hook.webhook.onFailure) == (30, 2, "Fail")
    refs = webhook_token_refs(spec.enrichment)
    assert list(refs) == [2] and (refs[2].name, refs[2].key) == ("tok", "token")


def test_embedders_are_profile_names_and_the_old_free_form_fails_clearly() -> None:
    assert _Spec.model_validate({"embedders": ["default", "local_1"]}).embedders == ["default", "local_1"]
    assert "String should match pattern" in _error({"embedders": ["no spaces"]})
    old = {"default": {"source": "rest", "url": "http://169.254.169.254/latest", "request": {}, "response": {}}}
    spec = {"name": "W", "connector": {"id": "confluence", "config": {"endpoint": "https://w.example.com",
            "tokenSecretRef": {"name": "t"}, "space": "D"}}}  # fmt: skip
    with pytest.raises(ValidationError) as err:
        DatasourceSpec.model_validate({**spec, "embedders": old})
    assert EMBEDDERS_FREE_TEXT in str(err.value) and "169.254" not in str(err.value)


# ----------------------------------------------------------------------------------------------- CRD schema


def _structural_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    bad = [f"{path}:{k}" for k in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs") if k in schema]
    if "type" not in schema and "x-kubernetes-preserve-unknown-fields" not in schema and path:
        bad.append(f"{path}:no type")
    if schema.get("additionalProperties") is True or ("additionalProperties" in schema and "properties" in schema):
        bad.append(f"{path}:additionalProperties")
    for name, sub in (schema.get("properties") or {}).items():
        bad += _structural_problems(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        bad += _structural_problems(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        bad += _structural_problems(schema["additionalProperties"], f"{path}{{}}")
    return bad


def test_crd_schema_is_structural_and_carries_the_rules() -> None:
    schema = openapi_schema(_Wrapper)
    assert _structural_problems(schema) == []
    spec = schema["properties"]["spec"]["properties"]
    enrichment = spec["enrichment"]
    assert enrichment["type"] == "array" and enrichment["maxItems"] == 20
    processor = enrichment["items"]
    assert processor["properties"]["type"]["enum"] == ["exclude", "set", "chunk", "webhook"]
    rules = {v["rule"]: v for v in processor["x-kubernetes-validations"]}
    for t in ("exclude", "set", "chunk", "webhook"):
        assert f"type: {t} needs its options" in rules[f"self.type != '{t}' || has(self.{t})"]["message"]
        assert rules[f"self.type == '{t}' || !has(self.{t})"]["reason"] == "FieldValueForbidden"
    props = processor["properties"]
    chunk_rules = [v["rule"] for v in props["chunk"]["x-kubernetes-validations"]]
    assert chunk_rules == ["self.overlap * 2 <= self.size"]
    assert props["chunk"]["properties"]["size"] == {
        "default": 2000,
        "description": "Largest chunk, in characters (200 to 100000).",
        "maximum": 100000,
        "minimum": 200,
        "type": "integer",
    }
    fields = props["set"]["properties"]["fields"]
    assert fields["additionalProperties"]["type"] == "string"
    assert any("'id'" in v["rule"] and "'content'" in v["rule"] for v in fields["x-kubernetes-validations"])
    assert props["exclude"]["x-kubernetes-validations"][0]["rule"].startswith("(has(self.labels)")
    assert props["webhook"]["properties"]["onFailure"] == {
        "default": "Fail",
        "description": props["webhook"]["properties"]["onFailure"]["description"],
        "enum": ["Fail", "Skip"],
        "type": "string",
    }
    embedders = spec["embedders"]
    assert embedders["type"] == "array" and embedders["maxItems"] == 10
    assert embedders["items"]["type"] == "string" and embedders["items"]["pattern"] == "^[A-Za-z0-9_-]+$"
    # Round trip: what the CRD stores is what the models read.
    json.dumps(schema)
