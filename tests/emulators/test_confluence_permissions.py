"""Users, groups, space permissions and content restrictions, enforced for the calling account (issue 15)."""

from __future__ import annotations

import httpx
import pytest

from .confluence import ConfluenceEmulator, ConfluenceState, User, Viewer, can_read, seed_permissions
from .confluence_support import caller, cloud, dc, make_space, search, site, titles

__all__ = ["cloud", "dc", "site"]
Site = tuple[ConfluenceEmulator, ConfluenceState, httpx.Client]


def _client(emu: ConfluenceEmulator, state: ConfluenceState, name: str) -> httpx.Client:
    """A client authenticated as a new user ``name`` (classic token on Cloud, PAT on DC)."""
    if emu.cloud:
        state.add_cloud_token(f"{name}@example.com", f"tok-{name}")
        return httpx.Client(auth=(f"{name}@example.com", f"tok-{name}"), timeout=10)
    state.add_pat(f"pat-{name}", name)
    return httpx.Client(headers={"Authorization": f"Bearer pat-{name}"}, timeout=10)


def _user(emu: ConfluenceEmulator, state: ConfluenceState, name: str) -> User:
    found = state.user_by_email(f"{name}@example.com") if emu.cloud else state.user_by_username(name)
    assert found is not None
    return found


def test_users_and_groups(site: Site) -> None:
    emu, state, client = site
    hr = state.add_user("Helen Rossi", "helen@example.com", groups=["hr"])
    groups = client.get(emu.endpoint + "/rest/api/group").json()["results"]
    by_name = {g["name"]: g for g in groups}
    assert {"confluence-users", "confluence-administrators", "hr"} <= set(by_name)
    if emu.cloud:
        assert by_name["hr"]["id"] == state.groups["hr"].id
        looked_up = client.get(emu.endpoint + "/rest/api/user", params={"accountId": hr.account_id}).json()
        assert looked_up["accountId"] == hr.account_id and "username" not in looked_up
        member_of = client.get(emu.endpoint + "/rest/api/user/memberof", params={"accountId": hr.account_id})
        by_id = client.get(f"{emu.endpoint}/rest/api/group/{state.groups['hr'].id}/membersByGroupId").json()
        assert [u["accountId"] for u in by_id["results"]] == [hr.account_id]
    else:
        assert "id" not in by_name["hr"]
        looked_up = client.get(emu.endpoint + "/rest/api/user", params={"key": hr.user_key}).json()
        assert looked_up["username"] == hr.username and "accountId" not in looked_up
        member_of = client.get(emu.endpoint + "/rest/api/user/memberof", params={"username": hr.username})
        listed = client.get(emu.endpoint + "/rest/api/user/list").json()["results"]
        assert hr.username in {u["username"] for u in listed}
    assert sorted(g["name"] for g in member_of.json()["results"]) == ["confluence-users", "hr"]
    members = client.get(emu.endpoint + "/rest/api/group/hr/member").json()["results"]
    assert [u["displayName"] for u in members] == ["Helen Rossi"]
    for i in range(3):
        state.add_user(f"Temp {i}", f"temp{i}@example.com", groups=["hr"])
    first = client.get(emu.endpoint + "/rest/api/group/hr/member", params={"limit": 2}).json()
    assert first["size"] == 2 and first["_links"]["next"].startswith("/rest/api/group/hr/member?")
    rest = client.get(first["_links"]["base"] + first["_links"]["next"]).json()
    assert rest["start"] == 2 and rest["size"] == 2
    assert client.get(emu.endpoint + "/rest/api/group/nope/member").status_code == 404


def test_space_permissions_decide_what_a_caller_sees(site: Site) -> None:
    emu, state, client = site
    state.add_space("HR", "People team", default_access=False)
    state.revoke("HR", user=state.default_user)  # the space's creator (DC fixture's admin) keeps no grant
    state.grant("HR", group="hr")
    page = state.add_page("HR", "Salaries", "<p/>")
    make_space(state, "ALL", 1)
    with _client(emu, state, "outsider") as outsider:
        assert outsider.get(f"{emu.endpoint}/rest/api/space/HR").status_code == 404
        assert titles(search(outsider, emu, "type = page")) == ["ALL page 0"]
        assert outsider.get(f"{emu.endpoint}/rest/api/content/{page}").status_code == 404
        state.add_member("hr", _user(emu, state, "outsider"))
        assert sorted(titles(search(outsider, emu, "type = page"))) == ["ALL page 0", "Salaries"]
    # The fixture's account is in neither group; a grant to it alone opens the space.
    assert titles(search(client, emu, "type = page")) == ["ALL page 0"]
    state.grant("HR", user=caller(emu, state))
    assert sorted(titles(search(client, emu, "type = page"))) == ["ALL page 0", "Salaries"]


def test_restrictions_are_inherited_and_followed_by_attachments_and_comments(site: Site) -> None:
    emu, state, client = site
    state.add_space("RS", "Restricted")
    boss = state.add_user("Boss", "boss@example.com", groups=["leadership"])
    top = state.add_page("RS", "Strategy", "<p/>")
    child = state.add_page("RS", "Plan", "<p/>", parent_id=top)
    att = state.add_attachment(child, "plan.pdf", b"%PDF", "application/pdf")
    note = state.add_comment(child, "<p>secret note</p>")
    state.add_page("RS", "Lunch menu", "<p/>")
    me = caller(emu, state)
    state.set_restrictions(top, read_groups=["leadership"], read_users=[me])
    with _client(emu, state, "worker") as worker:
        assert titles(search(worker, emu, "space = RS")) == ["Lunch menu"]
        assert titles(search(worker, emu, "space = RS and type in (attachment, comment)")) == []
        assert worker.get(f"{emu.endpoint}/rest/api/content/{child}").status_code == 404
        assert worker.get(f"{emu.endpoint}/rest/api/content/{child}/restriction/byOperation").status_code == 404
    restriction = client.get(f"{emu.endpoint}/rest/api/content/{top}/restriction/byOperation/read").json()
    users = restriction["restrictions"]["user"]["results"]
    groups = restriction["restrictions"]["group"]["results"]
    assert [g["name"] for g in groups] == ["leadership"]
    if emu.cloud:
        assert [u["accountId"] for u in users] == [me.account_id] and "id" in groups[0]
    else:
        assert [u["username"] for u in users] == [me.username]
    expand = "restrictions.read.restrictions.user,restrictions.read.restrictions.group"
    own = client.get(f"{emu.endpoint}/rest/api/content/{child}", params={"expand": expand}).json()
    assert own["restrictions"]["read"]["restrictions"]["group"]["results"] == []
    deep = search(client, emu, f"id = {child}", expand="ancestors.restrictions.read.restrictions.group").json()
    ancestor = deep["results"][0]["ancestors"][0]
    assert [g["name"] for g in ancestor["restrictions"]["read"]["restrictions"]["group"]["results"]] == ["leadership"]
    with _client(emu, state, "bystander") as bystander:
        state.add_member("leadership", _user(emu, state, "bystander"))
        visible = {h["id"] for h in search(bystander, emu, "space = RS").json()["results"]}
        assert {top, child, att, note} <= visible
    viewer = Viewer.of(state, boss)
    with state.lock:
        assert all(can_read(state, viewer, state.get(i)) for i in (top, child, att, note))
    state.clear_restrictions(top)
    with _client(emu, state, "worker2") as worker2:
        assert len(titles(search(worker2, emu, "space = RS and type = page"))) == 3


def test_a_restriction_must_be_met_at_every_level(site: Site) -> None:
    _, state, _ = site
    state.add_space("LV", "Levels")
    a = state.add_user("Ann", "ann@example.com", groups=["eng"])
    b = state.add_user("Ben", "ben@example.com", groups=["eng", "hr"])
    top = state.add_page("LV", "Eng", "<p/>")
    leaf = state.add_page("LV", "Eng HR", "<p/>", parent_id=top)
    state.set_restrictions(top, read_groups=["eng"])
    state.set_restrictions(leaf, read_groups=["hr"])
    with state.lock:
        assert can_read(state, Viewer.of(state, a), state.get(top))
        assert not can_read(state, Viewer.of(state, a), state.get(leaf))
        assert can_read(state, Viewer.of(state, b), state.get(leaf))


def test_anonymous_access(site: Site) -> None:
    emu, state, _ = site
    state.add_space("PUB", "Public")
    state.grant("PUB", anonymous=True)
    open_page = state.add_page("PUB", "Hello", "<p/>")
    hidden = state.add_page("PUB", "Internal", "<p/>")
    state.set_restrictions(hidden, read_groups=["staff"])
    state.add_space("PRIV", "Private", default_access=False)
    state.add_page("PRIV", "Nope", "<p/>")
    url = emu.endpoint + "/rest/api/content/search"
    assert httpx.get(url, params={"cql": "type = page"}).status_code == 401
    state.anonymous_access = True
    anonymous = httpx.get(url, params={"cql": "type = page"})
    assert anonymous.status_code == 200 and titles(anonymous) == ["Hello"]
    assert httpx.get(f"{emu.endpoint}/rest/api/content/{open_page}").status_code == 200
    assert httpx.get(f"{emu.endpoint}/rest/api/content/{hidden}").status_code == 404
    assert any(r.principal == "anonymous" and r.status == 200 for r in state.requests)
    # A grant to anonymous users opens the space to every logged-in user, even with the site switch off.
    state.anonymous_access = False
    state.revoke("PUB", group="confluence-users")
    with _client(emu, state, "nogroups") as member:
        state.remove_member("confluence-users", _user(emu, state, "nogroups"))
        assert titles(search(member, emu, "space = PUB")) == ["Hello"]


def test_cloud_space_permissions_v2_and_v1_expand(cloud: Site) -> None:
    emu, state, client = cloud
    state.add_space("SP", "Space", default_access=False)
    reader = state.add_user("Reader", "reader@example.com")
    state.grant("SP", group="readers")
    state.grant("SP", user=reader)
    state.grant("SP", anonymous=True)
    space_id = state.spaces["SP"].id
    first = client.get(f"{emu.endpoint}/api/v2/spaces/{space_id}/permissions", params={"limit": 2})
    assert "Link" in first.headers
    rest = client.get(emu.base_url + first.json()["_links"]["next"]).json()["results"]
    assignments = first.json()["results"] + rest
    principals = {(a["principal"]["type"], a["principal"]["id"]) for a in assignments}
    assert ("group", state.groups["readers"].id) in principals and ("user", reader.account_id) in principals
    assert all(a["principal"]["type"] in ("user", "group") for a in assignments)  # anonymous has no v2 principal
    assert {"key": "administer", "targetType": "space"} in [a["operation"] for a in assignments]
    v1 = client.get(f"{emu.endpoint}/rest/api/space/SP", params={"expand": "permissions"}).json()["permissions"]
    assert any(p.get("anonymousAccess") for p in v1)
    groups = [p["subjects"]["group"]["results"][0]["name"] for p in v1 if "group" in p.get("subjects", {})]
    assert groups == ["readers"]


def test_dc_space_permissions_rest_and_json_rpc(dc: Site) -> None:
    emu, state, client = dc
    state.add_space("DS", "DC space", default_access=False)
    state.grant("DS", group="devs")
    state.grant("DS", anonymous=True)
    rest = client.get(emu.endpoint + "/rest/api/space/DS/permissions").json()
    assert {"operation": {"operationKey": "read", "targetType": "space"}, "subject": {"type": "group", "name": "devs"},
            "spaceKey": "DS", "spaceId": state.spaces["DS"].id} in rest  # fmt: skip
    assert all(p["subject"]["type"] in ("user", "group") for p in rest)
    anon = client.get(emu.endpoint + "/rest/api/space/DS/permissions/anonymous").json()
    assert anon == [{"operation": {"operationKey": "read", "targetType": "space"}}]
    rpc = {"jsonrpc": "2.0", "method": "getSpacePermissionSets", "id": 7, "params": ["DS"]}
    answer = client.post(emu.endpoint + "/rpc/json-rpc/confluenceservice-v2", json=rpc).json()
    view = next(s for s in answer["result"] if s["type"] == "VIEWSPACE")["spacePermissions"]
    assert {"type": "VIEWSPACE", "userName": None, "groupName": "devs"} in view
    assert {"type": "VIEWSPACE", "userName": None, "groupName": None} in view  # anonymous
    state.grant("DS", group="confluence-users")
    with _client(emu, state, "plain") as plain:
        # CONFSERVER-99908: without admin rights the REST API answers 500, not 403.
        assert plain.get(emu.endpoint + "/rest/api/space/DS/permissions").status_code == 500
        denied = plain.post(emu.endpoint + "/rpc/json-rpc/confluenceservice-v2", json=rpc).json()
        assert "error" in denied
    state.dc_version = (8, 9, 0)
    assert client.get(emu.endpoint + "/rest/api/space/DS/permissions").status_code == 404
    state.dc_remote_api = False
    assert client.post(emu.endpoint + "/rpc/json-rpc/confluenceservice-v2", json=rpc).status_code == 401


def test_confcloud_77618_unreadable_ancestor_fails_the_batch(cloud: Site) -> None:
    emu, state, client = cloud
    state.add_space("TA", "Trashed ancestor")
    parent = state.add_page("TA", "Old parent", "<p/>")
    child = state.add_page("TA", "Child", "<p/>", parent_id=parent)
    state.trash(parent)
    plain = search(client, emu, "space = TA", expand="ancestors")
    assert titles(plain) == ["Child"]
    failed = search(client, emu, "space = TA", expand="ancestors.restrictions.read.restrictions.user")
    assert failed.status_code == 404 and "Outdated version/old_draft/trashed" in failed.json()["message"]
    per_page = client.get(f"{emu.endpoint}/rest/api/content/{child}/restriction/byOperation/read")
    assert per_page.status_code == 200


@pytest.mark.parametrize("edition", ["cloud", "dc"])
def test_seed_permissions_matches_what_each_user_can_search(edition: str) -> None:
    state = ConfluenceState()
    seeded = seed_permissions(state, pages=40, restricted_share=0.2)
    assert seeded.restricted and seeded.hidden_by_ancestor
    with ConfluenceEmulator(state, edition=edition) as emu:  # type: ignore[arg-type]
        for username, user in seeded.users.items():
            if edition == "cloud":
                client = httpx.Client(auth=(user.email, seeded.credentials[username]))
            else:
                state.add_pat(f"pat-{username}", username)
                client = httpx.Client(headers={"Authorization": f"Bearer pat-{username}"})
            with client:
                found = {h["id"] for h in search(client, emu, f"space = {seeded.space}", limit=1000).json()["results"]}
            viewer = Viewer.of(state, user)
            with state.lock:
                expected = {
                    c.id for c in state.contents.values() if c.space_key == seeded.space and can_read(state, viewer, c)
                }
            assert found == expected, username
        # Contractors-only and group-less users see nothing of the secure space.
        assert not any(can_read(state, Viewer.of(state, seeded.users["kofi"]), state.get(p)) for p in seeded.pages)
