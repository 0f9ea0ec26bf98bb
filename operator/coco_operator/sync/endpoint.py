"""Which Confluence a run reaches, and how: the endpoint checks (the defence against server-side request forgery),
the site and API base (the site, or Atlassian's API gateway), and the credentials of the config's auth mode."""

from __future__ import annotations

from coco_operator.api.confluence_auth import BASIC_AUTH, GATEWAY_AUTH, AuthType
from coco_operator.api.datasource import ConfluenceConfig
from coco_operator.confluence.auth import (
    ClientCredentials,
    ConfluenceAuth,
    OAuthClientCredentials,
    basic_auth,
    bearer_auth,
)
from coco_operator.confluence.gateway import Gateway
from coco_operator.confluence.site import Site, gateway_base, gateway_cloud_id, normalize_endpoint
from coco_operator.egress import confluence_policy
from coco_operator.errors import ConfigurationError, EgressDeniedError
from coco_operator.settings import Settings
from coco_operator.sync.request import SyncRequest

TOKEN_REF = "named by connector.config.tokenSecretRef"
# What to check when Confluence refuses the credentials, per auth mode.
HINTS: dict[AuthType, str] = {
    "api_token": "username must be the email of the account that owns the API token, and the Secret named in "
    "tokenSecretRef must hold that classic API token (a scoped API token needs auth_type scoped_api_token)",
    "scoped_api_token": "username must be the email of the account or service account that owns the scoped API "
    "token in the Secret named in tokenSecretRef, and the token must be for this site",
    "oauth2_client_credentials": "the service account of the OAuth 2.0 credential in the Secret named in "
    "oauthSecretRef needs access to Confluence on this site (Atlassian administration, service accounts)",
    "personal_access_token": "the Secret named in tokenSecretRef must hold a valid personal access token (or set "
    "auth_type basic with username and password)",
    "basic": "username and the password in the Secret named in tokenSecretRef must be valid on this server",
}


def endpoint_problem(endpoint: str, settings: Settings) -> str | None:
    """Why the operator refuses to fetch from this endpoint, or None: the egress policy's check of a starting URL
    (one policy, `egress.confluence_policy`, for the endpoint, its links, downloads and every connection). Addresses
    a name resolves to are checked when connecting (the transport), so a name is not resolved here."""
    try:
        confluence_policy(settings).check_start(normalize_endpoint(endpoint).base)
    except EgressDeniedError as exc:
        return f"endpoint {endpoint}: {exc.message}"
    return None


def site_and_gateway(config: ConfluenceConfig, settings: Settings) -> tuple[Site, Gateway | None]:
    """The site (web links; the tenant's choice, checked against the administrator's host list) and, when
    requests go through Atlassian's API gateway, the gateway (an operator setting)."""
    cloud_id = gateway_cloud_id(config.endpoint, settings.confluence_gateway_url)
    if cloud_id is not None:  # the endpoint is the gateway itself: the site is site_url
        if not config.site_url:
            raise ConfigurationError(
                "endpoint is Atlassian's API gateway: set connector.config.site_url to the site "
                "(https://SITE.atlassian.net/wiki), or set endpoint to the site and auth_type: scoped_api_token"
            )
        site = normalize_endpoint(config.site_url)
        site = Site(site.base, cloud=True).via(gateway_base(settings.confluence_gateway_url, cloud_id))
        return site, Gateway(settings.confluence_gateway_url, cloud_id)
    site = normalize_endpoint(config.endpoint)
    if config.auth_mode not in GATEWAY_AUTH:
        return site, None
    return Site(site.base, cloud=True), Gateway(settings.confluence_gateway_url, config.cloud_id)


def credentials(request: SyncRequest, settings: Settings) -> ConfluenceAuth:
    """The Authorization of the config's auth mode, from the credentials the run was given."""
    config = request.spec.connector.config
    mode = config.auth_mode
    if mode == "oauth2_client_credentials":
        if request.oauth is None:
            raise ConfigurationError("OAuth 2.0 needs connector.config.oauthSecretRef")
        token_url = f"{settings.confluence_auth_url.rstrip('/')}/oauth/token"
        client = ClientCredentials(token_url, request.oauth.client_id, request.oauth.client_secret)
        return OAuthClientCredentials(client, hint=HINTS[mode])
    if request.token is None:
        raise ConfigurationError(f"auth_type {mode} needs connector.config.tokenSecretRef")
    if mode in BASIC_AUTH and config.username:
        return basic_auth(config.username, request.token, hint=HINTS[mode], what=TOKEN_REF)
    return bearer_auth(request.token, hint=HINTS[mode], what=TOKEN_REF)
