"""Fixtures and helpers shared by the Confluence emulator tests (imported explicitly by each test module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .confluence import ConfluenceEmulator, ConfluenceState, User

Site = tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]
CLOUD_EMAIL, CLOUD_TOKEN = "me@example.com", "s3cret-token"
DC_PAT = "dc-pat-123"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cloud() -> Iterator[tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]]:
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    with (
        ConfluenceEmulator(state, edition="cloud") as emu,
        httpx.Client(auth=(CLOUD_EMAIL, CLOUD_TOKEN), timeout=10) as client,
    ):
        yield emu, state, client


@pytest.fixture
def dc() -> Iterator[tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]]:
    state = ConfluenceState()
    state.add_pat(DC_PAT)
    with (
        ConfluenceEmulator(state, edition="dc", context_path="/confluence") as emu,
        httpx.Client(headers={"Authorization": f"Bearer {DC_PAT}"}, timeout=10) as client,
    ):
        yield emu, state, client


@pytest.fixture(params=["cloud", "dc"])
def site(
    request: pytest.FixtureRequest,
) -> tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]:
    fixture: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client] = request.getfixturevalue(request.param)
    return fixture


def follow(client: httpx.Client, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Follow `_links.next` (joined to `_links.base`) to the end; return every page body."""
    bodies: list[dict[str, Any]] = []
    response = client.get(url, params=params)
    for _ in range(200):
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        nxt = body["_links"].get("next")
        if not nxt:
            return bodies
        response = client.get(body["_links"]["base"] + nxt)
    raise AssertionError("pagination did not end")


def ids_of(bodies: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for body in bodies for item in body["results"]]


def make_space(state: ConfluenceState, key: str, n: int) -> list[str]:
    state.add_space(key, f"Space {key}")
    return [state.add_page(key, f"{key} page {i}", f"<p>body {i}</p>") for i in range(n)]


def search(client: httpx.Client, emu: ConfluenceEmulator, cql: str, **params: Any) -> httpx.Response:
    return client.get(emu.endpoint + "/rest/api/content/search", params={"cql": cql, "limit": 100, **params})


def titles(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["results"]]


SCOPED_EMAIL, SCOPED_TOKEN = "svc@example.com", "scoped-token-123"


@pytest.fixture
def gateway() -> Iterator[tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]]:
    """A Cloud site with the API gateway and auth listeners; the client sends a scoped token (all scopes)."""
    state = ConfluenceState()
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    state.add_scoped_token(SCOPED_EMAIL, SCOPED_TOKEN)
    with (
        ConfluenceEmulator(state, edition="cloud", gateway=True) as emu,
        httpx.Client(auth=(SCOPED_EMAIL, SCOPED_TOKEN), timeout=10) as client,
    ):
        yield emu, state, client


def v2_follow(client: httpx.Client, base: str, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Follow a v2 listing by its Link header (and check `_links.next` says the same); ``base`` is the host the
    relative links are resolved against (the site root, or the gateway plus /ex/confluence/{cloudId})."""
    bodies: list[dict[str, Any]] = []
    response = client.get(base + path, params=params)
    for _ in range(200):
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        link = response.headers.get("Link")
        nxt = body["_links"].get("next")
        if link is None:
            assert nxt is None
            return bodies
        assert link == f'<{nxt}>; rel="next"'
        response = client.get(base + nxt)
    raise AssertionError("pagination did not end")


def caller(emu: ConfluenceEmulator, state: ConfluenceState) -> User:
    """The user the ``cloud``/``dc`` fixture's client authenticates as."""
    user = state.user_by_email(CLOUD_EMAIL) if emu.cloud else state.user_by_username("admin")
    assert user is not None
    return user
