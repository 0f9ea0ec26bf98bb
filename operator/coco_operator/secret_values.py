"""Secret values: cleaned once where they are read, and kept out of every message.

HTTP libraries put header values into their error texts (h11 and requests both quote a header that holds a newline),
so a token with a trailing newline would otherwise land in a Datasource's status. Values are cleaned where a Secret
is read (`clean_secret_value`), transport errors are described by fixed phrases (`transport_problem`), and messages
built from a server's answer go through `redact` before they reach status, Events or logs.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable

import httpx

from coco_operator.errors import SecretError
from coco_operator.reasons import Reason

# C0 and C1 control characters and DEL; tab is refused too (no token, key or password holds one).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
REDACTED = "***"
# Shorter values would redact ordinary words from messages; real tokens and keys are far longer.
MIN_REDACTED_LENGTH = 6
# What the API server accepts in a condition message is 32 KiB; status stays readable well below that.
MAX_MESSAGE_CHARS = 4000
MAX_EVENT_CHARS = 1000  # an Event's message (the API server allows 1 KiB in events.k8s.io/v1 notes)


def clean_secret_value(value: str, *, secret: str, key: str | None) -> str:
    """`value` without surrounding line breaks and spaces; refuses control characters inside it.

    `secret` is how messages name the Secret (namespace/name, or where it is referenced) and `key` its key; the
    value itself is never quoted.
    """
    cleaned = value.strip(" \r\n")
    where = f"the value under key {key!r} of Secret {secret}" if key else f"the value of Secret {secret}"
    bad = _CONTROL.search(cleaned)
    if bad:
        position = bad.start() + 1
        raise SecretError(
            f"{where} contains a control character (code "
            f"{ord(bad.group()):#04x} at character {position} of {len(cleaned)}); tokens and keys are single-line "
            "text. Write the value without line breaks or tabs (e.g. kubectl create secret generic ... "
            "--from-literal=KEY=VALUE, or printf '%s' VALUE > file before --from-file)",
            reason=Reason.SECRET_VALUE_INVALID,
            retryable=False,
        )
    if not cleaned:
        raise SecretError(f"{where} is empty", reason=Reason.SECRET_KEY_NOT_FOUND)
    return cleaned


def redact(message: str, secrets: Iterable[str | None]) -> str:
    """`message` with every known secret value (and its stripped form) replaced by ***."""
    values = {v for s in secrets if s for v in (s, s.strip()) if len(v) >= MIN_REDACTED_LENGTH}
    for value in sorted(values, key=len, reverse=True):
        message = message.replace(value, REDACTED)
    return message


def truncate(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """At most `limit` characters, cut with a marker that says so."""
    if len(message) <= limit:
        return message
    keep = limit
    for _ in range(2):  # the marker's length depends on the count it states
        marker = f" ... ({len(message) - keep} more characters)"
        keep = max(0, limit - len(marker))
    return message[:keep] + f" ... ({len(message) - keep} more characters)"


def transport_problem(exc: BaseException) -> str:
    """A fixed phrase for a transport failure: never the exception's text, which may quote a header value."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return _connect_problem(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol or closed the connection"
    if isinstance(exc, httpx.LocalProtocolError):
        return "the request could not be sent (a header value is not valid HTTP, e.g. a token with a line break)"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the connection broke"
    if isinstance(exc, httpx.ProxyError):
        return "the HTTP proxy refused the request"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "the URL's scheme is not supported"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    return f"the request failed ({type(exc).__name__})"


def _connect_problem(exc: BaseException) -> str:
    """Connection failures name their kind: the cause chain holds OS errors, whose texts are the OS's own."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "the server's TLS certificate is not trusted"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno is not None and "name" in str(cause.strerror or "").lower():
            return "the host name could not be resolved"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).lower()
    # httpx/httpcore wrap OS errors into their own; their text is the OS's message, not request data.
    for needle, phrase in (
        ("certificate", "the server's TLS certificate is not trusted"),
        ("ssl", "TLS handshake failed"),
        ("refused", "connection refused"),
        ("name or service not known", "the host name could not be resolved"),
        ("nodename nor servname", "the host name could not be resolved"),
        ("temporary failure in name resolution", "the host name could not be resolved"),
        ("unreachable", "the network is unreachable"),
    ):
        if needle in text:
            return phrase
    return "could not connect"
