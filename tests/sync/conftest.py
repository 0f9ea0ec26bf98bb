"""Fixtures for running whole syncs (no Kubernetes): Confluence emulators and Meilisearch (real when MEILI_URL and
MEILI_MASTER_KEY are set, else the emulator)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import meilisearch
import pytest

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.settings import Settings
from coco_operator.sync import SyncRequest, SyncResult, run_sync
from coco_operator.sync.plan import Listing
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState
from tests.emulators.meilisearch import MeiliEmulator

CLOUD_EMAIL, CLOUD_TOKEN, DC_PAT = "bot@example.com", "cloud-token", "dc-pat"


@dataclass
class MeiliServer:
    url: str
    key: str
    emulator: MeiliEmulator | None

    def client(self) -> meilisearch.Client:
        return meilisearch.Client(self.url, self.key)

    def docs(self, index: str, datasource_id: str) -> list[dict[str, Any]]:
        try:
            res = self.client().index(index).get_documents({"filter": f'source.id = "{datasource_id}"', "limit": 10000})
        except meilisearch.errors.MeilisearchApiError as exc:
            if exc.code == "index_not_found":
                return []
            raise
        return [dict(d) for d in res.results]


@pytest.fixture(scope="session")
def meili_server() -> Iterator[MeiliServer]:
    url, key = os.environ.get("MEILI_URL"), os.environ.get("MEILI_MASTER_KEY")
    if url and key:
        yield MeiliServer(url, key, None)
        return
    with MeiliEmulator(master_key="sync-key") as emu:
        yield MeiliServer(emu.url, "sync-key", emu)


@pytest.fixture
def index(meili_server: MeiliServer) -> Iterator[str]:
    uid = f"sync_{secrets.token_hex(5)}"
    yield uid
    with contextlib.suppress(Exception):
        meili_server.client().delete_index(uid)


@pytest.fixture(params=["cloud", "dc"])
def confluence(request: pytest.FixtureRequest) -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState(timezone="America/Los_Angeles" if request.param == "dc" else "Pacific/Auckland")
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    state.add_pat(DC_PAT)
    context = "/confluence" if request.param == "dc" else ""
    with ConfluenceEmulator(state, edition=request.param, context_path=context) as emu:
        yield emu


@pytest.fixture
def cloud() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    with ConfluenceEmulator(state, edition="cloud") as emu:
        yield emu


def make_spec(emu: ConfluenceEmulator, space: str, *, permissions: str | None = None, **config: Any) -> DatasourceSpec:
    """A Datasource spec for `space` on `emu`; `permissions` sets spec.permissions.mode (default: the product's)."""
    cloud = emu.endpoint.endswith("/wiki")
    cfg: dict[str, Any] = {
        "endpoint": emu.endpoint,
        "tokenSecretRef": {"name": "t"},
        "space": space,
        **config,
    }
    if cloud:
        cfg["username"] = CLOUD_EMAIL
    body: dict[str, Any] = {"name": "Test wiki", "connector": {"id": "confluence", "config": cfg}}
    if permissions is not None:
        body["permissions"] = {"mode": permissions}
    return DatasourceSpec.model_validate(body)


def site_page(cid: str) -> dict[str, Any]:
    """A page as a v1 content search renders it, for the small fake sites that serve one quirk each."""
    return {
        "id": cid,
        "type": "page",
        "status": "current",
        "title": f"Page {cid}",
        "space": {"key": "DOCS", "name": "Docs"},
        "version": {"number": 1, "when": "2025-01-01T00:00:00.000Z"},
        "history": {"createdDate": "2025-01-01T00:00:00.000Z"},
        "body": {"storage": {"value": f"<p>hello {cid}</p>"}},
        "_links": {"webui": f"/pages/{cid}"},
    }


def token_for(emu: ConfluenceEmulator) -> str:
    return CLOUD_TOKEN if emu.endpoint.endswith("/wiki") else DC_PAT


def settings_for(meili: MeiliServer, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "meili_url": meili.url,
        "meili_api_key": meili.key,
        "confluence_max_retry_seconds": 20,
        "allow_http": True,  # the emulators speak plain http on loopback
        "allow_private_networks": True,
        "http_timeout_seconds": 5,
    }
    base.update(overrides)
    return Settings(**base)


async def sync(
    emu: ConfluenceEmulator,
    meili: MeiliServer,
    index: str,
    spec: DatasourceSpec,
    *,
    previous: SyncResult | None = None,
    ds_id: str = "ns/wiki",
    **settings: Any,
) -> SyncResult:
    request = SyncRequest(
        datasource_id=ds_id,
        spec=spec,
        token=token_for(emu),
        index=index,
        watermark=previous.watermark if previous and previous.succeeded else None,
        listing=previous.listing if previous and previous.succeeded else Listing(),
    )
    return await run_sync(request, settings_for(meili, **settings))
