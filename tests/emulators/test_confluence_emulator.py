"""Tests of the Confluence emulator: each checks a behaviour a real connector has to cope with."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .confluence import ConfluenceEmulator, ConfluenceState
from .confluence_support import (
    CLOUD_EMAIL,
    CLOUD_TOKEN,
    cloud,
    dc,
    follow,
    ids_of,
    make_space,
    search,
    site,
    titles,
)

__all__ = ["cloud", "dc", "site"]  # fixtures used by name

# -- auth ----------------------------------------------------------------------------------------------------


def test_cloud_auth(cloud: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = cloud
    url = emu.endpoint + "/rest/api/space"
    assert emu.endpoint.endswith("/wiki")
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, auth=(CLOUD_EMAIL, "nope"))
    assert wrong.status_code == 403
    assert wrong.json()["statusCode"] == 403 and wrong.json()["message"]
    assert httpx.get(url, headers={"Authorization": f"Bearer {CLOUD_TOKEN}"}).status_code == 401
    assert client.get(url).status_code == 200
    # Cloud has no paths outside /wiki.
    assert client.get(emu.base_url + "/rest/api/space").status_code == 404
    assert [r.auth_ok for r in state.requests] == [False, False, False, True, True]
    assert [r.status for r in state.requests][:3] == [401, 403, 401]
    assert state.requests[0].path == "/wiki/rest/api/space"


def test_dc_auth(dc: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = dc
    state.add_password("jdoe", "pw")
    url = emu.endpoint + "/rest/api/space"
    assert emu.endpoint == emu.base_url + "/confluence"
    assert client.get(url).status_code == 200
    assert httpx.get(url, auth=("jdoe", "pw")).status_code == 200
    for bad in (
        httpx.get(url),
        httpx.get(url, auth=("jdoe", "wrong")),
        httpx.get(url, headers={"Authorization": "Bearer other"}),
    ):
        assert bad.status_code == 401
        assert bad.json()["statusCode"] == 401
    assert client.get(emu.endpoint + "/rest/api/space/NOPE").json()["statusCode"] == 404


# -- pagination and caps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/rest/api/content", "/rest/api/content/search"])
def test_body_expansion_cap_pagination_collects_every_id_once(
    site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client], path: str
) -> None:
    emu, state, client = site
    expected = make_space(state, "BIG", 120)
    make_space(state, "OTHER", 3)
    params = {"expand": "body.storage,version", "limit": 200}
    if path.endswith("search"):
        params["cql"] = 'space = "BIG" and type = page'
    else:
        params["spaceKey"] = "BIG"
    bodies = follow(client, emu.endpoint + path, params)
    assert [b["limit"] for b in bodies] == [50, 50, 50]
    assert [b["size"] for b in bodies] == [50, 50, 20]
    ids = ids_of(bodies)
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    first = bodies[0]
    assert first["_links"]["base"] == emu.endpoint
    assert first["_links"]["context"] == ("/wiki" if emu.edition == "cloud" else "/confluence")
    assert first["_links"]["next"].startswith(path + "?")
    assert first["results"][0]["body"]["storage"]["representation"] == "storage"


def test_dc_caps_depend_on_expansion(dc: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = dc
    make_space(state, "K", 5)
    url = emu.endpoint + "/rest/api/content"
    limits = {
        expand: client.get(url, params={"spaceKey": "K", "limit": 5000, "expand": expand}).json()["limit"]
        for expand in ("", "version", "body.view")
    }
    assert limits == {"": 1000, "version": 200, "body.view": 50}
    state.dc_plain_cap = 2
    bodies = follow(client, url, {"spaceKey": "K", "limit": 100})
    assert [b["limit"] for b in bodies] == [2, 2, 2] and len(ids_of(bodies)) == 5


def test_cloud_caps(cloud: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = cloud
    make_space(state, "K", 1)
    url = emu.endpoint + "/rest/api/content/search"
    # The reference: Cloud caps 1000 without bodies, fewer with them.
    assert client.get(url, params={"cql": "type=page", "limit": 5000}).json()["limit"] == 1000
    assert client.get(url, params={"cql": "type=page", "limit": 1000, "expand": "body"}).json()["limit"] == 50
    state.cloud_body_cap = 7
    assert client.get(url, params={"cql": "type=page", "limit": 1000, "expand": "body.storage"}).json()["limit"] == 7


def test_cloud_cursor_is_opaque_and_validated(cloud: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = cloud
    expected = make_space(state, "C", 30)
    url = emu.endpoint + "/rest/api/content/search"
    first = client.get(url, params={"cql": "space = C", "limit": 10}).json()
    query = parse_qs(urlsplit(first["_links"]["next"]).query)
    assert "start" not in query
    (cursor,) = query["cursor"]
    assert not cursor.isdigit() and "10" not in cursor
    bodies = follow(client, url, {"cql": "space = C", "limit": 10})
    assert ids_of(bodies) == expected
    assert [b["start"] for b in bodies] == [0, 10, 20]

    whole_url = first["_links"]["base"] + first["_links"]["next"]
    assert client.get(url, params={"cql": "space = C", "limit": 10, "cursor": whole_url}).status_code == 400
    assert client.get(url, params={"cql": "space = C", "limit": 10, "cursor": "garbage"}).status_code == 400
    # A cursor belongs to its query.
    assert client.get(url, params={"cql": "space = D", "limit": 10, "cursor": cursor}).status_code == 400
    assert client.get(url, params={"cql": "space = C", "start": 100_001}).status_code == 400
    assert ids_of([client.get(url, params={"cql": "space = C", "start": 25}).json()]) == expected[25:]

    # Growing the limit mid-cursor skips results, as on the real service.
    skipped = client.get(url, params={"cql": "space = C", "limit": 20, "cursor": cursor}).json()
    assert ids_of([skipped]) == expected[20:30]
    state.cloud_cursor_strict_limit = True
    assert client.get(url, params={"cql": "space = C", "limit": 20, "cursor": cursor}).status_code == 400


def test_dc_miscounted_start_overlaps(dc: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = dc
    expected = make_space(state, "M", 25)
    state.dc_miscount_start = True
    bodies = follow(client, emu.endpoint + "/rest/api/content/search", {"cql": "space=M", "limit": 10})
    ids = ids_of(bodies)
    assert set(ids) == set(expected)
    assert len(ids) > len(set(ids))
    assert bodies[1]["start"] < bodies[0]["start"] + bodies[0]["size"]


def test_empty_page_with_next(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    expected = make_space(state, "E", 12)
    state.empty_page_with_next = True
    bodies = follow(client, emu.endpoint + "/rest/api/content/search", {"cql": "space = E", "limit": 5})
    assert [b["size"] for b in bodies] == [5, 5, 2, 0, 0]
    assert "next" in bodies[2]["_links"] and "next" in bodies[3]["_links"] and "next" not in bodies[4]["_links"]
    assert ids_of(bodies) == expected


def test_child_listings(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    state.add_space("T", "Tree")
    root = state.add_page("T", "Root", "<p/>")
    kids = [state.add_page("T", f"Kid {i}", "<p/>", parent_id=root) for i in range(3)]
    state.add_page("T", "Grandkid", "<p/>", parent_id=kids[0])
    body = client.get(f"{emu.endpoint}/rest/api/content/{root}/child/page", params={"limit": 2}).json()
    assert body["size"] == 2 and "next" in body["_links"]
    assert ids_of(follow(client, f"{emu.endpoint}/rest/api/content/{root}/child/page")) == kids


# -- CQL -----------------------------------------------------------------------------------------------------


def test_cql_parsing(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    state.add_space("A", "Alpha")
    state.add_space("B", "Beta")
    state.add_space("~jdoe", "Personal")
    a1 = state.add_page("A", "Install guide", "<p/>", labels=["howto"])
    state.add_page("A", "Release notes", "<p/>", parent_id=a1, labels=["news", "howto"])
    state.add_blogpost("A", "Weekly news", "<p/>", labels=["news"])
    state.add_page("B", "Install FAQ", "<p/>")
    state.add_page("~jdoe", 'Say "hi"', "<p/>")

    assert titles(search(client, emu, 'space = "A" AND type = page')) == ["Install guide", "Release notes"]
    assert titles(search(client, emu, "space in (A, B) and title ~ install")) == ["Install guide", "Install FAQ"]
    assert titles(search(client, emu, 'space = A and (label = news OR type = "blogpost")')) == [
        "Release notes",
        "Weekly news",
    ]
    assert titles(search(client, emu, "space = A and not type = page")) == ["Weekly news"]
    assert titles(search(client, emu, "space not in (A, B)")) == ['Say "hi"']
    assert titles(search(client, emu, 'space = "~jdoe" and title = "Say \\"hi\\""')) == ['Say "hi"']
    assert titles(search(client, emu, f"ancestor = {a1} or parent = {a1}")) == ["Release notes"]
    assert titles(search(client, emu, "space = A and label != howto")) == ["Weekly news"]
    assert titles(search(client, emu, "space = A order by title desc")) == [
        "Weekly news",
        "Release notes",
        "Install guide",
    ]
    # An escaped quote stays inside the value: nothing can be injected into the query.
    injected = 'space = "A\\" OR space = \\"B"'
    assert titles(search(client, emu, injected)) == []
    assert titles(search(client, emu, 'space = "A" OR space = "B"')) != []

    # `id` clauses narrow the candidates; the answers are those of the full scan.
    pages = {c.title: c.id for c in state.contents.values()}
    install, notes, faq = pages["Install guide"], pages["Release notes"], pages["Install FAQ"]
    assert titles(search(client, emu, f"id in ({install}, {faq}) and space = A")) == ["Install guide"]
    assert titles(search(client, emu, f"id = {install} or id = {notes}")) == ["Install guide", "Release notes"]
    assert titles(search(client, emu, f"id = {install} or title ~ FAQ")) == ["Install guide", "Install FAQ"]
    assert titles(search(client, emu, f"space = A and not id = {install}")) == ["Release notes", "Weekly news"]
    assert titles(search(client, emu, "id in (1, att2, x)")) == []

    for bad in ('space = "A', "space = ", "space == A", "nosuchfield = 1", "(space = A", "space = A order title"):
        response = search(client, emu, bad)
        assert response.status_code == 400, bad
        assert response.json()["message"].startswith("Could not parse cql")


def test_lastmodified_is_minute_granular_in_site_time_zone() -> None:
    state = ConfluenceState(timezone="Europe/Berlin")
    state.add_cloud_token(CLOUD_EMAIL, CLOUD_TOKEN)
    state.add_space("Z", "Zones")
    # 09:05:42 UTC is 10:05:42 in Berlin (CET, winter).
    state.set_now(datetime(2024, 1, 15, 9, 5, 42, tzinfo=UTC))
    state.add_page("Z", "Edited", "<p/>")
    state.set_now(datetime(2024, 1, 15, 12, 0, tzinfo=UTC))
    with ConfluenceEmulator(state) as emu, httpx.Client(auth=(CLOUD_EMAIL, CLOUD_TOKEN)) as client:

        def hit(cql: str) -> bool:
            return titles(search(client, emu, cql)) == ["Edited"]

        assert hit('lastmodified >= "2024-01-15 10:05"')
        assert hit('lastmodified < "2024-01-15 10:06"')
        assert hit('lastmodified = "2024-01-15 10:05"')
        assert not hit('lastmodified > "2024-01-15 10:05"')
        assert not hit('lastmodified >= "2024-01-15 10:06"')
        # Read as UTC, 09:06 would be after the edit; in the site zone it is an hour before.
        assert not hit('lastmodified < "2024-01-15 09:06"')
        assert hit('lastmodified >= "2024/01/15" and created <= "2024-01-15"')
        assert hit('lastmodified > now("-3h")') and not hit('lastmodified > now("-2h")')
        found = search(client, emu, "type = page", expand="version").json()["results"]
        when = datetime.fromisoformat(found[0]["version"]["when"])
        assert when == datetime(2024, 1, 15, 9, 5, 42, tzinfo=UTC)


# -- statuses ------------------------------------------------------------------------------------------------


def test_trashed_and_archived_visibility(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    live, archived, trashed, purged = make_space(state, "S", 4)
    state.archive(archived)
    state.trash(trashed)
    state.purge(purged)
    url = emu.endpoint + "/rest/api/content"

    def listed(**params: str) -> list[str]:
        return ids_of([client.get(url, params={"spaceKey": "S", **params}).json()])

    assert listed() == [live]
    assert listed(status="archived") == [archived]
    assert listed(status="trashed") == [trashed]
    assert listed(status="current,trashed") == [live, trashed]
    assert listed(status="any") == [live, archived, trashed]
    assert client.get(url, params={"status": "bogus"}).status_code == 400
    # Search finds archived content by default, never trash.
    assert ids_of([search(client, emu, "space = S").json()]) == [live, archived]

    assert client.get(f"{url}/{trashed}").status_code == 404
    assert client.get(f"{url}/{trashed}", params={"status": "trashed"}).json()["status"] == "trashed"
    assert client.get(f"{url}/{trashed}", params={"status": "any"}).status_code == 200
    assert client.get(f"{url}/{archived}").json()["status"] == "archived"
    assert client.get(f"{url}/{purged}", params={"status": "any"}).status_code == 404


def test_update_and_move_bump_version(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    (page,) = make_space(state, "V", 1)
    state.add_space("W", "Other")
    editor = state.add_user("Eddie Editor")
    state.set_now(datetime(2030, 5, 1, 8, 0, tzinfo=UTC))
    state.update_page(page, title="Renamed", labels=["Fresh"], editor=editor)
    state.move_page(page, "W")
    item = client.get(
        f"{emu.endpoint}/rest/api/content/{page}", params={"expand": "version,space,metadata.labels"}
    ).json()
    assert (item["title"], item["version"]["number"], item["space"]["key"]) == ("Renamed", 3, "W")
    assert item["version"]["by"]["displayName"] == "Eddie Editor"
    assert [label["name"] for label in item["metadata"]["labels"]["results"]] == ["fresh"]
    assert datetime.fromisoformat(item["version"]["when"]) == datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


# -- item shape ----------------------------------------------------------------------------------------------


def test_item_shape_per_edition(site: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = site
    state.add_space("DOCS", "Docs")
    root = state.add_page("DOCS", "Root", "<p>root</p>")
    child = state.add_page("DOCS", "Child Page", "<p>child</p>", parent_id=root, labels=["a"])
    url = f"{emu.endpoint}/rest/api/content/{child}"
    bare = client.get(url).json()
    assert {"body", "ancestors", "version", "space", "history"} <= set(bare["_expandable"])
    assert "body" not in bare and "version" not in bare
    full = client.get(url, params={"expand": "body.storage,ancestors,history.lastUpdated,version,space"}).json()
    assert full["id"] == child and isinstance(full["id"], str)
    assert full["body"]["storage"] == {
        "value": "<p>child</p>",
        "representation": "storage",
        "_expandable": {"content": f"/rest/api/content/{child}"},
    }
    assert [a["id"] for a in full["ancestors"]] == [root]
    assert full["history"]["lastUpdated"]["number"] == 1 and full["history"]["createdBy"]["type"] == "known"
    assert full["space"] == {**full["space"], "key": "DOCS", "name": "Docs", "type": "global"}
    assert full["_links"]["self"] == url
    user = full["version"]["by"]
    if emu.edition == "cloud":
        assert full["_links"]["webui"] == f"/spaces/DOCS/pages/{child}/Child+Page"
        assert "accountId" in user and "username" not in user and "email" not in user
        assert full["version"]["when"].endswith("Z")
    else:
        assert full["_links"]["webui"] == f"/pages/viewpage.action?pageId={child}"
        assert {"username", "userKey"} <= set(user) and "accountId" not in user
    assert full["_links"]["tinyui"].startswith("/x/")


# -- attachments ---------------------------------------------------------------------------------------------


def test_cloud_attachment_download_redirect(cloud: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = cloud
    (page,) = make_space(state, "AT", 1)
    att = state.add_attachment(page, "notes v1.txt", b"hello attachment", "text/plain", comment="c")
    other = state.add_attachment(page, "other.md", b"# other", "text/markdown")
    listing = client.get(
        f"{emu.endpoint}/rest/api/content/{page}/child/attachment", params={"expand": "container"}
    ).json()
    item = listing["results"][0]
    assert item["id"] == att and item["type"] == "attachment" and item["title"] == "notes v1.txt"
    assert item["extensions"] == {"mediaType": "text/plain", "fileSize": 16, "comment": "c"}
    assert item["metadata"]["mediaType"] == "text/plain"
    assert item["container"]["id"] == page

    # The legacy servlet path, which _links.download still names on Cloud, refuses API tokens.
    legacy = client.get(listing["_links"]["base"] + item["_links"]["download"])
    assert legacy.status_code == 401

    rest = f"{emu.endpoint}/rest/api/content/{page}/child/attachment/{att}/download"
    redirect = client.get(rest)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(emu.base_url + "/media/") and location.endswith("/" + att)
    # The media host needs no Confluence credentials, only its token.
    media = httpx.get(location)
    assert media.status_code == 200 and media.content == b"hello attachment"
    assert media.headers["content-type"].startswith("text/plain")
    assert httpx.get(location.replace(att, other)).status_code == 401
    assert httpx.get(f"{emu.base_url}/media/forged/{att}").status_code == 401
    state.rate_limit_next = 1
    assert httpx.get(location).status_code == 200 and state.rate_limit_next == 1
    state.rate_limit_next = 0

    followed = httpx.get(rest, auth=(CLOUD_EMAIL, CLOUD_TOKEN), follow_redirects=True)
    assert followed.content == b"hello attachment"
    assert client.get(f"{emu.endpoint}/rest/api/content/{page}/child/attachment/att1/download").status_code == 404
    hits = search(client, emu, 'type = attachment and space = "AT"').json()["results"]
    assert [h["id"] for h in hits] == [att, other]


def test_dc_attachment_download_link(dc: tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]) -> None:
    emu, state, client = dc
    (page,) = make_space(state, "AT", 1)
    state.add_attachment(page, "readme.md", b"# readme", "text/markdown")
    state.add_attachment(page, "readme.md", b"# readme v2", "text/markdown")
    body = client.get(f"{emu.endpoint}/rest/api/content/{page}/child/attachment").json()
    (item,) = body["results"]
    link = item["_links"]["download"]
    assert link.startswith(f"/download/attachments/{page}/readme.md?version=2&modificationDate=")
    assert link.endswith("&api=v2")
    got = client.get(body["_links"]["base"] + link)
    assert got.status_code == 200 and got.content == b"# readme v2"
    assert httpx.get(body["_links"]["base"] + link).status_code == 401
    # The REST download endpoint is Cloud only.
    rest = f"{emu.endpoint}/rest/api/content/{page}/child/attachment/{item['id']}/download"
    assert client.get(rest).status_code == 404
