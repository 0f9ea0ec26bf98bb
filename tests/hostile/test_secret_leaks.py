"""No secret value reaches a message: tokens and keys with line breaks or control characters, servers echoing
credentials, transport errors whose text would quote a header."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from aiohttp import web

from coco_operator.api.enrichment import Processor
from coco_operator.confluence.client import ConfluenceClient
from coco_operator.enrich import EnrichContext, apply
from coco_operator.errors import ConfluenceUnavailableError, SearchBackendError, SecretError, SyncError
from coco_operator.search.sink import MeiliSink
from tests.emulators.meilisearch import MeiliEmulator
from tests.hostile.conftest import loopback_policy
from tests.hostile.server import HostileServer, json_answer

TOKEN = "pat-Zq81-secret-value"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_token_with_a_trailing_newline_is_sent_clean(endpoint: HostileServer) -> None:
    endpoint.route("/rest/api/space/A", json_answer({"key": "A"}))
    async with ConfluenceClient(endpoint.url, TOKEN + "\n", egress=loopback_policy()) as c:
        await c.get_space("A")
    assert endpoint.hits[0].headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("bad", [f"{TOKEN[:5]}\n{TOKEN[5:]}", f"{TOKEN}\x00", f"{TOKEN}\tx", f"{TOKEN}ü"])
def test_a_token_with_control_or_non_ascii_characters_is_refused_without_quoting_it(bad: str) -> None:
    with pytest.raises(SecretError) as err:
        ConfluenceClient("https://wiki.example.com", bad, egress=loopback_policy())
    assert err.value.reason == "SecretValueInvalid" and not err.value.retryable
    assert "tokenSecretRef" in err.value.message
    assert TOKEN[5:] not in err.value.message and TOKEN[:5] not in err.value.message


async def test_a_server_echoing_the_credentials_does_not_put_them_in_status(endpoint: HostileServer) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"message": f"bad token {request.headers['Authorization']}"}, status=400)

    endpoint.route("/rest/api/space/C", echo)
    async with ConfluenceClient(endpoint.url, TOKEN, egress=loopback_policy()) as c:
        with pytest.raises(ConfluenceUnavailableError) as err:
            await c.get_space("C")
    assert "bad token Bearer ***" in err.value.message and TOKEN not in err.value.message


async def test_transport_errors_are_fixed_phrases() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with ConfluenceClient(url, TOKEN, egress=loopback_policy(), max_retry_s=0.5) as c:
        with pytest.raises(ConfluenceUnavailableError) as err:
            await c.get_space("A")
    assert "(connection refused)" in err.value.message and "Errno" not in err.value.message


def _webhook(url: str) -> list[Processor]:
    raw = {"type": "webhook", "webhook": {"url": url, "retries": 0, "tokenSecretRef": {"name": "hook", "key": "t"}}}
    return [Processor.model_validate(raw)]


async def test_a_webhook_token_with_a_newline_is_sent_clean(endpoint: HostileServer) -> None:
    endpoint.route("/enrich", json_answer({"documents": []}))
    ctx = EnrichContext(tokens={0: TOKEN + "\r\n"}, egress=loopback_policy())
    await apply(_webhook(f"{endpoint.url}/enrich"), [{"id": "1", "title": "t"}], ctx)
    assert endpoint.hits[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_webhook_token_with_a_control_character_names_the_secret_not_the_value(
    endpoint: HostileServer,
) -> None:
    ctx = EnrichContext(tokens={0: f"{TOKEN}\x1b[2J"}, egress=loopback_policy())
    with pytest.raises(SyncError) as err:
        await apply(_webhook(f"{endpoint.url}/enrich"), [{"id": "1"}], ctx)
    assert err.value.reason == "SecretValueInvalid"
    assert "key 't' of Secret hook" in err.value.message and TOKEN not in err.value.message
    assert endpoint.hits == []


async def test_an_unreachable_webhook_is_described_without_exception_text() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/enrich"
    with pytest.raises(SyncError) as err:
        await apply(_webhook(url), [{"id": "1"}], EnrichContext(tokens={0: TOKEN}, egress=loopback_policy()))
    assert "could not reach it (connection refused)" in err.value.message and TOKEN not in err.value.message


@pytest.fixture(scope="module")
def meili() -> Iterator[MeiliEmulator]:
    with MeiliEmulator(master_key="meili-master-key-1") as emu:
        yield emu


async def test_a_meilisearch_key_with_a_trailing_newline_works(meili: MeiliEmulator) -> None:
    sink = MeiliSink(meili.url, "meili-master-key-1\n", "leak_test")
    await sink.prepare()
    assert await sink.count("ns/x") == 0


@pytest.mark.parametrize("key", ["meili-master-key-1\x00", "meili\nmaster-key-1", "meili-master-ключ-1"])
async def test_a_bad_meilisearch_key_never_appears_in_the_error(meili: MeiliEmulator, key: str) -> None:
    sink = MeiliSink(meili.url, key, "leak_test")  # never raises: run_sync builds the sink before its error handling
    with pytest.raises((SecretError, SearchBackendError)) as err:
        await sink.prepare()
    message = err.value.message
    assert "master" not in message and "ключ" not in message and "meili-" not in message
    assert err.value.reason in ("SecretValueInvalid", "SearchBackendUnreachable", "SearchBackendUnavailable")


async def test_meilisearch_transport_errors_are_fixed_phrases() -> None:
    sink = MeiliSink(f"http://127.0.0.1:{_closed_port()}", "meili-master-key-1", "leak_test")
    with pytest.raises(SearchBackendError) as err:
        await sink.prepare()
    assert "(connection refused)" in err.value.message and "HTTPConnectionPool" not in err.value.message
