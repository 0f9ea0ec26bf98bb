"""Which Confluence endpoints the operator may fetch from: the egress policy's check of a starting URL (one policy,
`egress.confluence_policy`, for the endpoint, its links, downloads and every connection)."""

from __future__ import annotations

from coco_operator.confluence.client import normalize_endpoint
from coco_operator.egress import confluence_policy
from coco_operator.errors import EgressDeniedError
from coco_operator.settings import Settings


def endpoint_problem(endpoint: str, settings: Settings) -> str | None:
    """Why the operator refuses to fetch from this endpoint, or None. Addresses a name resolves to are checked
    when connecting (the transport), so a name is not resolved here."""
    try:
        confluence_policy(settings).check_start(normalize_endpoint(endpoint).base)
    except EgressDeniedError as exc:
        return f"endpoint {endpoint}: {exc.message}"
    return None
