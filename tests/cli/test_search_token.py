"""`coco-operator search-token`: a tenant token for one person, through the real CLI process and real HTTP (the
Confluence emulator; Meilisearch, or a real one with MEILI_URL and MEILI_MASTER_KEY)."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import meilisearch
import pytest

from coco_operator.search.signing import KEY_NAME
from tests.cli.test_sync_command import _datasource_file, _run, meili_target
from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState

pytestmark = pytest.mark.meili
__all__ = ["meili_target"]


@pytest.fixture
def site() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState()
    bot = state.add_cloud_token("demo@example.com", "demo-token")
    state.add_member("hr", bot)
    state.add_space("DOCS", "Docs")
    state.add_page("DOCS", "Holiday policy", "<p>open to all</p>")
    salaries = state.add_page("DOCS", "Salary bands", "<p>hr only</p>")
    state.set_restrictions(salaries, read_groups=["hr"])
    with ConfluenceEmulator(state, edition="cloud") as emu:
        yield emu


@pytest.fixture
def clean_keys(meili_target: tuple[str, str]) -> Iterator[None]:
    """The key the command creates stays in Meilisearch by design; a test removes what it made."""
    url, key = meili_target
    client = meilisearch.Client(url, key)
    before = {k.uid for k in client.get_keys({"limit": 1000}).results}
    yield
    for made in client.get_keys({"limit": 1000}).results:
        if made.uid not in before:
            with contextlib.suppress(Exception):
                client.delete_key(made.uid)


def _titles(url: str, index: str, token: str, **query: object) -> set[str]:
    hits = meilisearch.Client(url, token).index(index).search("", {"limit": 100, **query})["hits"]
    return {h["title"] for h in hits}


@pytest.mark.usefixtures("clean_keys")
def test_a_token_finds_what_its_person_may_read(
    tmp_path: Path, site: ConfluenceEmulator, meili_target: tuple[str, str]
) -> None:
    url, key = meili_target
    index = f"cli_tok_{secrets.token_hex(4)}"
    token_file = tmp_path / "token"
    token_file.write_text("demo-token\n")
    path = _datasource_file(tmp_path, site.endpoint)
    synced = _run("sync", str(path), "--token-file", str(token_file), "--meili-url", url, "--meili-key", key,
                  "--index", index, "--json", "-q", env={})  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["counts"]["restricted"] == 1
    state = site.state
    bob = state.add_user("Bob", "bob@example.com")
    hana = state.add_user("Hana", "hana@example.com", groups=["hr"])
    env = {"COCO_MEILI_URL": url, "COCO_MEILI_API_KEY": key}
    everyone = state.groups["confluence-users"].id

    first = _run("search-token", "--user", bob.account_id, "--group", everyone, "--index", index, "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert "created the search-only key" in first.stderr
    minted = json.loads(first.stdout)
    claims = jwt.decode(minted["token"], options={"verify_signature": False})
    assert claims["apiKeyUid"] == minted["apiKeyUid"] and claims["searchRules"] == {index: {"filter": minted["filter"]}}
    assert 3500 <= claims["exp"] - time.time() <= 3600  # --expires defaults to 1h
    assert _titles(url, index, minted["token"]) == {"Holiday policy"}
    assert _titles(url, index, minted["token"], filter="permissions.public = false OR type EXISTS") <= {
        "Holiday policy"
    }

    # Groups from Confluence instead of the caller: one request for the user's memberships.
    resolved = _run(
        "search-token", "--user", hana.account_id, "--index", index, "--resolve-groups", "--endpoint", site.endpoint,
        "--username", "demo@example.com", "--token-file", str(token_file), "--expires", "10m", "--json", env=env,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    assert "created" not in resolved.stderr  # the key made the first time is used again
    body = json.loads(resolved.stdout)
    assert set(body["groups"]) == {state.groups["hr"].id, everyone}
    assert _titles(url, index, body["token"]) == {"Holiday policy", "Salary bands"}
    assert len([k for k in meilisearch.Client(url, key).get_keys({"limit": 1000}).results if k.name == KEY_NAME]) == 1


def test_the_signing_key_must_be_search_only(meili_target: tuple[str, str]) -> None:
    url, key = meili_target
    client = meilisearch.Client(url, key)
    args = ("search-token", "--user", "u1", "--index", "docs")
    own = _run(*args, env={"COCO_MEILI_URL": url, "COCO_MEILI_API_KEY": key, "COCO_MEILI_SEARCH_KEY": key})
    assert own.returncode == 1 and "the operator's own Meilisearch key" in own.stderr
    wide = client.create_key({"actions": ["search", "documents.add"], "indexes": ["*"], "expiresAt": None})
    narrow = client.create_key({"actions": ["search"], "indexes": ["docs"], "expiresAt": None})
    try:
        refused = _run(*args, env={"COCO_MEILI_URL": url, "COCO_MEILI_API_KEY": key, "COCO_MEILI_SEARCH_KEY": wide.key})
        assert refused.returncode == 1 and "not only search" in refused.stderr and wide.key not in refused.stderr
        # With the uid given, no Meilisearch request is needed and no operator key either.
        ok = _run(*args, env={"COCO_MEILI_SEARCH_KEY": narrow.key, "COCO_MEILI_SEARCH_KEY_UID": narrow.uid})
        assert ok.returncode == 0, ok.stderr
        assert jwt.decode(ok.stdout.strip(), narrow.key, algorithms=["HS256"])["apiKeyUid"] == narrow.uid
        looked_up = _run(*args, env={"COCO_MEILI_URL": url, "COCO_MEILI_API_KEY": key,
                                     "COCO_MEILI_SEARCH_KEY": narrow.key})  # fmt: skip
        assert looked_up.returncode == 0, looked_up.stderr
    finally:
        client.delete_key(wide.uid)
        client.delete_key(narrow.uid)
    nothing = _run(*args, env={"COCO_MEILI_URL": url})
    assert nothing.returncode == 1 and "COCO_MEILI_SEARCH_KEY" in nothing.stderr
    bad = _run(*args, "--expires", "soon", env={})
    assert bad.returncode == 2 and "Go syntax" in bad.stderr
