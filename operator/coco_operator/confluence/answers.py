"""What a Confluence answer means: the complete answer as read within its bounds, and the error it stands for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from coco_operator.errors import (
    AuthenticationError,
    ConfluenceUnavailableError,
    EndpointRemovedError,
    SpaceNotFoundError,
)
from coco_operator.secret_values import redact

ERROR_DETAIL_CHARS = 200
# The scopes a scoped API token or an OAuth 2.0 client needs for what the operator calls (docs/confluence-api.md).
NEEDED_SCOPES = (
    "read:space:confluence, search:confluence (or read:content-details:confluence) and "
    "readonly:content.attachment:confluence (or read:attachment:confluence) for attachments"
)


class Site(Protocol):
    @property
    def base(self) -> str: ...

    @property
    def cloud(self) -> bool: ...


class Credentials(Protocol):
    @property
    def hint(self) -> str: ...

    @property
    def secrets(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Answer:
    """A complete answer, read within its bounds."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL
    authorization: str | None = None  # the Authorization header sent (renewing OAuth needs it); never shown

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def is_rate_limited(answer: Answer) -> bool:
    if answer.status_code == 429:
        return True
    # Some Data Center setups answer 403 with a plain "Rate limit exceeded" body instead of 429.
    return answer.status_code == 403 and "rate limit" in answer.text[:200].lower()


def raise_for_status(answer: Answer, site: Site, credentials: Credentials) -> None:
    code = answer.status_code
    if code < 400:
        return
    detail = redact(error_message(answer), credentials.secrets)[:ERROR_DETAIL_CHARS]
    said = f": {detail}" if detail else ""
    if code in (401, 403):
        if answer.headers.get("X-Failure-Category") == "FAILURE_CLIENT_SCOPE_CHECK":
            raise AuthenticationError(
                f"Atlassian's API gateway refused GET {answer.url.path} for {site.base}: the token lacks a scope "
                f"this call needs (HTTP {code}{said}). Give the scoped API token or the OAuth 2.0 credential the "
                f"scopes {NEEDED_SCOPES}."
            )
        raise AuthenticationError(
            f"Confluence at {site.base} refused the credentials (HTTP {code}{said}); {credentials.hint}."
        )
    if code == 404:
        raise SpaceNotFoundError(f"Confluence at {site.base} answered 404 for {answer.url.path}: {detail}")
    if code == 410:
        raise EndpointRemovedError(
            f"Confluence at {site.base} answered 410 Gone for GET {answer.url.path}: Atlassian removed this "
            f"endpoint{said}. The operator should not call it; upgrade coco-operator, and report it if this "
            "version is the latest."
        )
    error = ConfluenceUnavailableError(
        f"Confluence at {site.base} answered HTTP {code} for {answer.url.path}: {detail or 'no details'}"
    )
    error.status_code = code
    raise error


def error_message(answer: Answer) -> str:
    try:
        body = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        return answer.text[:ERROR_DETAIL_CHARS].strip()
    if isinstance(body, dict):
        if "message" in body:
            return str(body["message"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            return str(first.get("title") or first) if isinstance(first, dict) else str(first)
    return ""
