"""How a Datasource authenticates to Confluence: the fields of `connector.config` that choose it, the one rule list
behind both the CEL admission rules and the model's own validation, and the mode a config means.

Five modes (`auth_type`), all with credentials from Secrets of the Datasource's namespace:

| auth_type | where requests go | credential |
|---|---|---|
| `api_token` | the site (`https://SITE.atlassian.net/wiki`) | Basic `username`:token (a classic API token) |
| `scoped_api_token` | Atlassian's API gateway (`.../ex/confluence/{cloudId}/wiki`) | Basic `username`:token |
| `oauth2_client_credentials` | the gateway | Bearer, from the service account's client id/secret |
| `personal_access_token` | the Data Center server | Bearer PAT |
| `basic` | the Data Center server | Basic `username`:password |

Without `auth_type` the mode follows from what is set, so Datasources written before it keep their meaning:
`oauthSecretRef` -> OAuth; `username` -> Basic (`scoped_api_token` when the endpoint is the gateway, `api_token` on
Cloud, `basic` elsewhere); nothing -> `personal_access_token` (Bearer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import Field

from coco_operator.api.common import ApiModel, SecretKeyRef, cel

AuthType = Literal["api_token", "scoped_api_token", "oauth2_client_credentials", "personal_access_token", "basic"]
BASIC_AUTH = ("api_token", "scoped_api_token", "basic")
GATEWAY_AUTH = ("scoped_api_token", "oauth2_client_credentials")
DATA_CENTER_AUTH = ("personal_access_token", "basic")
# Atlassian's API gateway as a tenant would write it; the operator also recognises its configured gateway host.
GATEWAY_ENDPOINT = r"^https://api[.]atlassian[.]com/ex/confluence/"
CLOUD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
URL_PATTERN = r"^https?://[^\s/?#]+[^\s?#]*$"


class OAuthSecretRef(ApiModel):
    """A Secret in the Datasource's namespace with an OAuth 2.0 client's id and secret."""

    name: str = Field(
        description="Name of the Secret, in the same namespace as the Datasource.",
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    clientIdKey: str = Field(
        default="client_id", description="Key holding the client id.", max_length=253, pattern=r"^[-._a-zA-Z0-9]+$"
    )
    clientSecretKey: str = Field(
        default="client_secret",
        description="Key holding the client secret.",
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class AuthFields(Protocol):
    """What the rules read: the auth-related fields of `ConfluenceConfig`."""

    @property
    def endpoint(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def auth_type(self) -> AuthType | None: ...
    @property
    def cloud_id(self) -> str | None: ...
    @property
    def site_url(self) -> str | None: ...
    @property
    def tokenSecretRef(self) -> SecretKeyRef | None: ...
    @property
    def oauthSecretRef(self) -> OAuthSecretRef | None: ...


def is_gateway_endpoint(endpoint: str) -> bool:
    return re.match(GATEWAY_ENDPOINT, endpoint) is not None


def is_cloud_site(endpoint: str) -> bool:
    return ".atlassian.net" in endpoint


def effective_auth_type(config: AuthFields) -> AuthType:
    """The mode a config means (`auth_type`, else derived from what is set; see the module docstring)."""
    if config.auth_type is not None:
        return config.auth_type
    if config.oauthSecretRef is not None:
        return "oauth2_client_credentials"
    if config.username is not None:
        if is_gateway_endpoint(config.endpoint):
            return "scoped_api_token"
        path = re.sub(r"^https?://[^/]*", "", config.endpoint).rstrip("/")
        return "api_token" if is_cloud_site(config.endpoint) or path.endswith("/wiki") else "basic"
    return "personal_access_token"


@dataclass(frozen=True)
class Rule:
    """One admission rule, twice: as CEL for the API server and as Python for everything validated without one
    (`sync FILE`, convert). Same meaning, same message."""

    cel: str
    message: str
    ok: Callable[[AuthFields], bool]
    field_path: str
    reason: str = "FieldValueInvalid"

    def schema(self) -> dict[str, Any]:
        return cel(self.cel, self.message, self.reason, self.field_path)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


_GATEWAY = f"self.endpoint.matches('{GATEWAY_ENDPOINT}')"
_CLOUD = "self.endpoint.contains('.atlassian.net')"
_OAUTH = "(has(self.oauthSecretRef) || (has(self.auth_type) && self.auth_type == 'oauth2_client_credentials'))"


def _is(config: AuthFields, modes: tuple[str, ...]) -> bool:
    return config.auth_type is not None and config.auth_type in modes


def _oauth(config: AuthFields) -> bool:
    return config.oauthSecretRef is not None or config.auth_type == "oauth2_client_credentials"


CLOUD_NEEDS_USERNAME = (
    "Confluence Cloud (*.atlassian.net) needs username: the email of the account that owns the API token "
    "(or OAuth 2.0: auth_type oauth2_client_credentials with oauthSecretRef)"
)

RULES: tuple[Rule, ...] = (
    Rule(
        f"!{_CLOUD} || has(self.username) || {_OAUTH}",
        CLOUD_NEEDS_USERNAME,
        lambda c: not is_cloud_site(c.endpoint) or c.username is not None or _oauth(c),
        ".username",
        "FieldValueRequired",
    ),
    Rule(
        f"!has(self.auth_type) || !(self.auth_type in {_cel_list(BASIC_AUTH)}) || has(self.username)",
        "auth_type api_token, scoped_api_token and basic send HTTP Basic: set username (Cloud: the email of the "
        "account or service account that owns the token; Data Center: the user name)",
        lambda c: not _is(c, BASIC_AUTH) or c.username is not None,
        ".username",
        "FieldValueRequired",
    ),
    Rule(
        f"!{_GATEWAY} || has(self.username) || {_OAUTH}",
        "endpoint is Atlassian's API gateway, which takes a scoped API token with username (HTTP Basic) or "
        "OAuth 2.0 (oauthSecretRef): set username to the email of the token's owner",
        lambda c: not is_gateway_endpoint(c.endpoint) or c.username is not None or _oauth(c),
        ".username",
        "FieldValueRequired",
    ),
    Rule(
        f"!{_GATEWAY} || has(self.site_url)",
        "endpoint is Atlassian's API gateway: set site_url to the site (https://SITE.atlassian.net/wiki) so that "
        "links in documents open the site, or set endpoint to the site and auth_type: scoped_api_token",
        lambda c: not is_gateway_endpoint(c.endpoint) or c.site_url is not None,
        ".site_url",
        "FieldValueRequired",
    ),
    Rule(
        "!has(self.site_url) || !" + _CLOUD,
        "site_url is only for an endpoint that is Atlassian's API gateway; endpoint already names the site",
        lambda c: c.site_url is None or not is_cloud_site(c.endpoint),
        ".site_url",
        "FieldValueForbidden",
    ),
    Rule(
        "!has(self.auth_type) || self.auth_type != 'oauth2_client_credentials' || has(self.oauthSecretRef)",
        "auth_type oauth2_client_credentials needs oauthSecretRef: a Secret with the service account's client_id "
        "and client_secret",
        lambda c: c.auth_type != "oauth2_client_credentials" or c.oauthSecretRef is not None,
        ".oauthSecretRef",
        "FieldValueRequired",
    ),
    Rule(
        "!has(self.oauthSecretRef) || !has(self.auth_type) || self.auth_type == 'oauth2_client_credentials'",
        "oauthSecretRef is only used with auth_type oauth2_client_credentials: remove it or change auth_type",
        lambda c: c.oauthSecretRef is None or c.auth_type in (None, "oauth2_client_credentials"),
        ".oauthSecretRef",
        "FieldValueForbidden",
    ),
    Rule(
        f"has(self.tokenSecretRef) != {_OAUTH}",
        "set exactly one credential: tokenSecretRef (the Secret key with the API token, personal access token or "
        "password) or, for OAuth 2.0, oauthSecretRef",
        lambda c: (c.tokenSecretRef is not None) != _oauth(c),
        ".tokenSecretRef",
        "FieldValueRequired",
    ),
    Rule(
        f"!has(self.auth_type) || !(self.auth_type in {_cel_list(DATA_CENTER_AUTH)}) || !({_CLOUD} || {_GATEWAY})",
        "Confluence Cloud has no personal access tokens and takes no passwords: use auth_type api_token, "
        "scoped_api_token or oauth2_client_credentials",
        lambda c: not _is(c, DATA_CENTER_AUTH) or not (is_cloud_site(c.endpoint) or is_gateway_endpoint(c.endpoint)),
        ".auth_type",
    ),
    Rule(
        f"!has(self.auth_type) || self.auth_type != 'api_token' || !{_GATEWAY}",
        "a classic API token works on the site only: set endpoint to https://SITE.atlassian.net/wiki, or use "
        "auth_type scoped_api_token for a scoped token",
        lambda c: c.auth_type != "api_token" or not is_gateway_endpoint(c.endpoint),
        ".auth_type",
    ),
    Rule(
        "!has(self.auth_type) || self.auth_type != 'personal_access_token' || !has(self.username)",
        "auth_type personal_access_token sends the token as Bearer and uses no username: remove username, or use "
        "auth_type basic for a user name and password",
        lambda c: c.auth_type != "personal_access_token" or c.username is None,
        ".username",
        "FieldValueForbidden",
    ),
    Rule(
        f"!has(self.cloud_id) || {_OAUTH} || (has(self.auth_type) && self.auth_type == 'scoped_api_token')",
        "cloud_id is only used with auth_type scoped_api_token or oauth2_client_credentials (requests through "
        "Atlassian's API gateway)",
        lambda c: c.cloud_id is None or _oauth(c) or c.auth_type == "scoped_api_token",
        ".cloud_id",
        "FieldValueForbidden",
    ),
)


def auth_problems(config: AuthFields) -> list[str]:
    """The messages of every rule `config` breaks."""
    return [rule.message for rule in RULES if not rule.ok(config)]
