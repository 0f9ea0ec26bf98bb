"""Whole runs through each auth mode against the emulated site, API gateway and token endpoint (issue 14): what is
called (never a CHANGE-864 read on Cloud), where links point (the site, never the API host), how tokens renew,
and what an archived space or a removed endpoint turns into."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.confluence.auth import OAuthClient, forget_tokens
from coco_operator.confluence.client import ConfluenceClient, Gateway
from coco_operator.confluence.gateway import forget_cloud_ids
from coco_operator.errors import EndpointRemovedError
from coco_operator.settings import Settings
from coco_operator.sync import SyncRequest, SyncResult, run_sync
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState
from tests.emulators.confluence.model import RequestRecord
from tests.sync.conftest import CLOUD_EMAIL, CLOUD_TOKEN, DC_PAT, MeiliServer, settings_for

pytestmark = pytest.mark.meili

SCOPED_EMAIL, SCOPED_TOKEN = "svc-bot@serviceaccount.atlassian.com", "scoped-api-token-1"
CLIENT_ID, CLIENT_SECRET = "svc-client-id", "svc-client-secret-42"
DC_USER, DC_PASSWORD = "jdoe", "dc-password-7"
DS = "ns/wiki"
TOKEN_REF = {"name": "t"}


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    forget_tokens()
    forget_cloud_ids()
    yield
    forget_tokens()
    forget_cloud_ids()


def _seed(state: ConfluenceState, key: str = "AUTH") -> list[str]:
    state.add_space(key, f"Space {key}")
    home = state.add_page(key, "Home", "<p>welcome</p>")
    ids = [home] + [state.add_page(key, f"Page {i}", f"<p>quokka {i}</p>", parent_id=home) for i in range(11)]
    ids.append(state.add_blogpost(key, "News", "<p>news of wombats</p>"))
    ids.append(state.add_attachment(home, "notes.txt", b"attachment about pelicans", "text/plain"))
    return ids


@pytest.fixture
def atlassian() -> Iterator[ConfluenceEmulator]:
    """A Cloud site with Atlassian's gateway and token endpoint, small pages so that every listing pages."""
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    state.add_scoped_token(SCOPED_EMAIL, SCOPED_TOKEN)
    state.add_oauth_client(CLIENT_ID, CLIENT_SECRET)
    state.cloud_cap = state.cloud_body_cap = 5
    with ConfluenceEmulator(state, edition="cloud", gateway=True) as emu:
        yield emu


@pytest.fixture
def datacenter() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState(timezone="Europe/Berlin")
    state.add_pat(DC_PAT, DC_USER)
    state.add_password(DC_USER, DC_PASSWORD)
    state.dc_plain_cap = state.dc_expand_cap = state.dc_body_cap = 5
    with ConfluenceEmulator(state, edition="dc", context_path="/confluence") as emu:
        yield emu


def gateway_settings(emu: ConfluenceEmulator, meili: MeiliServer, **more: Any) -> Settings:
    # Attachment downloads through the gateway are redirected to the site's media listener: another origin here.
    return settings_for(
        meili,
        confluence_gateway_url=emu.gateway_url,
        confluence_auth_url=emu.auth_url,
        link_allowed_hosts=["127.0.0.1"],
        **more,
    )


def spec(emu: ConfluenceEmulator, key: str = "AUTH", **auth: Any) -> DatasourceSpec:
    config = {"endpoint": emu.endpoint, "space": key, "enable_blogposts": True, "enable_attachments": True, **auth}
    body: dict[str, Any] = {"name": "Wiki", "connector": {"id": "confluence", "config": config}}
    if not emu.cloud:
        # Data Center shows space permissions to space admins only, which these accounts are not
        # (tests/sync/test_permissions_editions.py covers that refusal).
        body["permissions"] = {"mode": "none"}
    return DatasourceSpec.model_validate(body)


MODES: dict[str, tuple[str, dict[str, Any], str | None, OAuthClient | None]] = {
    "api_token": ("cloud", {"username": CLOUD_EMAIL, "tokenSecretRef": TOKEN_REF}, CLOUD_TOKEN, None),
    "scoped_api_token": (
        "cloud",
        {"auth_type": "scoped_api_token", "username": SCOPED_EMAIL, "tokenSecretRef": TOKEN_REF},
        SCOPED_TOKEN,
        None,
    ),
    "oauth2_client_credentials": (
        "cloud",
        {"oauthSecretRef": {"name": "svc"}},
        None,
        OAuthClient(CLIENT_ID, CLIENT_SECRET),
    ),
    "personal_access_token": ("dc", {"tokenSecretRef": TOKEN_REF}, DC_PAT, None),
    "basic": ("dc", {"auth_type": "basic", "username": DC_USER, "tokenSecretRef": TOKEN_REF}, DC_PASSWORD, None),
}


def removed_routes_called(emu: ConfluenceEmulator, requests: list[RequestRecord]) -> set[str]:
    """Paths of CHANGE-864 reads the run called (Atlassian removed them from the gateway)."""
    return {r.path for r in requests if r.route in emu.routes and emu.routes[r.route].deprecated}


async def run(emu: ConfluenceEmulator, meili: MeiliServer, index: str, mode: str, **settings: Any) -> SyncResult:
    _, auth, token, oauth = MODES[mode]
    request = SyncRequest(datasource_id=DS, spec=spec(emu, **auth), token=token, index=index, oauth=oauth)
    chosen = gateway_settings(emu, meili, **settings) if emu.with_gateway else settings_for(meili, **settings)
    return await run_sync(request, chosen)


@pytest.mark.parametrize("mode", list(MODES))
async def test_each_auth_mode_syncs_the_space_with_links_to_the_site(
    mode: str,
    atlassian: ConfluenceEmulator,
    datacenter: ConfluenceEmulator,
    meili_server: MeiliServer,
    index: str,
) -> None:
    emu = atlassian if MODES[mode][0] == "cloud" else datacenter
    ids = _seed(emu.state)
    result = await run(emu, meili_server, index, mode)
    assert result.succeeded, result.error
    docs = meili_server.docs(index, DS)
    assert sorted(d["metadata"]["content_id"] for d in docs) == sorted(ids)
    assert all(d["url"].startswith(emu.endpoint + "/") for d in docs), {d["url"] for d in docs}
    requests = list(emu.state.requests)
    if emu.cloud:  # Data Center has no v2: its v1 reads are current there
        assert not removed_routes_called(emu, requests)
    api = [r for r in requests if r.route.startswith(("v1.", "v2."))]
    assert api and all(r.auth_ok for r in api)
    if mode in ("scoped_api_token", "oauth2_client_credentials"):
        # Every API call through the gateway; the site only for its cloudId and the media redirect's target.
        assert {r.channel for r in api} == {"gateway"}
        assert {r.route for r in requests if r.channel == "site"} == {"tenant_info", "media"}
    else:
        assert {r.channel for r in requests} == {"site"}
    if emu.cloud:
        assert "v2.spaces" in {r.route for r in api}  # space details from REST v2, not v1 /space/{key}


async def test_a_gateway_endpoint_with_site_url_and_an_explicit_cloud_id_skip_tenant_info(
    atlassian: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _seed(atlassian.state)
    settings = gateway_settings(atlassian, meili_server)
    on_gateway = spec(
        atlassian, username=SCOPED_EMAIL, tokenSecretRef=TOKEN_REF, site_url=atlassian.endpoint
    ).model_copy()
    on_gateway.connector.config.endpoint = atlassian.gateway_endpoint
    explicit = spec(
        atlassian,
        auth_type="scoped_api_token",
        username=SCOPED_EMAIL,
        tokenSecretRef=TOKEN_REF,
        cloud_id=atlassian.cloud_id,
    )
    for config in (on_gateway, explicit):
        atlassian.state.requests.clear()
        request = SyncRequest(datasource_id=DS, spec=config, token=SCOPED_TOKEN, index=index)
        result = await run_sync(request, settings)
        assert result.succeeded, result.error
        assert "tenant_info" not in {r.route for r in atlassian.state.requests}
        docs = meili_server.docs(index, DS)
        assert len(docs) == len(ids) and all(d["url"].startswith(atlassian.endpoint + "/") for d in docs)


async def test_oauth_access_token_renewed_when_it_expires_mid_run(
    atlassian: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    state = atlassian.state
    _seed(state)
    responses = 0

    def hour_passes_after_the_third_answer(method: str, status: int) -> None:
        nonlocal responses
        responses += 1
        if responses == 3:  # the token expires on the site's clock while the run is going
            state.set_now(state.now() + timedelta(seconds=state.credentials.access_ttl_s + 60))

    _, auth, _, oauth = MODES["oauth2_client_credentials"]
    request = SyncRequest(datasource_id=DS, spec=spec(atlassian, **auth), token=None, index=index, oauth=oauth)
    result = await run_sync(
        request, gateway_settings(atlassian, meili_server), on_response=hour_passes_after_the_third_answer
    )
    assert result.succeeded, result.error
    tokens = [r for r in state.requests if r.channel == "auth"]
    refused = [r for r in state.requests if r.channel == "gateway" and r.status == 401]
    assert len(tokens) == 2 and 1 <= len(refused) <= 8  # renewed once; each refused request repeated once
    assert len(meili_server.docs(index, DS)) == 14


async def test_refused_credentials_say_what_to_check_and_never_the_secret(
    atlassian: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    _seed(atlassian.state)
    settings = gateway_settings(atlassian, meili_server)
    # A scoped token used as a classic one: the site refuses it.
    classic = spec(atlassian, username=SCOPED_EMAIL, tokenSecretRef=TOKEN_REF)
    result = await run_sync(SyncRequest(datasource_id=DS, spec=classic, token=SCOPED_TOKEN, index=index), settings)
    assert result.error is not None and result.error.reason == "AuthenticationFailed"
    assert "auth_type scoped_api_token" in result.error.message and SCOPED_TOKEN not in result.error.message
    # A wrong OAuth client secret: the token endpoint refuses it.
    wrong = OAuthClient(CLIENT_ID, "not-the-secret-123")
    oauth = spec(atlassian, oauthSecretRef={"name": "svc"})
    result = await run_sync(SyncRequest(datasource_id=DS, spec=oauth, token=None, index=index, oauth=wrong), settings)
    assert result.error is not None and result.error.reason == "AuthenticationFailed"
    assert "oauthSecretRef" in result.error.message and "not-the-secret-123" not in result.error.message
    assert result.counts.pages == 0 and not [r for r in atlassian.state.requests if r.channel == "gateway"]


async def test_a_removed_endpoint_is_a_reason_naming_it(atlassian: ConfluenceEmulator) -> None:
    _seed(atlassian.state)
    async with ConfluenceClient(
        atlassian.endpoint,
        SCOPED_TOKEN,
        username=SCOPED_EMAIL,
        gateway=Gateway(atlassian.gateway_url),
        max_retry_s=5,
    ) as client:
        with pytest.raises(EndpointRemovedError) as err:
            await client.get_space("AUTH")  # v1 /space/{key}: what every run called before (CHANGE-864)
    assert err.value.reason == "EndpointRemoved" and not err.value.retryable
    assert "/rest/api/space/AUTH" in err.value.message and "Atlassian removed this endpoint" in err.value.message


@pytest.mark.parametrize("edition", ["cloud", "dc"])
async def test_an_archived_space_is_a_condition_not_an_empty_index(
    edition: str,
    atlassian: ConfluenceEmulator,
    datacenter: ConfluenceEmulator,
    meili_server: MeiliServer,
    index: str,
) -> None:
    emu = atlassian if edition == "cloud" else datacenter
    ids = _seed(emu.state)
    mode = "api_token" if edition == "cloud" else "personal_access_token"
    first = await run(emu, meili_server, index, mode)
    assert first.succeeded, first.error
    emu.state.archive_space("AUTH")
    second = await run(emu, meili_server, index, mode)
    assert second.error is not None and second.error.reason == "SpaceArchived" and not second.error.retryable
    assert "content search returns nothing for archived spaces" in second.error.message
    assert "Restore the space" in second.error.message and "connector.config.space" in second.error.message
    assert len(meili_server.docs(index, DS)) == len(ids)  # nothing deleted
