"""Atlassian's side doors: the API gateway's cloudId (from the site's unauthenticated `/_edge/tenant_info`) and
OAuth 2.0 access tokens from the authorization server (`POST {auth}/oauth/token`, client credentials).

Both go through the client's unauthenticated request (`OpenJson`), so they pass the egress policy, its bounded
reads and its retries. A cloudId never changes for a site: it is kept per process.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from coco_operator.api.confluence_auth import CLOUD_ID_PATTERN
from coco_operator.confluence.auth import ClientCredentials
from coco_operator.confluence.site import Site, tenant_info_url
from coco_operator.errors import AuthenticationError, ConfigurationError, ConfluenceUnavailableError

OpenJson = Callable[[str, dict[str, Any] | None], Awaitable[tuple[int, dict[str, Any]]]]
CLOUD_ID_CACHE_SIZE = 1024
# A cloudId goes into the gateway's path: nothing but what ids are made of (as connector.config.cloud_id).
CLOUD_ID = re.compile(CLOUD_ID_PATTERN)
# A token endpoint that says nothing about the lifetime: assume Atlassian's documented 60 minutes.
DEFAULT_TOKEN_LIFETIME_S = 3600.0
_CLOUD_IDS: dict[str, str] = {}


@dataclass(frozen=True)
class Gateway:
    """Requests go through Atlassian's API gateway: `{url}/ex/confluence/{cloud_id}/wiki`."""

    url: str  # the gateway's origin, e.g. https://api.atlassian.com (an operator setting)
    cloud_id: str | None = None  # None: read from the site's tenant_info when the client starts


async def resolve_cloud_id(site: Site, open_json: OpenJson) -> str:
    """The site's cloudId, asked once per process."""
    known = _CLOUD_IDS.get(site.base)
    if known:
        return known
    url = tenant_info_url(site)
    status, data = await open_json(url, None)
    cloud_id = data.get("cloudId")
    if status == 404:
        raise ConfigurationError(
            f"{site.base} has no /_edge/tenant_info, so the API gateway's cloudId is unknown: is the endpoint a "
            "Confluence Cloud site? Set connector.config.cloud_id (Atlassian administration shows it), or use "
            "auth_type personal_access_token or basic for Data Center"
        )
    if status >= 400 or not isinstance(cloud_id, str) or not CLOUD_ID.match(cloud_id):
        raise ConfluenceUnavailableError(
            f"{site.base}/_edge/tenant_info answered HTTP {status} without a valid cloudId; set "
            "connector.config.cloud_id to skip this lookup"
        )
    if len(_CLOUD_IDS) >= CLOUD_ID_CACHE_SIZE:
        _CLOUD_IDS.pop(next(iter(_CLOUD_IDS)))
    _CLOUD_IDS[site.base] = cloud_id
    return cloud_id


async def issue_token(open_json: OpenJson, credentials: ClientCredentials) -> tuple[str, float]:
    """An access token and its lifetime (s) for a service account's client credentials (a JSON body, as Atlassian
    documents)."""
    body = {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }
    status, data = await open_json(credentials.token_url, body)
    if status in (400, 401, 403):
        error = str(data.get("error") or f"HTTP {status}")[:80]
        raise AuthenticationError(
            f"Atlassian's token endpoint refused the OAuth client credentials ({error}); check client_id and "
            "client_secret in the Secret named by connector.config.oauthSecretRef (a service account's OAuth 2.0 "
            "credential) and that it is not revoked"
        )
    token, lifetime = data.get("access_token"), data.get("expires_in", DEFAULT_TOKEN_LIFETIME_S)
    if status >= 400 or not isinstance(token, str) or not token or not token.isascii():
        raise ConfluenceUnavailableError(f"Atlassian's token endpoint answered HTTP {status} without an access token")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME_S
    return token, float(lifetime)


def forget_cloud_ids() -> None:
    """Drop the cached cloudIds (tests)."""
    _CLOUD_IDS.clear()
