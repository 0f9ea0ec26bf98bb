"""What a Confluence answer means: the complete answer as read within its bounds, and the error it stands for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from coco_operator.errors import AuthenticationError, ConfluenceUnavailableError, SpaceNotFoundError
from coco_operator.secret_values import redact

ERROR_DETAIL_CHARS = 200


class Site(Protocol):
    @property
    def base(self) -> str: ...

    @property
    def cloud(self) -> bool: ...


@dataclass(frozen=True)
class Answer:
    """A complete answer, read within its bounds."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def is_rate_limited(answer: Answer) -> bool:
    if answer.status_code == 429:
        return True
    # Some Data Center setups answer 403 with a plain "Rate limit exceeded" body instead of 429.
    return answer.status_code == 403 and "rate limit" in answer.text[:200].lower()


def raise_for_status(answer: Answer, site: Site, secrets: tuple[str, ...]) -> None:
    code = answer.status_code
    if code < 400:
        return
    detail = redact(error_message(answer), secrets)[:ERROR_DETAIL_CHARS]
    if code in (401, 403):
        how = (
            "username must be the account's email and the Secret must hold an API token"
            if site.cloud
            else "the Secret must hold a valid personal access token (or set username for Basic auth)"
        )
        raise AuthenticationError(
            f"Confluence at {site.base} refused the credentials (HTTP {code}{': ' + detail if detail else ''}); "
            f"{how}. Update the Secret named in tokenSecretRef."
        )
    if code == 404:
        raise SpaceNotFoundError(f"Confluence at {site.base} answered 404 for {answer.url.path}: {detail}")
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
