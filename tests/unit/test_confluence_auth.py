"""Auth modes: what a config means, the rules that refuse a config that cannot work (the same rules as CEL in the
CRD), the credentials a run builds from it, OAuth access tokens renewed at half-life, and the Job's environment."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from coco_operator.api.confluence_auth import RULES
from coco_operator.api.crd import datasource_crd
from coco_operator.api.datasource import ConfluenceConfig, DatasourceSpec
from coco_operator.confluence.auth import ClientCredentials, OAuthClient, OAuthClientCredentials, forget_tokens
from coco_operator.dispatcher.jobenv import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, TOKEN, EnvSecrets, job_env
from coco_operator.errors import SecretError
from coco_operator.settings import Settings
from coco_operator.sync.endpoint import credentials, site_and_gateway
from coco_operator.sync.request import SyncRequest, config_fingerprint

SITE = "https://acme.atlassian.net/wiki"
GATEWAY = "https://api.atlassian.com/ex/confluence/0a1b2c3d-cloud/wiki"
DC = "https://confluence.example.com/confluence"
TOKEN_REF = {"name": "t"}
OAUTH_REF = {"name": "o"}


def config(**fields: Any) -> ConfluenceConfig:
    return ConfluenceConfig.model_validate({"space": "DOCS", **fields})


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        # Datasources written before auth_type keep their meaning: username -> Basic, else Bearer.
        ({"endpoint": SITE, "username": "me@acme.com", "tokenSecretRef": TOKEN_REF}, "api_token"),
        ({"endpoint": DC, "tokenSecretRef": TOKEN_REF}, "personal_access_token"),
        ({"endpoint": DC, "username": "jdoe", "tokenSecretRef": TOKEN_REF}, "basic"),
        (
            {"endpoint": GATEWAY, "username": "me@acme.com", "tokenSecretRef": TOKEN_REF, "site_url": SITE},
            "scoped_api_token",
        ),
        ({"endpoint": SITE, "oauthSecretRef": OAUTH_REF}, "oauth2_client_credentials"),
        (
            {"endpoint": SITE, "auth_type": "scoped_api_token", "username": "s@acme.com", "tokenSecretRef": TOKEN_REF},
            "scoped_api_token",
        ),
        ({"endpoint": DC, "auth_type": "basic", "username": "jdoe", "tokenSecretRef": TOKEN_REF}, "basic"),
    ],
)
def test_the_mode_a_config_means(fields: dict[str, Any], mode: str) -> None:
    assert config(**fields).auth_mode == mode


REFUSED = [
    ({"endpoint": SITE, "tokenSecretRef": TOKEN_REF}, "needs username"),
    ({"endpoint": SITE, "auth_type": "scoped_api_token", "tokenSecretRef": TOKEN_REF}, "set username"),
    ({"endpoint": DC, "auth_type": "basic", "tokenSecretRef": TOKEN_REF}, "set username"),
    ({"endpoint": GATEWAY, "tokenSecretRef": TOKEN_REF, "site_url": SITE}, "scoped API token with username"),
    ({"endpoint": GATEWAY, "username": "a@b.c", "tokenSecretRef": TOKEN_REF}, "set site_url"),
    ({"endpoint": SITE, "username": "a@b.c", "tokenSecretRef": TOKEN_REF, "site_url": SITE}, "site_url is only"),
    ({"endpoint": SITE, "auth_type": "oauth2_client_credentials"}, "needs oauthSecretRef"),
    (
        {"endpoint": SITE, "auth_type": "api_token", "username": "a@b.c", "oauthSecretRef": OAUTH_REF},
        "oauthSecretRef is only",
    ),
    ({"endpoint": SITE, "oauthSecretRef": OAUTH_REF, "tokenSecretRef": TOKEN_REF}, "exactly one credential"),
    ({"endpoint": DC}, "exactly one credential"),
    (
        {"endpoint": SITE, "auth_type": "personal_access_token", "username": "a", "tokenSecretRef": TOKEN_REF},
        "no personal access tokens",
    ),
    (
        {"endpoint": GATEWAY, "auth_type": "api_token", "username": "a", "tokenSecretRef": TOKEN_REF, "site_url": SITE},
        "works on the site only",
    ),
    (
        {"endpoint": DC, "auth_type": "personal_access_token", "username": "a", "tokenSecretRef": TOKEN_REF},
        "uses no username",
    ),
    ({"endpoint": SITE, "username": "a@b.c", "tokenSecretRef": TOKEN_REF, "cloud_id": "abc"}, "cloud_id is only"),
]


@pytest.mark.parametrize(("fields", "message"), REFUSED)
def test_configs_that_cannot_work_are_refused_with_advice(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**fields)


def test_every_rule_is_a_cel_rule_of_the_crd_with_the_same_message() -> None:
    version = datasource_crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["connector"]["properties"]
    rules = {(r["rule"], r["message"]) for r in schema["config"]["x-kubernetes-validations"]}
    assert {(rule.cel, rule.message) for rule in RULES} <= rules
    # Each rule is exercised by a refused config above.
    assert all(any(m in rule.message for _, m in REFUSED) for rule in RULES)


def test_gateway_routing_and_credentials_per_mode() -> None:
    settings = Settings(confluence_gateway_url="https://gw.example.net", confluence_auth_url="https://auth.example.net")

    def request(cfg: ConfluenceConfig, token: str | None = "tok", oauth: OAuthClient | None = None) -> SyncRequest:
        spec = DatasourceSpec.model_validate(
            {"name": "w", "connector": {"id": "confluence", "config": cfg.model_dump()}}
        )
        return SyncRequest(datasource_id="ns/w", spec=spec, token=token, index="i", oauth=oauth)

    classic = config(endpoint=SITE, username="me@acme.com", tokenSecretRef=TOKEN_REF)
    site, gateway = site_and_gateway(classic, settings)
    assert gateway is None and site.api_base == SITE
    assert credentials(request(classic), settings).hint.startswith("username must be the email")

    scoped = config(endpoint=SITE, auth_type="scoped_api_token", username="s@acme.com", tokenSecretRef=TOKEN_REF)
    site, gateway = site_and_gateway(scoped, settings)
    assert site.base == SITE and gateway is not None and gateway.url == "https://gw.example.net"
    assert gateway.cloud_id is None  # read from tenant_info when the client starts

    explicit = scoped.model_copy(update={"cloud_id": "c-1"})
    assert site_and_gateway(explicit, settings)[1] == type(gateway)("https://gw.example.net", "c-1")

    # The endpoint is the operator's gateway itself: the cloudId comes from its path, links from site_url.
    endpoint = "https://gw.example.net/ex/confluence/c-2/wiki"
    on_gateway = config(endpoint=endpoint, username="s@acme.com", tokenSecretRef=TOKEN_REF, site_url=SITE)
    site, gateway = site_and_gateway(on_gateway, settings)
    assert (site.base, site.api_base) == (SITE, endpoint) and gateway is not None and gateway.cloud_id == "c-2"

    oauth = config(endpoint=SITE, oauthSecretRef=OAUTH_REF)
    flow = credentials(request(oauth, None, OAuthClient("cid", "csecret")), settings)
    assert isinstance(flow, OAuthClientCredentials)
    assert flow.credentials.token_url == "https://auth.example.net/oauth/token" and flow.secrets == ("csecret",)


def test_auth_fields_do_not_invalidate_the_watermark() -> None:
    def spec(**fields: Any) -> DatasourceSpec:
        cfg = {"space": "DOCS", **fields}
        return DatasourceSpec.model_validate({"name": "w", "connector": {"id": "confluence", "config": cfg}})

    classic = spec(endpoint=SITE, username="me@acme.com", tokenSecretRef=TOKEN_REF)
    scoped = spec(endpoint=SITE, auth_type="scoped_api_token", username="svc@acme.com", tokenSecretRef=TOKEN_REF)
    oauth = spec(endpoint=SITE, oauthSecretRef=OAUTH_REF, cloud_id="c-1")
    assert config_fingerprint(classic, "i") == config_fingerprint(scoped, "i") == config_fingerprint(oauth, "i")
    assert config_fingerprint(classic, "i") != config_fingerprint(spec(endpoint=DC, tokenSecretRef=TOKEN_REF), "i")


async def test_oauth_tokens_are_renewed_at_half_life_and_after_a_refusal() -> None:
    forget_tokens()
    now = [1000.0]
    issued: list[str] = []

    async def fetch(client: ClientCredentials) -> tuple[str, float]:
        issued.append(f"at-{len(issued)}")
        return issued[-1], 3600.0

    flow = OAuthClientCredentials(
        ClientCredentials("https://auth.example.net/oauth/token", "cid", "csecret\n"), hint="", clock=lambda: now[0]
    )
    flow.bind(fetch)
    assert flow.credentials.client_secret == "csecret"  # cleaned like every secret value
    assert await flow.access_token() == "at-0"
    now[0] += 1799
    assert await flow.access_token() == "at-0"
    now[0] += 2  # past half of its 60 minutes: renewed before it can expire mid-run
    assert await flow.access_token() == "at-1"
    # A refusal renews once; a second refusal of an older token does not renew again.
    assert await flow.renew("Bearer at-1") and await flow.access_token() == "at-2"
    assert await flow.renew("Bearer at-1") and await flow.access_token() == "at-2"
    assert not await flow.renew(None) and not await flow.renew("Basic abc")
    # Another run with the same client credentials uses the token at hand: one token endpoint call per half-life.
    other = OAuthClientCredentials(
        ClientCredentials("https://auth.example.net/oauth/token", "cid", "csecret"), hint="", clock=lambda: now[0]
    )
    other.bind(fetch)
    assert await other.access_token() == "at-2" and other.fetched == 0
    forget_tokens()


def test_oauth_credentials_reach_the_job_through_its_environment() -> None:
    spec = DatasourceSpec.model_validate(
        {
            "name": "w",
            "connector": {
                "id": "confluence",
                "config": {"endpoint": SITE, "space": "DOCS", "oauthSecretRef": {"name": "svc", "clientIdKey": "id"}},
            },
        }
    )
    env = {e["name"]: e for e in job_env(spec, Settings(confluence_gateway_url="https://gw.example.net"))}
    assert TOKEN not in env
    assert env[OAUTH_CLIENT_ID]["valueFrom"]["secretKeyRef"] == {"name": "svc", "key": "id"}
    assert env[OAUTH_CLIENT_SECRET]["valueFrom"]["secretKeyRef"] == {"name": "svc", "key": "client_secret"}
    assert env["COCO_CONFLUENCE_GATEWAY_URL"]["value"] == "https://gw.example.net"
    for forwarded in ("COCO_CONFLUENCE_AUTH_URL", "COCO_ALLOW_PRIVATE_NETWORKS", "COCO_LINK_ALLOWED_HOSTS"):
        assert forwarded in env

    import asyncio

    pod = EnvSecrets({OAUTH_CLIENT_ID: "cid", OAUTH_CLIENT_SECRET: "sec"})
    creds = asyncio.run(pod.credentials(spec))
    assert creds.oauth == OAuthClient("cid", "sec") and creds.token is None
    with pytest.raises(SecretError, match=OAUTH_CLIENT_SECRET):
        asyncio.run(EnvSecrets({OAUTH_CLIENT_ID: "cid"}).credentials(spec))


def test_the_example_datasources_are_valid() -> None:
    from pathlib import Path

    import yaml

    examples = Path(__file__).resolve().parents[2] / "manifests" / "examples"
    modes = set()
    for path in sorted(examples.glob("datasource-*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Datasource":
                modes.add(DatasourceSpec.model_validate(doc["spec"]).connector.config.auth_mode)
    assert {"api_token", "personal_access_token", "oauth2_client_credentials"} <= modes
