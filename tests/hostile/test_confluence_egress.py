"""The egress policy on the Confluence client, over real HTTP: links, redirects, addresses, credentials."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from coco_operator.confluence.client import ConfluenceClient
from coco_operator.confluence.source import ConfluenceSource
from coco_operator.egress import AddressRules, EgressPolicy, IPAddress
from coco_operator.egress_http import GuardedTransport
from coco_operator.errors import EgressDeniedError, SyncError
from tests.hostile.conftest import loopback_policy
from tests.hostile.server import HostileServer, json_answer, raw_answer, redirect

TOKEN = "pat-very-secret-1234"


def client(server: HostileServer, policy: EgressPolicy | None = None, **kw: object) -> ConfluenceClient:
    return ConfluenceClient(
        server.url,
        TOKEN,
        egress=policy or loopback_policy(),
        max_retry_s=2,
        deadline_s=5,
        **kw,  # type: ignore[arg-type]
    )


def listing(results: list[dict[str, object]], **links: str) -> dict[str, object]:
    return {"results": results, "_links": links}


async def test_a_foreign_absolute_next_link_fails_the_listing_and_is_never_fetched(
    endpoint: HostileServer, foreign: HostileServer
) -> None:
    foreign.route("/rest/api/content/search", json_answer(listing([{"id": "666"}])))
    nxt = f"{foreign.url}/rest/api/content/search?start=1"
    endpoint.route("/rest/api/content/search", json_answer(listing([{"id": "1"}], next=nxt)))
    seen: list[str] = []
    async with client(endpoint) as c:
        with pytest.raises(EgressDeniedError) as err:
            async for item in c.paginate("/content/search", {"cql": "x"}):
                seen.append(item["id"])
    assert seen == ["1"] and foreign.hits == []
    assert err.value.reason == "EgressDenied" and not err.value.retryable
    assert "127.0.0.1" in err.value.message and "API links must stay on the endpoint's origin" in err.value.message
    assert "start=1" not in err.value.message  # the host, never the URL's query


async def test_links_base_is_ignored_a_relative_next_stays_on_the_endpoint(
    endpoint: HostileServer, foreign: HostileServer
) -> None:
    calls = 0

    async def pages(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            body = listing([{"id": "1"}], base=foreign.url, next="/rest/api/content/search?start=1")
        else:
            body = listing([{"id": "2"}], base=foreign.url)
        return web.json_response(body)

    endpoint.route("/rest/api/content/search", pages)
    async with client(endpoint) as c:
        ids = [item["id"] async for item in c.paginate("/content/search", {"cql": "x"})]
    assert ids == ["1", "2"] and foreign.hits == []
    # Data Center pages by offset: the listing's own query with the start it computed, on the endpoint.
    assert endpoint.paths()[-1] == "/rest/api/content/search?cql=x&start=1"


async def test_download_redirect_to_a_foreign_origin_is_refused(
    endpoint: HostileServer, foreign: HostileServer
) -> None:
    foreign.route("/secret", raw_answer(b"internal data", headers={"Content-Type": "text/plain"}))
    endpoint.route("/download/attachments/1/a.txt", redirect(f"{foreign.url}/secret"))
    async with client(endpoint) as c:
        with pytest.raises(EgressDeniedError, match=r"egress\.linkHosts"):
            await c.get_bytes(c.site_url("/download/attachments/1/a.txt"), max_bytes=1000)
    assert foreign.hits == []


async def test_an_allowed_link_host_gets_the_download_without_credentials(
    endpoint: HostileServer, foreign: HostileServer
) -> None:
    """As Cloud's media host: the hop is allowed by the admin's list, and the Authorization header stays home."""
    foreign.route("/file/9/binary", raw_answer(b"attachment bytes", headers={"Content-Type": "text/plain"}))
    endpoint.route("/rest/api/content/1/child/attachment/9/download", redirect(f"{foreign.url}/file/9/binary?t=x"))
    policy = loopback_policy(link_hosts=("127.0.0.1",))
    async with client(endpoint, policy) as c:
        data = await c.get_bytes(c.url("/content/1/child/attachment/9/download"), max_bytes=1000)
    assert data == b"attachment bytes"
    assert endpoint.hits[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert [h.path for h in foreign.hits] == ["/file/9/binary?t=x"]
    assert "Authorization" not in foreign.hits[0].headers


async def test_an_absolute_download_link_to_another_origin_skips_the_attachment(
    endpoint: HostileServer, foreign: HostileServer
) -> None:
    foreign.route("/latest/meta-data", raw_answer(b"role credentials"))
    att = {"id": "att1", "title": "a.txt", "_links": {"download": f"{foreign.url}/latest/meta-data"}}
    async with client(endpoint) as c:
        source = ConfluenceSource(c, ["DOCS"])
        with pytest.raises(EgressDeniedError):
            await source.download(att, 1000)
    assert foreign.hits == []


async def test_a_redirect_loop_is_an_error_with_a_reason(endpoint: HostileServer) -> None:
    endpoint.route("/rest/api/space/A", redirect("/rest/api/space/B"))
    endpoint.route("/rest/api/space/B", redirect("/rest/api/space/A"))
    async with client(endpoint) as c:
        with pytest.raises(SyncError) as err:
            await c.get_space("A")
    assert err.value.reason == "RedirectLoop" and len(endpoint.hits) <= 6


async def test_private_addresses_are_refused_by_default_before_anything_is_sent(endpoint: HostileServer) -> None:
    endpoint.route("/rest/api/space/A", json_answer({"key": "A"}))
    with pytest.raises(EgressDeniedError) as err:
        ConfluenceClient(endpoint.url, TOKEN, egress=EgressPolicy("Confluence"))
    assert "a loopback address" in err.value.message and "egress.allowPrivateNetworks" in err.value.message
    assert endpoint.hits == []


@pytest.mark.parametrize(
    ("endpoint_url", "rules", "why"),
    [
        ("http://169.254.169.254/latest", AddressRules(allow_private=True), "a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest", AddressRules(allow_private=True), "a cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata", AddressRules(allow_private=True), "cloud metadata"),
        ("http://0.0.0.0:8080/", AddressRules(allow_private=True), "the unspecified address"),
        ("http://2130706433/", AddressRules(), "a loopback address"),  # 127.0.0.1 written as a number
        ("http://[::ffff:10.0.0.1]/", AddressRules(), "a private address"),
        ("http://100.64.1.1/", AddressRules(), "a carrier-grade NAT address"),
        ("http://user:pw@wiki.example.com/", AddressRules(), "carries credentials"),
    ],
)
def test_addresses_and_names_that_are_never_reached(endpoint_url: str, rules: AddressRules, why: str) -> None:
    with pytest.raises(EgressDeniedError, match=why):
        ConfluenceClient(endpoint_url, TOKEN, egress=EgressPolicy("Confluence", addresses=rules))


def resolver(table: dict[str, list[str]], calls: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


async def test_a_name_resolving_to_a_private_address_is_refused_at_connect(endpoint: HostileServer) -> None:
    endpoint.route("/rest/api/space/A", json_answer({"key": "A"}))
    policy = EgressPolicy("Confluence")
    calls: list[str] = []
    transport = GuardedTransport(policy, resolver=resolver({"wiki.test": ["127.0.0.1"]}, calls))
    url = f"http://wiki.test:{endpoint.port}"
    async with ConfluenceClient(url, TOKEN, egress=policy, transport=transport, max_retry_s=1) as c:
        with pytest.raises(EgressDeniedError) as err:
            await c.get_space("A")
    assert endpoint.hits == [] and calls == ["wiki.test"]
    assert "resolves to a loopback address" in err.value.message and "127.0.0.1" not in err.value.message


async def test_the_connection_uses_the_checked_address_and_keeps_the_name_as_host(endpoint: HostileServer) -> None:
    """One resolution per connection, allowed addresses only: a decoy on a refused address never hears from us."""
    decoy = HostileServer(host="127.0.0.2", port=endpoint.port).start()
    try:
        for server in (endpoint, decoy):
            server.route("/rest/api/space/A", json_answer({"key": "A"}))
        policy = EgressPolicy("Confluence", addresses=AddressRules.parse(False, ["127.0.0.1/32"]))
        calls: list[str] = []
        transport = GuardedTransport(policy, resolver=resolver({"wiki.test": ["127.0.0.2", "127.0.0.1"]}, calls))
        url = f"http://wiki.test:{endpoint.port}"
        async with ConfluenceClient(url, TOKEN, egress=policy, transport=transport) as c:
            assert (await c.get_space("A"))["key"] == "A"
            assert (await c.get_space("A"))["key"] == "A"
    finally:
        decoy.stop()
    assert decoy.hits == [] and len(endpoint.hits) == 2
    assert calls == ["wiki.test"]  # the second request reused the checked connection
    assert endpoint.hits[0].headers["Host"] == f"wiki.test:{endpoint.port}"


@pytest.fixture(scope="module")
def wiki_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=wiki.test",
            "-addext", "subjectAltName=DNS:wiki.test",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture
async def tls_wiki(wiki_cert: tuple[Path, Path]) -> AsyncIterator[int]:
    async def space(request: web.Request) -> web.Response:
        return web.json_response({"key": request.match_info["key"]})

    app = web.Application()
    app.router.add_get("/rest/api/space/{key}", space)
    runner = web.AppRunner(app)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(wiki_cert[1]), str(wiki_cert[0]))
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def test_tls_verifies_the_name_while_connecting_to_the_checked_address(
    tls_wiki: int, wiki_cert: tuple[Path, Path]
) -> None:
    """The certificate is only valid for wiki.test: the handshake used the name (SNI), the socket the address."""
    policy = EgressPolicy("Confluence", addresses=AddressRules.parse(False, ["127.0.0.1/32"]), allow_http=False)
    calls: list[str] = []
    transport = GuardedTransport(
        policy,
        ssl_context=_trusting(wiki_cert[1]),
        resolver=resolver({"wiki.test": ["127.0.0.1"]}, calls),
    )
    async with ConfluenceClient(f"https://wiki.test:{tls_wiki}", TOKEN, egress=policy, transport=transport) as c:
        assert (await c.get_space("SEC"))["key"] == "SEC"
    assert calls == ["wiki.test"]


def _trusting(cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cafile=str(cert))
    return ctx
