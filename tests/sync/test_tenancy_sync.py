"""Index ownership, embedder profiles, the deletion cap and moved indexes, through the one run path
(`host.run_datasource`) over real HTTP to the Confluence and Meilisearch emulators (or a real Meilisearch)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from meilisearch.errors import MeilisearchApiError

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.dispatcher.host import Finished, Target, run_datasource
from coco_operator.dispatcher.jobenv import EnvSecrets
from coco_operator.dispatcher.writers import MemoryStatusWriter
from coco_operator.settings import Settings
from coco_operator.sync import Progress, SyncRequest, run_sync
from tests.emulators.confluence import ConfluenceEmulator
from tests.sync.conftest import MeiliServer, make_spec, settings_for, token_for

NS = "sync"  # owns every index named sync_<suffix>, as the `index` fixture names them


def _sync(request: SyncRequest, settings: Settings, progress: Progress) -> Any:
    return run_sync(request, settings, progress=progress)


@pytest.fixture
def other_index(meili_server: MeiliServer) -> Iterator[str]:
    uid = f"sync_{secrets.token_hex(5)}"
    yield uid
    with contextlib.suppress(Exception):
        meili_server.client().delete_index(uid)


def _fill(emu: ConfluenceEmulator, space: str = "TEN", pages: int = 5) -> list[str]:
    emu.state.add_space(space, "Tenancy")
    return [emu.state.add_page(space, f"Page {i}", f"<p>Page number {i}.</p>") for i in range(pages)]


def _spec(emu: ConfluenceEmulator, space: str = "TEN", **fields: Any) -> DatasourceSpec:
    raw = make_spec(emu, space).model_dump(mode="json", exclude_none=True)
    return DatasourceSpec.model_validate({**raw, **fields})


async def _run(
    emu: ConfluenceEmulator,
    settings: Settings,
    spec: DatasourceSpec,
    *,
    key: str = f"{NS}/wiki",
    writer: MemoryStatusWriter | None = None,
) -> tuple[Finished, MemoryStatusWriter]:
    writer = writer or MemoryStatusWriter()
    target = Target(key=key, spec=spec, index=spec.index or settings.meili_index)
    finished = await run_datasource(
        target, secrets=EnvSecrets({}, token=token_for(emu)), writer=writer, settings=settings, sync=_sync
    )
    return finished, writer


def _settings(meili: MeiliServer, index: str, **overrides: Any) -> Settings:
    return settings_for(meili, meili_index=index, **overrides)


def _embedders(meili: MeiliServer, index: str) -> dict[str, Any]:
    return dict(meili.client().http.get(f"indexes/{index}/settings/embedders") or {})


# --- index ownership ---------------------------------------------------------------------------------------------


async def test_a_foreign_index_is_refused_before_anything_is_read_or_written(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str, other_index: str
) -> None:
    """Namespace `team` names the index of namespace `sync`: refused with the rule and the fix; Confluence is never
    asked, the index is never created or reconfigured."""
    _fill(cloud)
    asked = len(cloud.state.requests)
    spec = _spec(cloud, index=other_index, embedders=["rest"])
    profiles = {"rest": {"source": "rest", "url": "http://169.254.169.254/x", "request": {}, "response": {}}}
    settings = _settings(meili_server, index, embedder_profiles=profiles)
    finished, writer = await _run(cloud, settings, spec, key="team/wiki")
    error = finished.result.error
    assert error is not None and error.reason == "IndexNotAllowed"
    assert f"may not write into index {other_index!r}" in error.message and "team_<suffix>" in error.message
    assert "indexGrants" in error.message and finished.result.requests == 0
    assert len(cloud.state.requests) == asked
    with pytest.raises(MeilisearchApiError) as missing:
        meili_server.client().get_index(other_index)
    assert missing.value.code == "index_not_found"
    assert writer.current.conditions[0].reason == "IndexNotAllowed"
    assert writer.current.lastError and "team_<suffix>" in writer.current.lastError


async def test_a_granted_index_and_a_shared_index_take_documents(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str, other_index: str
) -> None:
    _fill(cloud)
    granted = _settings(meili_server, index, index_grants={"team": [f"{other_index[:8]}*"]})
    finished, _ = await _run(cloud, granted, _spec(cloud, index=other_index), key="team/wiki")
    assert finished.result.succeeded, finished.result.error
    assert len(meili_server.docs(other_index, "team/wiki")) == 5
    shared = _settings(meili_server, index)  # the default index is shared: any namespace may write into it
    finished, _ = await _run(cloud, shared, _spec(cloud), key="elsewhere/wiki")
    assert finished.result.succeeded and len(meili_server.docs(index, "elsewhere/wiki")) == 5


# --- embedder profiles --------------------------------------------------------------------------------------------


async def test_an_embedder_profile_reaches_an_owned_index_and_documents_still_index(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str, other_index: str
) -> None:
    _fill(cloud)
    settings = _settings(meili_server, index, embedder_profiles={"manual": {"source": "userProvided", "dimensions": 3}})
    finished, _ = await _run(cloud, settings, _spec(cloud, index=other_index, embedders=["manual"]))
    assert finished.result.succeeded, finished.result.error
    embedders = _embedders(meili_server, other_index)
    assert embedders["manual"]["source"] == "userProvided" and embedders["manual"]["dimensions"] == 3
    # A real Meilisearch 1.50 fails every document without `_vectors.manual`: the sink opts them out instead.
    assert len(meili_server.docs(other_index, f"{NS}/wiki")) == 5


@pytest.mark.parametrize(
    ("embedders", "shared", "reason", "says"),
    [
        (["manual"], True, "EmbeddersNotAllowed", "shared and granted indexes get their settings from the operator"),
        (["nope"], False, "EmbedderProfileNotFound", "profiles: manual"),
    ],
)
async def test_embedders_on_a_shared_index_or_an_unknown_profile_are_refused(
    cloud: ConfluenceEmulator,
    meili_server: MeiliServer,
    index: str,
    other_index: str,
    embedders: list[str],
    shared: bool,
    reason: str,
    says: str,
) -> None:
    _fill(cloud)
    settings = _settings(meili_server, index, embedder_profiles={"manual": {"source": "userProvided", "dimensions": 3}})
    spec = _spec(cloud, embedders=embedders) if shared else _spec(cloud, index=other_index, embedders=embedders)
    # Namespace team: the default index is shared with it, not its own.
    finished, _ = await _run(cloud, settings, spec, key="team/wiki" if shared else f"{NS}/wiki")
    error = finished.result.error
    assert error is not None and error.reason == reason and says in error.message
    for uid in (index, other_index):
        with contextlib.suppress(Exception):
            assert "manual" not in _embedders(meili_server, uid)


# --- never delete what may still exist ----------------------------------------------------------------------------


async def test_deleting_more_than_the_cap_deletes_nothing_until_allowed(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(cloud, pages=25)
    settings = _settings(meili_server, index, max_deletions_fraction=0.1, max_deletions_min=5)
    writer = MemoryStatusWriter()
    first, _ = await _run(cloud, settings, _spec(cloud), writer=writer)
    assert first.result.succeeded and len(meili_server.docs(index, f"{NS}/wiki")) == 25
    for cid in ids[:15]:
        cloud.state.purge(cid)
    refused, _ = await _run(cloud, settings, _spec(cloud), writer=writer)
    error = refused.result.error
    assert error is not None and error.reason == "MassDeletionRefused"
    assert "would delete 15 of the 25 documents" in error.message and "cap of 5 per run" in error.message
    assert "allowMassDeletion" in error.message and "kubectl -n sync patch datasource wiki" in error.message
    assert len(meili_server.docs(index, f"{NS}/wiki")) == 25  # nothing deleted
    allowed, _ = await _run(cloud, settings, _spec(cloud, sync={"allowMassDeletion": True}), writer=writer)
    assert allowed.result.succeeded and allowed.result.counts.deleted == 15
    assert len(meili_server.docs(index, f"{NS}/wiki")) == 10


async def test_an_empty_listing_deletes_nothing_even_under_the_cap(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    ids = _fill(cloud, pages=3)
    settings = _settings(meili_server, index)  # cap: at least 50, far above 3
    writer = MemoryStatusWriter()
    assert (await _run(cloud, settings, _spec(cloud), writer=writer))[0].result.succeeded
    for cid in ids:
        cloud.state.trash(cid)
    refused, _ = await _run(cloud, settings, _spec(cloud), writer=writer)
    error = refused.result.error
    assert error is not None and error.reason == "MassDeletionRefused"
    assert "Confluence listed no items in scope, while the index holds 3 documents" in error.message
    assert len(meili_server.docs(index, f"{NS}/wiki")) == 3


# --- a moved index ------------------------------------------------------------------------------------------------


async def test_documents_leave_the_index_the_datasource_moved_away_from(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str, other_index: str
) -> None:
    _fill(cloud)
    settings = _settings(meili_server, index)
    writer = MemoryStatusWriter()
    first, _ = await _run(cloud, settings, _spec(cloud), writer=writer)
    assert first.result.succeeded and writer.current.index == index
    # Another Datasource's documents in the old index stay.
    other, _ = await _run(cloud, settings, _spec(cloud), key=f"{NS}/other")
    assert other.result.succeeded
    moved, _ = await _run(cloud, settings, _spec(cloud, index=other_index), writer=writer)
    assert moved.result.succeeded, moved.result.error
    assert writer.current.index == other_index
    assert meili_server.docs(index, f"{NS}/wiki") == [] and len(meili_server.docs(other_index, f"{NS}/wiki")) == 5
    assert len(meili_server.docs(index, f"{NS}/other")) == 5


async def test_documents_a_webhook_drops_count_against_the_cap(
    cloud: ConfluenceEmulator, meili_server: MeiliServer, index: str
) -> None:
    """A webhook (a tenant's service, or a broken one) that answers no documents would remove every document it was
    sent: the same cap applies."""
    from tests.hostile.server import HostileServer, json_answer

    _fill(cloud, pages=25)
    settings = _settings(meili_server, index, max_deletions_fraction=0.1, max_deletions_min=5)
    writer = MemoryStatusWriter()
    assert (await _run(cloud, settings, _spec(cloud), writer=writer))[0].result.succeeded
    hook = HostileServer().start()
    try:
        hook.route("/enrich", json_answer({"documents": []}))
        webhook = {"type": "webhook", "webhook": {"url": f"{hook.url}/enrich"}}
        refused, _ = await _run(cloud, settings, _spec(cloud, enrichment=[webhook]), writer=writer)
        assert len(hook.hits) >= 1
    finally:
        hook.stop()
    error = refused.result.error
    assert error is not None and error.reason == "MassDeletionRefused", error
    assert "would delete 25 of the 25 documents" in error.message and "enrichment now leaves it out" in error.message
    assert len(meili_server.docs(index, f"{NS}/wiki")) == 25
