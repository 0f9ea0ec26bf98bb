"""Each way to authenticate to Confluence, end to end on the real API server: classic API token, scoped API token
through Atlassian's gateway (cloudId from tenant_info), a service account's OAuth 2.0 client credentials (with a
token renewal between runs), Data Center personal access token and Data Center user name and password. And the
admission rules that refuse a config that cannot work (server-side dry run)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    DC_PAT,
    Kube,
    Meili,
    Operator,
    condition,
    datasource,
    make_namespace,
    own_operator,
    play_job_pod,
    request_sync,
    secret,
    wait_for,
    wait_handled,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState

pytestmark = pytest.mark.e2e

SCOPED_EMAIL, SCOPED_TOKEN = "svc-e2e@serviceaccount.atlassian.com", "scoped-e2e-token-81c2"
CLIENT_ID, CLIENT_SECRET = "e2e-client", "e2e-client-secret-5d9e"
DC_USER, DC_PASSWORD = "dcuser", "dc-password-e2e-3"


def _seed(state: ConfluenceState, key: str, word: str) -> None:
    state.add_space(key, f"Space {key}")
    home = state.add_page(key, "Home", f"<p>All about {word}.</p>")
    state.add_page(key, "Second", "<p>second page</p>", parent_id=home)
    state.add_attachment(home, "notes.txt", f"attachment about {word}-files".encode(), "text/plain")


def _searchable(meili: Meili, ds_id: str, word: str, site: str, index: str | None = None) -> None:
    hits = meili.search(word, ds_id, index)
    assert hits and hits[0]["title"] == "Home", hits
    assert all(h["url"].startswith(site + "/") for h in meili.docs(ds_id, index))  # links open the site


def _oauth_secret(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        # Opted in for Datasources (docs/security.md): the operator reads no other Secret of the namespace.
        "metadata": {"name": "svc-oauth", "namespace": ns, "labels": {"coco.rs/usable-by-datasources": "true"}},
        "stringData": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    }


def test_classic_api_token(kube: Kube, meili: Meili, cloud: ConfluenceEmulator, operator: Operator, ns: str) -> None:
    _seed(cloud.state, "AMCL", "ocelots")
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "AMCL", attachments=True))
    wait_ready(kube, ns, "wiki")
    _searchable(meili, f"{ns}/wiki", "ocelots", cloud.endpoint)


def test_data_center_personal_access_token(
    kube: Kube, meili: Meili, datacenter: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    _seed(datacenter.state, "AMPAT", "axolotls")
    ds = datasource(ns, "wiki", datacenter.endpoint, "AMPAT", username=None, attachments=True)
    ds["spec"]["connector"]["config"]["auth_type"] = "personal_access_token"
    kube.apply(secret(ns, DC_PAT), ds)
    wait_ready(kube, ns, "wiki")
    _searchable(meili, f"{ns}/wiki", "axolotls", datacenter.endpoint)


def test_data_center_user_name_and_password(
    kube: Kube, meili: Meili, datacenter: ConfluenceEmulator, operator: Operator, ns: str
) -> None:
    datacenter.state.add_password(DC_USER, DC_PASSWORD)
    _seed(datacenter.state, "AMBAS", "narwhals")
    ds = datasource(ns, "wiki", datacenter.endpoint, "AMBAS", username=DC_USER, attachments=True)
    ds["spec"]["connector"]["config"]["auth_type"] = "basic"
    kube.apply(secret(ns, DC_PASSWORD), ds)
    # Data Center shows space permissions to space admins only, which this account is not: the default
    # permissions.mode (sync) cannot work, and the condition says what to do.
    obj = wait_ready(kube, ns, "wiki", status="False", reason="SpacePermissionsUnreadable")
    ready = condition(obj, "Ready")
    assert ready is not None and "permissions.mode: none" in ready["message"] and DC_PASSWORD not in ready["message"]
    ds["spec"]["permissions"] = {"mode": "none"}
    kube.apply(ds)
    wait_ready(kube, ns, "wiki")
    _searchable(meili, f"{ns}/wiki", "narwhals", datacenter.endpoint)
    principals = {r.principal for r in datacenter.state.requests if r.path.startswith("/confluence/rest/api/space")}
    assert DC_USER in principals


@pytest.fixture(scope="module")
def atlassian() -> Iterator[ConfluenceEmulator]:
    """A Cloud site with Atlassian's API gateway and token endpoint (three origins)."""
    state = ConfluenceState()
    state.add_scoped_token(SCOPED_EMAIL, SCOPED_TOKEN)
    state.add_oauth_client(CLIENT_ID, CLIENT_SECRET)
    with ConfluenceEmulator(state, edition="cloud", gateway=True) as emu:
        yield emu


@pytest.fixture(scope="module")
def gop(
    kube: Kube, meili: Meili, atlassian: ConfluenceEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """An operator whose Atlassian gateway and token endpoint are the emulator's (g-* namespaces)."""
    with own_operator(
        kube,
        meili,
        tmp_path_factory,
        "g-*",
        COCO_CONFLUENCE_GATEWAY_URL=atlassian.gateway_url,
        COCO_CONFLUENCE_AUTH_URL=atlassian.auth_url,
        # The gateway redirects downloads to the media host: here the site's listener, another origin.
        COCO_LINK_ALLOWED_HOSTS="api.media.atlassian.com,127.0.0.1",
    ) as op:
        yield op


def _gateway_calls(atlassian: ConfluenceEmulator, since: int) -> set[tuple[str, str]]:
    return {(r.channel, r.route) for r in atlassian.state.requests[since:]}


def test_scoped_api_token_through_the_gateway(
    kube: Kube, meili: Meili, atlassian: ConfluenceEmulator, gop: Operator, request: pytest.FixtureRequest
) -> None:
    ns = make_namespace(kube, "g", request.node.name)
    _seed(atlassian.state, "AMSC", "capybaras")
    before = len(atlassian.state.requests)
    ds = datasource(ns, "wiki", atlassian.endpoint, "AMSC", username=SCOPED_EMAIL, attachments=True)
    ds["spec"]["connector"]["config"]["auth_type"] = "scoped_api_token"
    kube.apply(secret(ns, SCOPED_TOKEN), ds)
    wait_ready(kube, ns, "wiki")
    _searchable(meili, f"{ns}/wiki", "capybaras", atlassian.endpoint)
    calls = _gateway_calls(atlassian, before)
    assert ("site", "tenant_info") in calls  # the cloudId, read once from the site
    assert {route for channel, route in calls if channel == "site"} <= {"tenant_info", "media"}
    assert ("gateway", "v2.spaces") in calls and not any(
        atlassian.routes[r].deprecated for _, r in calls if r in atlassian.routes
    )


def test_service_account_oauth_renews_its_token_between_runs(
    kube: Kube, meili: Meili, atlassian: ConfluenceEmulator, gop: Operator, request: pytest.FixtureRequest
) -> None:
    ns = make_namespace(kube, "g", request.node.name)
    state = atlassian.state
    _seed(state, "AMOA", "pangolins")
    tokens = [r for r in state.requests if r.channel == "auth"]
    ds = datasource(ns, "wiki", atlassian.endpoint, "AMOA", username=None, attachments=True)
    config = ds["spec"]["connector"]["config"]
    del config["tokenSecretRef"]
    config["oauthSecretRef"] = {"name": "svc-oauth"}
    kube.apply(_oauth_secret(ns), ds)
    wait_ready(kube, ns, "wiki")
    _searchable(meili, f"{ns}/wiki", "pangolins", atlassian.endpoint)
    issued = [r for r in state.requests if r.channel == "auth"]
    assert len(issued) == len(tokens) + 1 and issued[-1].status == 200
    # An hour later on the site's clock the operator's token has expired: the next run renews it and goes on.
    state.add_page("AMOA", "Later", "<p>pangolins came back</p>")
    state.set_now(state.now() + timedelta(seconds=state.credentials.access_ttl_s + 60))
    handled = wait_handled(kube, ns, "wiki", request_sync(kube, ns, "wiki"))
    assert handled["status"]["lastSyncResult"] == "Succeeded", handled["status"].get("lastError")
    assert len([r for r in state.requests if r.channel == "auth"]) == len(issued) + 1
    assert any(r.channel == "gateway" and r.status == 401 for r in state.requests)
    assert any(h["title"] == "Later" for h in meili.search("came back", f"{ns}/wiki"))


@pytest.fixture(scope="module")
def job_gop(
    kube: Kube, meili: Meili, atlassian: ConfluenceEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """The same in Job mode (gj-* namespaces): credentials reach the pod only through its environment."""
    with own_operator(
        kube,
        meili,
        tmp_path_factory,
        "gj-*",
        COCO_RUN_MODE="Job",
        COCO_JOB_IMAGE="registry.example/coco-operator:test",
        COCO_JOB_POLL_SECONDS="0.5",
        COCO_CONFLUENCE_GATEWAY_URL=atlassian.gateway_url,
        COCO_CONFLUENCE_AUTH_URL=atlassian.auth_url,
        COCO_LINK_ALLOWED_HOSTS="api.media.atlassian.com,127.0.0.1",
    ) as op:
        yield op


def test_service_account_oauth_in_a_sync_job(
    kube: Kube, meili: Meili, atlassian: ConfluenceEmulator, job_gop: Operator, request: pytest.FixtureRequest
) -> None:
    import kubernetes

    ns = make_namespace(kube, "gj", request.node.name)
    _seed(atlassian.state, "AMJOB", "tapirs")
    # An index the namespace owns: runs into a shared one stay in the operator (job.sharedIndex: InProcess).
    index = f"{ns}_docs"
    ds = datasource(ns, "wiki", atlassian.endpoint, "AMJOB", username=None, attachments=True, index=index)
    del ds["spec"]["connector"]["config"]["tokenSecretRef"]
    ds["spec"]["connector"]["config"]["oauthSecretRef"] = {"name": "svc-oauth"}
    kube.apply(_oauth_secret(ns), ds)
    batch = kubernetes.client.BatchV1Api(kube.api)
    job = wait_for("a sync Job", lambda: batch.list_namespaced_job(ns).items, timeout=30)[0]
    env = {e.name: e for e in job.spec.template.spec.containers[0].env}
    assert "CONFLUENCE_TOKEN" not in env
    assert env["CONFLUENCE_OAUTH_CLIENT_SECRET"].value_from.secret_key_ref.key == "client_secret"
    assert env["COCO_CONFLUENCE_GATEWAY_URL"].value == atlassian.gateway_url
    assert all((e.value or "") != CLIENT_SECRET for e in env.values())  # never inline
    proc = play_job_pod(kube, job, kube.kubeconfig)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    wait_ready(kube, ns, "wiki")
    _searchable(meili, f"{ns}/wiki", "tapirs", atlassian.endpoint, index)


VALID: dict[str, dict[str, Any]] = {
    "api_token": {"auth_type": "api_token", "username": "me@acme.com"},
    "scoped_api_token": {"auth_type": "scoped_api_token", "username": "svc@acme.com", "cloud_id": "c0ffee-1"},
    "oauth2_client_credentials": {"oauthSecretRef": {"name": "svc-oauth"}, "tokenSecretRef": None},
    "gateway_endpoint": {
        "endpoint": "https://api.atlassian.com/ex/confluence/c0ffee-1/wiki",
        "username": "svc@acme.com",
        "site_url": "https://acme.atlassian.net/wiki",
    },
    "personal_access_token": {
        "endpoint": "https://dc.example.com",
        "auth_type": "personal_access_token",
        "username": None,
    },
    "basic": {"endpoint": "https://dc.example.com", "auth_type": "basic", "username": "jdoe"},
}

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "scoped without username": ({"auth_type": "scoped_api_token", "username": None}, "set username"),
    "gateway without site_url": (
        {"endpoint": "https://api.atlassian.com/ex/confluence/c1/wiki", "username": "a@b.c"},
        "set site_url",
    ),
    "gateway without username": (
        {
            "endpoint": "https://api.atlassian.com/ex/confluence/c1/wiki",
            "site_url": "https://a.atlassian.net/wiki",
            "username": None,
        },
        "scoped API token with username",
    ),
    "oauth without its Secret": (
        {"auth_type": "oauth2_client_credentials", "tokenSecretRef": None},
        "needs oauthSecretRef",
    ),
    "oauth and a token": ({"oauthSecretRef": {"name": "o"}}, "exactly one credential"),
    "no credential": ({"endpoint": "https://dc.example.com", "tokenSecretRef": None}, "exactly one credential"),
    "PAT on Cloud": ({"auth_type": "personal_access_token", "username": None}, "no personal access tokens"),
    "DC Basic without username": (
        {"endpoint": "https://dc.example.com", "auth_type": "basic", "username": None},
        "set username",
    ),
    "PAT with username": (
        {"endpoint": "https://dc.example.com", "auth_type": "personal_access_token", "username": "jdoe"},
        "uses no username",
    ),
    "classic token on the gateway": (
        {
            "endpoint": "https://api.atlassian.com/ex/confluence/c1/wiki",
            "auth_type": "api_token",
            "site_url": "https://a.atlassian.net/wiki",
        },
        "works on the site only",
    ),
    "cloud_id with a classic token": ({"cloud_id": "c1"}, "cloud_id is only"),
    "unknown auth_type": ({"auth_type": "kerberos"}, "spec.connector.config.auth_type"),
}


def _dry_run(kube: Kube, ns: str, changes: dict[str, Any]) -> tuple[int, str]:
    obj = datasource(ns, "auth", "https://acme.atlassian.net/wiki", "DOCS")
    config = obj["spec"]["connector"]["config"]
    for key, value in copy.deepcopy(changes).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    proc = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(obj), check=False)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("mode", list(VALID))
def test_each_auth_mode_passes_admission(kube: Kube, ns: str, mode: str) -> None:
    code, err = _dry_run(kube, ns, VALID[mode])
    assert code == 0, err


@pytest.mark.parametrize("case", list(REFUSED))
def test_configs_that_cannot_authenticate_are_refused_at_admission(kube: Kube, ns: str, case: str) -> None:
    changes, message = REFUSED[case]
    code, err = _dry_run(kube, ns, changes)
    assert code != 0 and message in err, err
    assert kube.datasource(ns, "auth") is None
