"""The demo site, the standalone process and per-route search totals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest

from .confluence import ConfluenceEmulator, ConfluenceState, seed_demo
from .confluence_support import (
    REPO_ROOT,
    cloud,
    dc,
    follow,
    ids_of,
    search,
    site,
    titles,
)

__all__ = ["cloud", "dc", "site"]  # fixtures used by name

# -- demo and standalone -----------------------------------------------------------------------------------


def test_seed_demo(cloud: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, _ = cloud
    info = seed_demo(state)
    with httpx.Client(auth=(info["cloud"]["email"], info["cloud"]["token"])) as client:
        pages = follow(client, emu.endpoint + "/rest/api/content", {"spaceKey": "DOCS", "expand": "ancestors"})
        assert len(ids_of(pages)) >= 12
        blogs = client.get(emu.endpoint + "/rest/api/content", params={"spaceKey": "DOCS", "type": "blogpost"})
        assert blogs.json()["size"] == 3
        atts = titles(search(client, emu, 'type = attachment and space = "DOCS"'))
        assert sorted(atts) == ["architecture-notes.txt", "setup-checklist.md"]
        spaces = client.get(emu.endpoint + "/rest/api/space").json()
        assert {"DOCS", "OPS"} <= {s["key"] for s in spaces["results"]}
        assert client.get(emu.endpoint + "/rest/api/space/DOCS").json()["name"] == "Engineering Docs"
        bodies = " ".join(
            i["body"]["storage"]["value"]
            for i in search(client, emu, "space = DOCS", expand="body.storage").json()["results"]
        )
        for marker in ('ac:name="code"', 'ac:name="info"', 'ac:name="drawio"', "<table>", "<ri:user", "<h2>"):
            assert marker in bodies
        comments = search(client, emu, "type = comment and space = DOCS", expand="extensions").json()["results"]
        assert sorted(c["extensions"]["location"] for c in comments) == ["footer", "footer", "inline"]


@pytest.mark.parametrize(("edition", "context"), [("cloud", ""), ("dc", "/confluence")])
def test_standalone_process(edition: str, context: str) -> None:
    cmd = [sys.executable, "-m", "tests.emulators.confluence", "--edition", edition, "--port", "0", "--seed", "demo"]
    if context:
        cmd += ["--context-path", context]
    else:
        cmd.append("--gateway")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        prefix = "confluence emulator listening on "
        assert line.startswith(prefix), line
        endpoint = line[len(prefix) :]
        assert endpoint.endswith("/wiki" if edition == "cloud" else context)
        if edition == "cloud":
            auth: dict[str, Any] = {"auth": ("demo@example.com", "demo-token")}
        else:
            auth = {"headers": {"Authorization": "Bearer demo-pat"}}
        response = httpx.get(endpoint + "/rest/api/space/DOCS", timeout=10, **auth)
        assert response.status_code == 200 and response.json()["key"] == "DOCS"
        if edition == "cloud":
            gateway = proc.stdout.readline().strip().removeprefix("api gateway listening on ")
            token_url = proc.stdout.readline().strip().removeprefix("oauth token endpoint ")
            cloud_id = httpx.get(endpoint.removesuffix("/wiki") + "/_edge/tenant_info").json()["cloudId"]
            assert gateway.endswith(f"/ex/confluence/{cloud_id}/wiki") and token_url.endswith("/oauth/token")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_search_total_size_per_route_and_restrictions_route() -> None:
    state = ConfluenceState()
    state.add_pat("pat")
    state.add_space("TS", "Total size")
    ids = [state.add_page("TS", f"p{i}", "<p>x</p>") for i in range(7)]
    with ConfluenceEmulator(state, edition="dc") as emu, httpx.Client(headers={"Authorization": "Bearer pat"}) as c:
        body = c.get(f"{emu.endpoint}/rest/api/content/search", params={"cql": 'space = "TS"', "limit": 2}).json()
        assert body["totalSize"] == 7 and body["size"] == 2 and body["cqlQuery"] == 'space = "TS"'
        r = c.get(f"{emu.endpoint}/rest/api/content/{ids[0]}/restriction/byOperation").json()
        assert r["read"]["restrictions"]["user"]["results"] == []
    state.add_cloud_token("a@example.com", "tok")
    state.trash(ids[0])
    with ConfluenceEmulator(state, edition="cloud") as emu, httpx.Client(auth=("a@example.com", "tok")) as c:
        # Cloud's content search answers a ContentArray, which does not count; the generic search does.
        body = c.get(f"{emu.endpoint}/rest/api/content/search", params={"cql": 'space = "TS"', "limit": 2}).json()
        assert "totalSize" not in body and body["size"] == 2
        hits = c.get(f"{emu.endpoint}/rest/api/search", params={"cql": 'space = "TS"', "limit": 1}).json()
        assert hits["totalSize"] == 6 and hits["size"] == 1 and hits["cqlQuery"] == 'space = "TS"'
        assert hits["results"][0]["content"]["id"] == ids[1] and hits["results"][0]["entityType"] == "content"
        nxt = c.get(f"{emu.endpoint}{hits['_links']['next']}").json()
        assert nxt["results"][0]["content"]["id"] == ids[2]
