"""HTTP under the egress policy: connections to checked addresses only, and answers read within bounds.

- `GuardedTransport`: an httpx transport whose connections go through `GuardedBackend`, which resolves the name
  itself, checks every address with the policy and connects to a checked IP address. DNS cannot answer differently
  between the check and the connection; TLS (SNI, certificate) and the Host header still use the name.
- `read_bounded`: reads an answer's body as a stream and decodes gzip/deflate itself in bounded steps, so a
  compression bomb stops at the cap on decoded bytes instead of expanding in memory first.
- `parse_json`: JSON within a cap on values (what parsing time and memory grow with), checked before parsing.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx
import orjson

from coco_operator.egress import EgressPolicy, IPAddress, literal_ip
from coco_operator.errors import EgressDeniedError, MalformedAnswerError, ResponseTooLargeError

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
ACCEPT_ENCODING = "gzip, deflate"  # what read_bounded can decode in bounded steps
DECODE_STEP = 256 * 1024  # decoded bytes produced per step
# A JSON answer may hold at most this many values: parsing costs about 0.4 µs and 60-100 bytes per value.
MAX_JSON_VALUES = 1_000_000
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
LONG_STRING = 32  # strings shorter than this hold too few marks to matter

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    # Most specific first.
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, in the resolver's order, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = literal_ip(str(sockaddr[0]).split("%", 1)[0])
        if ip is not None and ip not in out:
            out.append(ip)
    return out


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, by address, after resolving the name once."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolve = resolver or system_resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.policy.addresses is None:
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        allowed = await self._allowed_addresses(host, port, timeout)
        failure: Exception | None = None
        for ip in allowed:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def _allowed_addresses(self, host: str, port: int, limit_s: float | None) -> list[IPAddress]:
        ip = literal_ip(host)
        if ip is not None:
            self.policy.check_address(host, ip, literal=True)
            return [ip]
        self.policy.check_name(host)
        try:
            async with asyncio.timeout(limit_s):
                found = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout("resolving the host name timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError("the host name could not be resolved") from exc
        allowed: list[IPAddress] = []
        refusal: EgressDeniedError | None = None
        for address in found:
            try:
                self.policy.check_address(host, address)
            except EgressDeniedError as exc:
                refusal = refusal or exc
                continue
            allowed.append(address)
        if allowed:
            return allowed
        if refusal is not None:
            raise refusal
        raise httpcore.ConnectError("the host name resolved to no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDeniedError(f"the operator does not connect to Unix sockets for {self.policy.purpose}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """httpx's transport on httpcore's pool, with every connection made by a `GuardedBackend`."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        resolver: Resolver | None = None,
    ) -> None:
        self.backend = GuardedBackend(policy, resolver)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=5.0,
            network_backend=self.backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped_errors():
            resp = await self._pool.handle_async_request(req)
        return httpx.Response(
            status_code=resp.status, headers=resp.headers, stream=_Stream(resp.stream), extensions=resp.extensions
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


# --- bounded reads ----------------------------------------------------------------------------------------------


class _Decoder:
    """Content-Encoding decoding that never produces more than DECODE_STEP bytes from one call."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._z: Any = None
        if encoding == "gzip":
            self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._z is None:
            yield data
            return
        while data:
            try:
                piece = self._z.decompress(data, DECODE_STEP)
            except zlib.error:
                if self.encoding != "deflate" or self._started:
                    raise
                # Raw deflate without the zlib header, as some servers send it.
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._started = True
                continue
            self._started = True
            rest = self._z.unconsumed_tail
            if piece:
                yield piece
            elif len(rest) == len(data):  # no progress: the stream ended, the rest is trailing data
                return
            data = rest


def _decoder(response: httpx.Response) -> _Decoder:
    value = response.headers.get("content-encoding", "identity").strip().lower()
    encodings = [e.strip() for e in value.split(",") if e.strip() and e.strip() != "identity"]
    if not encodings:
        return _Decoder("identity")
    if len(encodings) == 1 and encodings[0] in ("gzip", "x-gzip", "deflate"):
        return _Decoder("gzip" if encodings[0] == "x-gzip" else encodings[0])
    raise MalformedAnswerError(
        f"the answer uses Content-Encoding {value[:40]!r}, which the operator did not ask for (it accepts "
        f"{ACCEPT_ENCODING})"
    )


async def read_bounded(response: httpx.Response, limit: int, *, what: str, truncate: bool = False) -> bytes:
    """The decoded body of a streamed `response`, at most `limit` bytes.

    Over the limit: ResponseTooLargeError naming `what`, or with `truncate` the first `limit` bytes (for error
    bodies, which only feed a message). Nothing beyond the limit plus one decoding step is ever held.
    """
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > limit and "content-encoding" not in response.headers:
        raise ResponseTooLargeError(f"{what} is {int(declared)} bytes, more than the limit of {limit} bytes")
    if response.is_stream_consumed:  # a transport that answered from memory (tests): already decoded
        return _within(response.content, limit, what=what, truncate=truncate)
    decoder = _decoder(response)
    out = bytearray()
    try:
        async for raw in response.aiter_raw():
            for piece in decoder.feed(raw):
                out += piece
                if len(out) > limit:
                    if truncate:
                        return bytes(out[:limit])
                    raise ResponseTooLargeError(f"{what} is larger than the limit of {limit} bytes (decoded)")
    except zlib.error:
        raise MalformedAnswerError(f"{what} is not valid {decoder.encoding} data") from None
    return bytes(out)


def _within(data: bytes, limit: int, *, what: str, truncate: bool) -> bytes:
    if len(data) <= limit:
        return data
    if truncate:
        return data[:limit]
    raise ResponseTooLargeError(f"{what} is larger than the limit of {limit} bytes (decoded)")


def json_values(data: bytes) -> int:
    """An upper bound of the number of values in a JSON text, in C-speed scans and constant memory.

    Commas, colons and brackets bound the values. Only when that count (which includes those inside strings) is
    over the cap are the ones inside longer strings subtracted, so a page full of commas still passes.
    """
    marks = (b",", b"{", b"[", b":")
    quick = sum(data.count(m) for m in marks) + 1
    if quick <= MAX_JSON_VALUES:
        return quick
    inside = 0
    for match in _JSON_STRING.finditer(data):
        start, end = match.span()
        if end - start > LONG_STRING:
            inside += sum(data.count(m, start, end) for m in marks)
    return quick - inside


def parse_json(data: bytes, *, what: str, loads: Callable[[bytes], Any] = orjson.loads) -> Any:
    """`data` parsed, if it holds at most MAX_JSON_VALUES values.

    orjson refuses nesting over 1,024 levels at once; the standard library's parser (for answers that may hold
    integers beyond 64 bits) raises RecursionError at about 1,000 levels, turned into a ValueError here.
    """
    values = json_values(data)
    if values > MAX_JSON_VALUES:
        raise ResponseTooLargeError(f"{what} holds more than {MAX_JSON_VALUES} JSON values ({values})")
    try:
        return loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
