"""REST v1 JSON: content, users, groups, spaces and restrictions as each edition renders them.

Cloud names users by ``accountId`` and renders dates in UTC (``Z``); Data Center names them by ``username`` and
``userKey`` and renders dates in the server's zone. ``expand`` decides what is inlined and what is listed under
``_expandable``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

from .model import JSON, Content, ExpandTree, Group, Restrictions, Space, User
from .state import ConfluenceState

_REPS = ["storage", "view", "export_view", "styled_view", "editor", "anonymous_export_view"]


def tinyui(num: int) -> str:
    raw = num.to_bytes(8, "little").rstrip(b"\0") or b"\0"
    return "/x/" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


class V1Renderer:
    def __init__(self, state: ConfluenceState, cloud: bool, endpoint: str) -> None:
        self.state = state
        self.cloud = cloud
        self.endpoint = endpoint  # the site's base URL (https://SITE.atlassian.net/wiki or the DC context)

    def iso(self, dt: datetime) -> str:
        if self.cloud:
            return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return dt.astimezone(self.state.tz).isoformat(timespec="milliseconds")

    # -- people ----------------------------------------------------------------------------------------------
    def user(self, user: User) -> JSON:
        if self.cloud:
            out: JSON = {
                "type": "known",
                "accountId": user.account_id,
                "accountType": "atlassian",
                "publicName": user.display_name,
                "displayName": user.display_name,
                "isExternalCollaborator": False,
                "_expandable": {"operations": "", "personalSpace": ""},
                "_links": {"self": f"{self.endpoint}/rest/api/user?accountId={user.account_id}"},
            }
            if self.state.email_visible:
                out["email"] = user.email
            return out
        return {
            "type": "known",
            "username": user.username,
            "userKey": user.user_key,
            "displayName": user.display_name,
            "_links": {"self": f"{self.endpoint}/rest/api/user?key={user.user_key}"},
        }

    def group(self, group: Group) -> JSON:
        if self.cloud:
            return {
                "type": "group",
                "name": group.name,
                "id": group.id,
                "_links": {"self": f"{self.endpoint}/rest/api/group/by-id?id={group.id}"},
            }
        return {
            "type": "group",
            "name": group.name,
            "_links": {"self": f"{self.endpoint}/rest/api/group/{quote(group.name)}"},
        }

    # -- spaces ----------------------------------------------------------------------------------------------
    def space(self, space: Space, exp: ExpandTree | None = None) -> JSON:
        exp = exp or {}
        expandable = {
            "settings": f"/rest/api/space/{space.key}/settings",
            "metadata": "",
            "operations": "",
            "lookAndFeel": f"/rest/api/settings/lookandfeel?spaceKey={space.key}",
            "permissions": "",
            "icon": "",
            "description": "",
            "theme": f"/rest/api/space/{space.key}/theme",
            "history": "",
            "homepage": f"/rest/api/content/{space.homepage_id}" if space.homepage_id else "",
        }
        out: JSON = {"id": space.id, "key": space.key, "name": space.name, "type": space.type, "status": space.status}
        if "permissions" in exp and self.cloud:
            out["permissions"] = self.space_permissions(space)
            del expandable["permissions"]
        out["_expandable"] = expandable
        out["_links"] = {
            "webui": f"/spaces/{space.key}" if self.cloud else f"/display/{space.key}",
            "self": f"{self.endpoint}/rest/api/space/{space.key}",
        }
        return out

    def space_permissions(self, space: Space) -> list[JSON]:
        """Cloud v1 ``expand=permissions``: subjects per grant, anonymous grants as ``anonymousAccess``."""
        out: list[JSON] = []
        for g in self.state.space_grants(space.key):
            entry: JSON = {"operation": {"operation": g.operation, "targetType": g.target}}
            if g.principal == "anonymous":
                entry.update({"anonymousAccess": True, "unlicensedAccess": False})
            elif g.principal == "user":
                who = self.state.users.get(g.principal_id)
                entry["subjects"] = {"user": {"results": [self.user(who)] if who else [], "size": int(who is not None)}}
                entry.update({"anonymousAccess": False, "unlicensedAccess": False})
            else:
                group = self.state.groups.get(g.principal_id, Group(g.principal_id))
                entry["subjects"] = {"group": {"results": [self.group(group)], "size": 1}}
                entry.update({"anonymousAccess": False, "unlicensedAccess": False})
            out.append(entry)
        return out

    # -- restrictions ----------------------------------------------------------------------------------------
    def restriction(self, c: Content, operation: str, start: int = 0, limit: int = 100) -> JSON:
        """One operation's restriction as ``restriction/byOperation/{op}`` and the ``restrictions`` expand render it."""
        rule = c.restrictions.get(operation, Restrictions())
        users = [self.state.users[a] for a in sorted(rule.users) if a in self.state.users]
        groups = [self.state.groups.get(n, Group(n)) for n in sorted(rule.groups)]
        user_page = [self.user(u) for u in users[start : start + limit]]
        group_page = [self.group(g) for g in groups[start : start + limit]]
        return {
            "operation": operation,
            "restrictions": {
                "user": {"results": user_page, "start": start, "limit": limit, "size": len(user_page)},
                "group": {"results": group_page, "start": start, "limit": limit, "size": len(group_page)},
            },
            "_expandable": {"content": f"/rest/api/content/{c.id}"},
            "_links": {"self": f"{self.endpoint}/rest/api/content/{c.id}/restriction/byOperation/{operation}"},
        }

    # -- content ---------------------------------------------------------------------------------------------
    def version(self, c: Content) -> JSON:
        return {
            "by": self.user(c.by),
            "when": self.iso(c.when),
            "message": "",
            "number": c.version,
            "minorEdit": False,
            "_expandable": {"content": f"/rest/api/content/{c.id}", "collaborators": ""},
            "_links": {"self": f"{self.endpoint}/rest/experimental/content/{c.id}/version/{c.version}"},
        }

    def webui(self, c: Content) -> str:
        if c.type == "attachment":
            pid = c.parent_id or ""
            preview = quote(f"/{pid}/{c.id}/{c.title}", safe="")
            return f"/pages/viewpageattachments.action?pageId={pid}&preview={preview}"
        if c.type == "comment":
            container = self.state.container_of(c)
            page = self.webui(container) if container is not None else ""
            joiner = "&" if "?" in page else "?"
            return f"{page}{joiner}focusedCommentId={c.id}#comment-{c.id}"
        if not self.cloud:
            return f"/pages/viewpage.action?pageId={c.id}"
        if c.type == "blogpost":
            day = c.created.astimezone(UTC)
            return f"/spaces/{c.space_key}/blog/{day:%Y/%m/%d}/{c.id}/{quote_plus(c.title)}"
        if c.type == "page":
            return f"/spaces/{c.space_key}/pages/{c.id}/{quote_plus(c.title)}"
        return f"/spaces/{c.space_key}/{c.type}/{c.id}"  # folder, whiteboard, database, embed

    def links(self, c: Content) -> JSON:
        links: JSON = {"webui": self.webui(c)}
        if c.type == "attachment":
            pid = c.parent_id or ""
            ms = int(c.when.timestamp() * 1000)
            extra = "&cacheVersion=1&api=v2" if self.cloud else "&api=v2"
            links["download"] = (
                f"/download/attachments/{pid}/{quote(c.title)}?version={c.version}&modificationDate={ms}{extra}"
            )
        elif c.type != "comment":
            links["edit"] = f"/pages/resumedraft.action?draftId={c.id}"
            links["tinyui"] = tinyui(c.num)
        links["self"] = f"{self.endpoint}/rest/api/content/{c.id}"
        return links

    def brief(self, c: Content) -> JSON:
        return {
            "id": c.id,
            "type": c.type,
            "status": c.status,
            "title": c.title,
            "_links": self.links(c),
            "_expandable": {"container": "", "body": "", "version": "", "space": "", "history": ""},
        }

    def body(self, c: Content, exp: ExpandTree) -> JSON:
        body: JSON = {}
        for rep in _REPS:
            if rep in exp:
                # The emulator renders views as the storage XHTML itself; connectors should prefer storage.
                body[rep] = {
                    "value": c.body,
                    "representation": rep,
                    "_expandable": {"content": f"/rest/api/content/{c.id}"},
                }
        body["_expandable"] = {rep: "" for rep in _REPS if rep not in exp}
        return body
