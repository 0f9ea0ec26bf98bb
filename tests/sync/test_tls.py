"""TLS: verification is always on, and a private CA given as PEM (caBundleSecretRef/caBundleConfigMapRef) is trusted."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from coco_operator.confluence.client import ConfluenceClient
from coco_operator.errors import ConfluenceUnavailableError


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture
async def https_site(certs: tuple[Path, Path]) -> AsyncIterator[str]:
    async def space(request: web.Request) -> web.Response:
        return web.json_response({"key": request.match_info["key"], "name": "Private CA space"})

    app = web.Application()
    app.router.add_get("/rest/api/space/{key}", space)
    runner = web.AppRunner(app)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs[1]), str(certs[0]))
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}"
    await runner.cleanup()


async def test_private_ca_is_trusted_when_given(https_site: str, certs: tuple[Path, Path]) -> None:
    async with ConfluenceClient(https_site, "pat", ca_pem=certs[1].read_text(), max_retry_s=2) as client:
        assert (await client.get_space("SEC"))["name"] == "Private CA space"


async def test_verification_is_on_without_the_ca(https_site: str) -> None:
    async with ConfluenceClient(https_site, "pat", max_retry_s=1) as client:
        with pytest.raises(ConfluenceUnavailableError, match=r"TLS certificate is not trusted"):
            await client.get_space("SEC")


async def test_a_bad_bundle_is_a_configuration_error(https_site: str) -> None:
    from coco_operator.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="not valid PEM"):
        ConfluenceClient(https_site, "pat", ca_pem="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
