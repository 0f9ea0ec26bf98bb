"""Which Confluence endpoints the operator may fetch from (its defence against server-side request forgery)."""

from __future__ import annotations

import fnmatch
from urllib.parse import urlsplit

from coco_operator.settings import Settings


def endpoint_problem(endpoint: str, settings: Settings) -> str | None:
    """Why the operator refuses to fetch from this endpoint, or None."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and not settings.allow_http:
        return (
            f"endpoint {endpoint} uses plain http, which would send the token unencrypted; use https, or ask the "
            "operator's administrator to set allowHttp (COCO_ALLOW_HTTP=true) for a trusted network"
        )
    if settings.allowed_hosts and not any(fnmatch.fnmatch(host, pattern.lower()) for pattern in settings.allowed_hosts):
        allowed = ", ".join(settings.allowed_hosts)
        return (
            f"host {host} of endpoint {endpoint} is not in the operator's allowed Confluence hosts ({allowed}); "
            "use an allowed site or ask the operator's administrator to add it"
        )
    return None
