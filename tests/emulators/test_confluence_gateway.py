"""The API gateway, scoped tokens, OAuth 2.0 and CHANGE-864: what a Cloud client in 2026 meets (issue 14)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from .confluence import ConfluenceEmulator, ConfluenceState
from .confluence.replies import GONE_MESSAGE
from .confluence_support import (
    CLOUD_EMAIL,
    CLOUD_TOKEN,
    SCOPED_EMAIL,
    SCOPED_TOKEN,
    dc,
    gateway,
    make_space,
)

__all__ = ["dc", "gateway"]
Site = tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]


def test_tenant_info_is_unauthenticated_and_cloud_only(gateway: Site, dc: Site) -> None:
    emu, state, _ = gateway
    answer = httpx.get(emu.base_url + "/_edge/tenant_info")
    assert answer.status_code == 200 and answer.json() == {"cloudId": state.cloud_id}
    assert emu.gateway_endpoint == f"{emu.gateway_url}/ex/confluence/{state.cloud_id}/wiki"
    # Three distinct origins: the site, api.atlassian.com and auth.atlassian.com.
    assert len({emu.base_url, emu.gateway_url, emu.auth_url}) == 3
    dc_emu, _, dc_client = dc
    assert dc_client.get(dc_emu.base_url + "/_edge/tenant_info").status_code == 404


def test_scoped_token_works_only_through_the_gateway(gateway: Site) -> None:
    emu, state, client = gateway
    make_space(state, "GW", 3)
    site_search = emu.endpoint + "/rest/api/content/search"
    gw_search = emu.gateway_endpoint + "/rest/api/content/search"
    assert client.get(site_search, params={"cql": "space = GW"}).status_code == 401
    found = client.get(gw_search, params={"cql": "space = GW"})
    assert found.status_code == 200 and found.json()["size"] == 3
    assert (
        client.get(emu.gateway_endpoint + "/api/v2/spaces", params={"keys": "GW"}).json()["results"][0]["key"] == "GW"
    )
    # Bearer with a scoped API token: 404 from the gateway; a classic token is refused there.
    bearer = httpx.get(gw_search, params={"cql": "space = GW"}, headers={"Authorization": f"Bearer {SCOPED_TOKEN}"})
    assert bearer.status_code == 404
    classic = httpx.get(gw_search, params={"cql": "space = GW"}, auth=(CLOUD_EMAIL, CLOUD_TOKEN))
    assert classic.status_code == 401 and classic.json() == {"code": 401, "message": "Unauthorized"}
    assert httpx.get(gw_search, params={"cql": "space = GW"}).status_code == 401
    # An unknown cloudId reaches nothing.
    other = emu.gateway_url + "/ex/confluence/not-a-cloud-id/wiki/rest/api/content/search"
    assert client.get(other, params={"cql": "space = GW"}).status_code == 404
    channels = {(r.channel, r.status) for r in state.requests}
    assert ("site", 401) in channels and ("gateway", 200) in channels


REMOVED = [
    "/rest/api/space",
    "/rest/api/space/GW",
    "/rest/api/content?spaceKey=GW",
    "/rest/api/content/{page}",
    "/rest/api/content/{page}/child/page",
    "/rest/api/content/{page}/child/attachment",
    "/rest/api/content/{page}/child/comment",
    "/rest/api/content/{page}/label",
]


@pytest.mark.parametrize("path", REMOVED)
def test_change_864_reads_are_gone_through_the_gateway_and_warn_on_the_site(gateway: Site, path: str) -> None:
    emu, state, client = gateway
    (page,) = make_space(state, "GW", 1)
    url = path.format(page=page)
    gone = client.get(emu.gateway_endpoint + url)
    assert gone.status_code == 410
    assert gone.json()["statusCode"] == 410 and gone.json()["message"] == GONE_MESSAGE
    with httpx.Client(auth=(CLOUD_EMAIL, CLOUD_TOKEN)) as classic:
        ok = classic.get(emu.endpoint + url)
    assert ok.status_code == 200
    assert ok.headers["Warning"] == '299 - "Deprecated API, will be removed on Mon, 31 Mar 2025 00:00:00 GMT"'
    assert ok.headers["Deprecation"] == "Wed, 1 Mar 2023 00:00:00 GMT"


def test_search_restrictions_and_download_stay_on_v1_through_the_gateway(gateway: Site) -> None:
    emu, state, client = gateway
    (page,) = make_space(state, "GW", 1)
    att = state.add_attachment(page, "a.txt", b"payload", "text/plain")
    base = emu.gateway_endpoint + "/rest/api"
    for path in (
        "/search?cql=space%3DGW",
        "/content/search?cql=space%3DGW",
        f"/content/{page}/restriction/byOperation",
    ):
        answer = client.get(base + path)
        assert answer.status_code == 200 and "Warning" not in answer.headers, path
    download = client.get(f"{base}/content/{page}/child/attachment/{att}/download")
    assert download.status_code == 302
    assert httpx.get(download.headers["Location"]).content == b"payload"


def test_gateway_answers_name_the_site_in_links_base(gateway: Site) -> None:
    """backstage community-plugins #4615: building page 2 from _links.base leaves the gateway."""
    emu, state, client = gateway
    make_space(state, "GW", 30)
    first = client.get(emu.gateway_endpoint + "/rest/api/content/search", params={"cql": "space = GW", "limit": 10})
    links = first.json()["_links"]
    assert links["base"] == emu.endpoint and links["context"] == "/wiki"
    assert links["next"].startswith("/rest/api/content/search?")
    assert client.get(links["base"] + links["next"]).status_code == 401  # the site refuses the scoped token
    second = client.get(emu.gateway_endpoint + links["next"])
    assert second.status_code == 200 and second.json()["start"] == 10


def test_scopes_are_checked_as_the_gateway_checks_them(gateway: Site) -> None:
    emu, state, _ = gateway
    (page,) = make_space(state, "GW", 1)
    granular = ["read:page:confluence", "read:space:confluence", "read:content.metadata:confluence"]
    state.add_scoped_token("narrow@example.com", "narrow-token", granular)
    with httpx.Client(auth=("narrow@example.com", "narrow-token")) as narrow:
        assert narrow.get(f"{emu.gateway_endpoint}/api/v2/pages/{page}").status_code == 200
        # kovetskiy/mark #917: a removed v1 read with granular scopes is a scope failure, not a 410.
        refused = narrow.get(f"{emu.gateway_endpoint}/rest/api/content", params={"spaceKey": "GW"})
        assert refused.status_code == 401
        assert refused.json() == {"code": 401, "message": "Unauthorized; scope does not match"}
        assert refused.headers["X-Failure-Category"] == "FAILURE_CLIENT_SCOPE_CHECK"
        assert narrow.get(f"{emu.gateway_endpoint}/api/v2/footer-comments/{page}").status_code == 401
        assert narrow.get(emu.gateway_endpoint + "/rest/api/search", params={"cql": "type=page"}).status_code == 401
    state.add_scoped_token("search@example.com", "search-token", ["read:content-details:confluence"])
    with httpx.Client(auth=("search@example.com", "search-token")) as searcher:
        found = searcher.get(emu.gateway_endpoint + "/rest/api/search", params={"cql": "type=page"})
        assert found.status_code == 200 and found.json()["totalSize"] == 1


def _token(emu: ConfluenceEmulator, **fields: str) -> httpx.Response:
    return httpx.post(emu.token_url, json=fields)


def test_oauth_client_credentials_through_the_gateway(gateway: Site) -> None:
    emu, state, _ = gateway
    (page,) = make_space(state, "GW", 1)
    state.credentials.access_ttl_s = 120
    account = state.add_oauth_client("svc-client", "svc-secret")
    form = httpx.post(
        emu.token_url,
        data={"grant_type": "client_credentials", "client_id": "svc-client", "client_secret": "svc-secret"},
    )
    issued = _token(emu, grant_type="client_credentials", client_id="svc-client", client_secret="svc-secret")
    for answer in (form, issued):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 120 and "refresh_token" not in body
        assert "read:page:confluence" in body["scope"].split()
    bearer = {"Authorization": "Bearer " + issued.json()["access_token"]}
    with httpx.Client(headers=bearer) as client:
        assert client.get(f"{emu.gateway_endpoint}/api/v2/pages/{page}").status_code == 200
        assert (
            client.get(emu.gateway_endpoint + "/rest/api/content/search", params={"cql": "type=page"}).status_code
            == 200
        )
        assert client.get(f"{emu.gateway_endpoint}/rest/api/content/{page}").status_code == 410
        assert client.get(f"{emu.endpoint}/api/v2/pages/{page}").status_code == 401  # the site takes no OAuth
        resources = client.get(emu.gateway_url + "/oauth/token/accessible-resources").json()
        assert resources[0]["id"] == state.cloud_id and resources[0]["url"] == emu.base_url
        state.set_now(state.now() + timedelta(seconds=121))
        expired = client.get(f"{emu.gateway_endpoint}/api/v2/pages/{page}")
        assert expired.status_code == 401
    assert any(r.principal == account.account_id for r in state.requests)
    wrong = _token(emu, grant_type="client_credentials", client_id="svc-client", client_secret="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "access_denied"
    assert _token(emu, grant_type="password", client_id="svc-client").json()["error"] == "unsupported_grant_type"


def test_oauth_refresh_tokens_rotate(gateway: Site) -> None:
    emu, state, _ = gateway
    make_space(state, "GW", 1)
    state.add_oauth_client("app", "app-secret")
    user = state.add_user("Consenting User", "consent@example.com")
    first = state.add_oauth_grant("app", user, ["read:page:confluence", "search:confluence"])
    renewed = _token(emu, grant_type="refresh_token", client_id="app", client_secret="app-secret", refresh_token=first)
    assert renewed.status_code == 200
    body = renewed.json()
    assert body["refresh_token"] != first and "offline_access" in body["scope"].split()
    replay = _token(emu, grant_type="refresh_token", client_id="app", client_secret="app-secret", refresh_token=first)
    assert replay.status_code == 403
    assert replay.json() == {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}
    again = _token(
        emu,
        grant_type="refresh_token",
        client_id="app",
        client_secret="app-secret",
        refresh_token=body["refresh_token"],
    )
    assert again.status_code == 200
    headers = {"Authorization": "Bearer " + again.json()["access_token"]}
    pages = httpx.get(emu.gateway_endpoint + "/api/v2/pages", headers=headers)
    assert pages.status_code == 200 and len(pages.json()["results"]) == 1
    assert httpx.get(emu.gateway_endpoint + "/api/v2/spaces", headers=headers).status_code == 401  # no space scope


def test_gateway_needs_cloud(dc: Site) -> None:
    with pytest.raises(ValueError, match="Cloud only"):
        ConfluenceEmulator(ConfluenceState(), edition="dc", gateway=True)
    emu, _, _ = dc
    with pytest.raises(RuntimeError, match="gateway listener is not started"):
        _ = emu.gateway_url


def test_scoped_email_is_the_account(gateway: Site) -> None:
    emu, state, client = gateway
    me = client.get(emu.gateway_endpoint + "/rest/api/user/current").json()
    assert me["accountId"] == state.user_by_email(SCOPED_EMAIL).account_id  # type: ignore[union-attr]
