"""REST v2 JSON (Cloud only): flat objects that name related entities by id, never by expansion.

Shapes follow Atlassian's v2 OpenAPI (PageBulk, BlogPostBulk, Space, Attachment, Label, FooterCommentModel,
InlineCommentModel, FolderSingle, Ancestor, SpacePermissionAssignment). Ids are strings; users are account ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

from .model import JSON, Content, Grant, Space
from .render_v1 import tinyui
from .state import ConfluenceState

BODY_FORMATS = ("storage", "view")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class V2Renderer:
    def __init__(self, state: ConfluenceState) -> None:
        self.state = state

    def version(self, c: Content) -> JSON:
        return {
            "createdAt": iso(c.when),
            "message": "",
            "number": c.version,
            "minorEdit": False,
            "authorId": c.by.account_id,
        }

    @staticmethod
    def body(c: Content, fmt: str | None) -> JSON:
        if fmt is None:
            return {}
        return {fmt: {"value": c.body, "representation": fmt}}

    def space(self, s: Space) -> JSON:
        return {
            "id": str(s.id),
            "key": s.key,
            "name": s.name,
            "type": s.type,
            "status": s.status,
            "authorId": self.state.default_user.account_id,
            "createdAt": iso(s.created),
            "homepageId": s.homepage_id,
            "description": {},
            "_links": {"webui": f"/spaces/{s.key}"},
        }

    def _space_id(self, c: Content) -> str:
        space = self.state.spaces.get(c.space_key)
        return str(space.id) if space is not None else ""

    def _parent(self, c: Content) -> tuple[str | None, str | None]:
        if c.parent_id is None:
            return None, None
        try:
            return c.parent_id, self.state.get(c.parent_id).type
        except KeyError:
            return None, None

    def page(self, c: Content, fmt: str | None) -> JSON:
        """PageBulk / BlogPostBulk (blog posts have no parent or position)."""
        out: JSON = {"id": c.id, "status": c.status, "title": c.title, "spaceId": self._space_id(c)}
        if c.type == "page":
            parent_id, parent_type = self._parent(c)
            out.update({"parentId": parent_id, "parentType": parent_type, "position": c.position})
            out.update({"ownerId": c.created_by.account_id, "lastOwnerId": None})
        out.update(
            {
                "authorId": c.created_by.account_id,
                "createdAt": iso(c.created),
                "version": self.version(c),
                "body": self.body(c, fmt),
                "_links": self.content_links(c),
            }
        )
        return out

    def content_links(self, c: Content) -> JSON:
        if c.type == "blogpost":
            day = c.created.astimezone(UTC)
            webui = f"/spaces/{c.space_key}/blog/{day:%Y/%m/%d}/{c.id}/{quote_plus(c.title)}"
        else:
            webui = f"/spaces/{c.space_key}/pages/{c.id}/{quote_plus(c.title)}"
        return {"webui": webui, "editui": f"/pages/resumedraft.action?draftId={c.id}", "tinyui": tinyui(c.num)}

    def tree_item(self, c: Content) -> JSON:
        """FolderSingle / WhiteboardSingle / DatabaseSingle / SmartLinkSingle."""
        parent_id, parent_type = self._parent(c)
        out: JSON = {
            "id": c.id,
            "type": c.type,
            "status": c.status,
            "title": c.title,
            "parentId": parent_id,
            "parentType": parent_type,
            "position": c.position,
            "authorId": c.created_by.account_id,
            "ownerId": c.created_by.account_id,
            "createdAt": iso(c.created),
            "spaceId": self._space_id(c),
            "version": self.version(c),
            "_links": {"webui": f"/spaces/{c.space_key}/{c.type}/{c.id}"},
        }
        if c.type == "embed":
            out["embedUrl"] = c.url
        return out

    def attachment(self, c: Content) -> JSON:
        container = self.state.container_of(c)
        pid = c.parent_id or ""
        ms = int(c.when.timestamp() * 1000)
        download = (
            f"/download/attachments/{pid}/{quote(c.title)}"
            f"?version={c.version}&modificationDate={ms}&cacheVersion=1&api=v2"
        )
        webui = f"/pages/viewpageattachments.action?pageId={pid}&preview={quote(f'/{pid}/{c.id}/{c.title}', safe='')}"
        out: JSON = {"id": c.id, "status": c.status, "title": c.title, "createdAt": iso(c.created)}
        out["blogPostId" if container is not None and container.type == "blogpost" else "pageId"] = pid
        out.update(
            {
                "mediaType": c.media_type,
                "mediaTypeDescription": c.media_type,
                "comment": c.comment,
                "fileId": f"{c.num:032x}",
                "fileSize": len(c.data),
                "webuiLink": webui,
                "downloadLink": download,
                "version": self.version(c),
                "_links": {"webui": webui, "download": download},
            }
        )
        return out

    def label(self, name: str) -> JSON:
        return {"id": str(self.state._label_id(name)), "name": name, "prefix": "global"}

    def comment(self, c: Content, fmt: str | None, *, as_child: bool = False) -> JSON:
        """Footer/inline comment models; replies listed under a comment carry ``parentCommentId``."""
        container = self.state.container_of(c)
        out: JSON = {"id": c.id, "status": c.status, "title": c.title}
        if as_child or c.reply_to is not None:
            out["parentCommentId"] = c.reply_to
        if not as_child and container is not None:
            out["blogPostId" if container.type == "blogpost" else "pageId"] = container.id
        out["version"] = self.version(c)
        out["body"] = self.body(c, fmt)
        if c.location == "inline":
            out["resolutionStatus"] = c.resolution
            out["properties"] = {"inline-marker-ref": f"emulator-{c.num}", "inline-original-selection": c.selection}
        page = self.content_links(container)["webui"] if container is not None else ""
        out["_links"] = {"webui": f"{page}?focusedCommentId={c.id}"}
        return out

    def permission(self, g: Grant) -> JSON:
        if g.principal == "group":
            principal: JSON = {"type": "group", "id": self.state.groups[g.principal_id].id}
        else:
            principal = {"type": "user", "id": g.principal_id}
        return {"id": str(g.id), "principal": principal, "operation": {"key": g.operation, "targetType": g.target}}
