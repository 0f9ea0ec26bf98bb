"""Hostile answers cost bounded time and memory: compression bombs, trickling and silent servers, huge and deeply
nested JSON, oversized downloads. Bounds are generous (several times the configured limit), never tight timings."""

from __future__ import annotations

import time

import orjson
import pytest
from aiohttp import web

from coco_operator.confluence.client import ConfluenceClient
from coco_operator.errors import ConfluenceUnavailableError, SyncError
from tests.hostile.conftest import loopback_policy
from tests.hostile.measure import in_child
from tests.hostile.server import HostileServer, bomb, json_answer, never_answers, raw_answer, trickle

MB = 1024 * 1024


def client(server: HostileServer, **kw: object) -> ConfluenceClient:
    options: dict[str, object] = {"egress": loopback_policy(), "max_retry_s": 2, "deadline_s": 5, **kw}
    return ConfluenceClient(server.url, "pat", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_stops_at_the_cap_on_decoded_bytes(endpoint: HostileServer, encoding: str) -> None:
    body = bomb(1024 * MB, encoding)  # 1 GiB of zeros in about 1 MB
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    endpoint.route("/rest/api/space/A", raw_answer(body, headers=headers))
    spec = {"op": "get_json", "endpoint": endpoint.url, "path": "/space/A", "client": {"max_response_bytes": 8 * MB}}
    run, grew = in_child(f"{encoding} bomb, {len(body) // 1024} KB -> 1 GiB, cap 8 MiB", spec)
    assert run.report["reason"] == "ResponseTooLarge"
    assert "larger than the limit of 8388608 bytes" in run.report["message"]
    assert len(endpoint.hits) == 1  # not retried: another attempt would get the same bomb
    assert grew < 64  # the cap plus one decoding step, not 1 GiB
    assert run.report["seconds"] < 10


def test_an_attachment_is_never_read_whole_before_the_cap(endpoint: HostileServer) -> None:
    big = b"x" * (64 * MB)

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})  # no Content-Length: chunked
        await resp.prepare(request)
        for i in range(0, len(big), MB):
            await resp.write(big[i : i + MB])
        return resp

    endpoint.route("/download/attachments/1/chunked.txt", chunked)
    endpoint.route("/download/attachments/1/declared.txt", raw_answer(big, headers={"Content-Type": "text/plain"}))
    endpoint.route("/download/attachments/1/bomb.txt", raw_answer(bomb(512 * MB), headers={"Content-Encoding": "gzip"}))
    for name in ("chunked.txt", "declared.txt", "bomb.txt"):
        spec = {"op": "get_bytes", "endpoint": endpoint.url, "path": f"/download/attachments/1/{name}", "max_bytes": MB}
        run, grew = in_child(f"64 MB attachment {name}, cap 1 MiB", spec)
        assert run.report["reason"] == "AttachmentTooLarge", name
        assert f"exceeds {MB} bytes" in run.report["message"]
        assert grew < 32, name


async def test_a_trickling_server_cannot_hold_a_run(endpoint: HostileServer) -> None:
    endpoint.route("/rest/api/space/A", trickle(b'{"key": "A", "x": "', every_s=0.2))
    deadline, budget = 1.0, 2.0
    t0 = time.monotonic()
    async with client(endpoint, deadline_s=deadline, max_retry_s=budget, timeout_s=30) as c:
        with pytest.raises(ConfluenceUnavailableError, match="no complete answer within 1s"):
            await c.get_space("A")
    took = time.monotonic() - t0
    print(f"\n[hostile] trickle 1 byte/0.2s, deadline 1s, retry budget 2s: {took:.2f}s, {len(endpoint.hits)} requests")
    # Every attempt ends at the deadline although a byte arrives well within the per-read timeout (30 s).
    assert took < 3 * (budget + deadline)
    assert 1 <= len(endpoint.hits) <= 3


async def test_a_server_that_never_answers_is_bounded_by_the_deadline(endpoint: HostileServer) -> None:
    endpoint.route("/rest/api/space/A", never_answers())
    t0 = time.monotonic()
    async with client(endpoint, deadline_s=1.0, max_retry_s=1.0, timeout_s=60) as c:
        with pytest.raises(ConfluenceUnavailableError, match="no complete answer within 1s"):
            await c.get_space("A")
    took = time.monotonic() - t0
    print(f"\n[hostile] no answer at all, deadline 1s, retry budget 1s: {took:.2f}s, {len(endpoint.hits)} requests")
    assert took < 3 * 2.0


async def test_deeply_nested_json_fails_fast(endpoint: HostileServer) -> None:
    depth = 550_000  # 1.1 MB of brackets
    endpoint.route("/rest/api/space/A", raw_answer(b"[" * depth + b"]" * depth))
    t0 = time.monotonic()
    async with client(endpoint) as c:
        with pytest.raises(ConfluenceUnavailableError, match="malformed JSON"):
            await c.get_space("A")
    took = time.monotonic() - t0
    print(f"\n[hostile] 1.1 MB of nested JSON arrays: {took:.2f}s, {len(endpoint.hits)} requests")
    assert took < 5


def test_json_with_too_many_values_is_refused_before_parsing(endpoint: HostileServer) -> None:
    body = orjson.dumps({"results": [[0, [1, {"a": 2}]]] * 400_000})  # 2.4 million values in 6.4 MB
    endpoint.route("/rest/api/content/search", raw_answer(body))
    spec = {"op": "get_json", "endpoint": endpoint.url, "path": "/content/search"}
    run, grew = in_child(f"{len(body) // MB} MB of tiny JSON values", spec)
    assert run.report["reason"] == "ResponseTooLarge" and "more than 1000000 JSON values" in run.report["message"]
    assert grew < 48  # the bytes, not the 2.4 million objects parsing would build


async def test_commas_inside_strings_do_not_count_as_values(endpoint: HostileServer) -> None:
    text = "a," * 1_500_000  # a page whose text is full of commas: 3 MB, still one value
    endpoint.route("/rest/api/content/search", json_answer({"results": [{"id": "1", "body": text}]}))
    async with client(endpoint) as c:
        page = await c.get_json("/content/search")
    assert page["results"][0]["body"] == text


async def test_an_encoding_it_did_not_ask_for_is_refused(endpoint: HostileServer) -> None:
    endpoint.route("/rest/api/space/A", raw_answer(b"\x0b\x02\x80{}\x03", headers={"Content-Encoding": "br"}))
    async with client(endpoint) as c:
        with pytest.raises(SyncError, match="Content-Encoding 'br'"):
            await c.get_space("A")
    assert endpoint.hits[0].headers["Accept-Encoding"] == "gzip, deflate"


async def test_time_of_a_normal_large_answer_is_unchanged(endpoint: HostileServer) -> None:
    """Bounded reading must not slow honest answers: 20 MB of bodies, gzip, arrive whole and parse."""
    items = [{"id": str(i), "body": {"storage": {"value": "<p>" + "word " * 2000 + "</p>"}}} for i in range(2000)]
    raw = orjson.dumps({"results": items})
    import gzip

    endpoint.route("/rest/api/content/search", raw_answer(gzip.compress(raw, 1), headers={"Content-Encoding": "gzip"}))
    t0 = time.monotonic()
    async with client(endpoint) as c:
        page = await c.get_json("/content/search")
    assert len(page["results"]) == 2000
    print(f"\n[hostile] honest 20 MB gzip answer: {time.monotonic() - t0:.2f}s")
