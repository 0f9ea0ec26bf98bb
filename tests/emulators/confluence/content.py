"""Content of the emulated site: creating, editing, moving and removing pages, blog posts, attachments, comments
and the Cloud tree types (folders, whiteboards, databases, smart links).

Edits bump ``version.number`` and the version date (``lastmodified`` in CQL). Label edits, moves to another
parent and restriction changes do not: Confluence records them without a new version, so a connector that skips
items whose version it has already indexed keeps stale tags, breadcrumbs and readers (issue 14).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .model import CONTAINER_TYPES, RESOLUTIONS, TREE_TYPES, Content, Space, User, aware


class ContentStore:
    """Mixin of :class:`ConfluenceState`: everything that creates or changes content."""

    lock: threading.RLock
    spaces: dict[str, Space]
    contents: dict[int, Content]
    default_user: User
    label_ids: dict[str, int]
    child_counts: dict[tuple[str, str | None], int]  # (space, parent) -> tree children ever added (positions)
    read_restricted: set[str]
    _next_num: int

    def now(self) -> datetime:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------------------
    def _alloc(self) -> int:
        num = self._next_num
        self._next_num += 1
        return num

    def _label_id(self, name: str) -> int:
        return self.label_ids.setdefault(name, 1_900_000 + len(self.label_ids))

    def _norm_labels(self, labels: Sequence[str]) -> list[str]:
        out: list[str] = []
        for raw in labels:
            name = raw.strip().lower()
            if name and name not in out:
                self._label_id(name)
                out.append(name)
        return out

    def get(self, content_id: str) -> Content:
        with self.lock:
            num = content_id[3:] if content_id.startswith("att") else content_id
            content = self.contents.get(int(num)) if num.isdigit() else None
            if content is None or content.id != content_id:
                raise KeyError(f"no content {content_id}")
            return content

    def _new(self, type: str, space: str, title: str, body: str, at: datetime, user: User, **kw: Any) -> Content:
        content = Content(
            num=self._alloc(),
            type=type,
            space_key=space,
            title=title,
            body=body,
            status="current",
            created=at,
            created_by=user,
            version=1,
            when=at,
            by=user,
            **kw,
        )
        self.contents[content.num] = content
        return content

    def _check_parent(self, space: str, type: str, parent_id: str | None) -> None:
        if parent_id is None:
            return
        parent = self.get(parent_id)
        if type not in TREE_TYPES or parent.type not in TREE_TYPES or parent.space_key != space:
            raise ValueError("a parent must be a page tree item in the same space, and only tree items have parents")

    # -- pages, blog posts, tree items ---------------------------------------------------------------------
    def add_page(
        self,
        space: str,
        title: str,
        body: str,
        *,
        parent_id: str | None = None,
        labels: Sequence[str] = (),
        author: User | None = None,
        type: str = "page",
        created: datetime | None = None,
    ) -> str:
        with self.lock:
            if space not in self.spaces:
                raise KeyError(f"no space {space}")
            if type not in (*TREE_TYPES, "blogpost") or type == "embed":
                raise ValueError(f"unsupported content type {type}")
            self._check_parent(space, type, parent_id)
            user = author or self.default_user
            at = aware(created) if created else self.now()
            content = self._new(
                type, space, title, body, at, user, parent_id=parent_id, labels=self._norm_labels(labels)
            )
            if type in TREE_TYPES:
                slot = (space, parent_id)
                content.position = self.child_counts.get(slot, 0)
                self.child_counts[slot] = content.position + 1
            home = self.spaces[space]
            if type == "page" and parent_id is None and home.homepage_id is None:
                home.homepage_id = content.id
            return content.id

    def add_blogpost(self, space: str, title: str, body: str, **kw: Any) -> str:
        return self.add_page(space, title, body, type="blogpost", **kw)

    def add_folder(self, space: str, title: str, *, parent_id: str | None = None, **kw: Any) -> str:
        return self.add_page(space, title, "", type="folder", parent_id=parent_id, **kw)

    def add_whiteboard(self, space: str, title: str, *, parent_id: str | None = None, **kw: Any) -> str:
        return self.add_page(space, title, "", type="whiteboard", parent_id=parent_id, **kw)

    def add_database(self, space: str, title: str, *, parent_id: str | None = None, **kw: Any) -> str:
        return self.add_page(space, title, "", type="database", parent_id=parent_id, **kw)

    def add_smart_link(self, space: str, title: str, url: str, *, parent_id: str | None = None) -> str:
        """A smart link in the content tree (type ``embed`` in CQL and v2)."""
        with self.lock:
            if space not in self.spaces:
                raise KeyError(f"no space {space}")
            self._check_parent(space, "embed", parent_id)
            content = self._new("embed", space, title, "", self.now(), self.default_user, parent_id=parent_id, url=url)
            return content.id

    def _bump(self, content: Content, editor: User | None) -> None:
        content.version += 1
        content.when = self.now()
        content.by = editor or content.by

    def update_page(
        self,
        content_id: str,
        *,
        title: str | None = None,
        body: str | None = None,
        labels: list[str] | None = None,
        editor: User | None = None,
    ) -> None:
        """An edit in the editor: a new version, whatever changed."""
        with self.lock:
            content = self.get(content_id)
            if title is not None:
                content.title = title
            if body is not None:
                content.body = body
            if labels is not None:
                content.labels = self._norm_labels(labels)
            self._bump(content, editor)

    def set_labels(self, content_id: str, labels: Sequence[str]) -> None:
        """Replace the labels as the label dialog does: no new version, ``lastmodified`` unchanged."""
        with self.lock:
            self.get(content_id).labels = self._norm_labels(labels)

    def add_labels(self, content_id: str, *labels: str) -> None:
        with self.lock:
            content = self.get(content_id)
            content.labels = self._norm_labels([*content.labels, *labels])

    def remove_label(self, content_id: str, label: str) -> None:
        with self.lock:
            content = self.get(content_id)
            content.labels = [n for n in content.labels if n != label.strip().lower()]

    def descendants(self, content_id: str) -> list[Content]:
        """Tree items below ``content_id`` (pages, folders, ...), depth first."""
        with self.lock:
            out: list[Content] = []
            frontier = [content_id]
            while frontier:
                pid = frontier.pop()
                for c in self.contents.values():
                    if c.parent_id == pid and c.type in TREE_TYPES:
                        out.append(c)
                        frontier.append(c.id)
            return out

    def move_page(self, content_id: str, new_space: str) -> None:
        """Move a page (it becomes top level) with its descendants and attachments; only it gets a version.

        Descendants keep their version, as a real move does not edit them: a sync that relies only on
        ``lastmodified`` will not notice they changed space.
        """
        with self.lock:
            if new_space not in self.spaces:
                raise KeyError(f"no space {new_space}")
            content = self.get(content_id)
            moved = [content, *self.descendants(content_id)]
            ids = {c.id for c in moved}
            for c in self.contents.values():
                if c in moved or (c.type in ("attachment", "comment") and c.parent_id in ids):
                    c.space_key = new_space
            content.parent_id = None
            self._bump(content, None)

    def reparent(self, content_id: str, new_parent_id: str | None) -> None:
        """Move a tree item under another parent in the same space: ancestors change, the version does not."""
        with self.lock:
            content = self.get(content_id)
            if new_parent_id is not None:
                self._check_parent(content.space_key, content.type, new_parent_id)
                if new_parent_id == content_id or new_parent_id in {c.id for c in self.descendants(content_id)}:
                    raise ValueError("a page cannot move below itself")
            content.parent_id = new_parent_id

    def _set_status(self, content_id: str, status: str) -> None:
        with self.lock:
            self.get(content_id).status = status

    def trash(self, content_id: str) -> None:
        self._set_status(content_id, "trashed")

    def archive(self, content_id: str) -> None:
        self._set_status(content_id, "archived")

    def purge(self, content_id: str) -> None:
        with self.lock:
            content = self.get(content_id)
            del self.contents[content.num]
            self.read_restricted.discard(content.id)
            for child in [c for c in self.contents.values() if c.type in ("attachment", "comment")]:
                if child.parent_id == content.id:
                    del self.contents[child.num]

    # -- attachments and comments --------------------------------------------------------------------------
    def add_attachment(self, page_id: str, filename: str, data: bytes, media_type: str, *, comment: str = "") -> str:
        """Attach a file; re-attaching the same file name makes a new version of the same attachment."""
        with self.lock:
            page = self.get(page_id)
            if page.type not in CONTAINER_TYPES:
                raise ValueError("attachments belong to pages or blog posts")
            for c in self.contents.values():
                if c.type == "attachment" and c.parent_id == page_id and c.title == filename:
                    c.data, c.media_type, c.comment = data, media_type, comment
                    self._bump(c, None)
                    return c.id
            att = self._new(
                "attachment",
                page.space_key,
                filename,
                "",
                self.now(),
                self.default_user,
                parent_id=page_id,
                data=data,
                media_type=media_type,
                comment=comment,
            )
            return att.id

    def add_comment(
        self,
        container_id: str,
        body: str,
        *,
        author: User | None = None,
        location: str = "footer",
        reply_to: str | None = None,
        selection: str = "",
        created: datetime | None = None,
    ) -> str:
        """A footer or inline comment on a page or blog post, or a reply to one (same location as the parent)."""
        with self.lock:
            container = self.get(container_id)
            if container.type not in CONTAINER_TYPES:
                raise ValueError("comments belong to pages or blog posts")
            if reply_to is not None:
                parent = self.get(reply_to)
                if parent.type != "comment" or parent.parent_id != container_id:
                    raise ValueError("a reply answers a comment on the same page")
                location, selection = parent.location, ""
            if location not in ("footer", "inline"):
                raise ValueError(f"unknown comment location {location}")
            if location == "inline" and reply_to is None and not selection:
                raise ValueError("a top-level inline comment highlights some text (selection)")
            user = author or self.default_user
            at = aware(created) if created else self.now()
            comment = self._new(
                "comment",
                container.space_key,
                "Re: " + container.title,
                body,
                at,
                user,
                parent_id=container_id,
                reply_to=reply_to,
                location=location,
                selection=selection,
                resolution="open" if location == "inline" else "",
            )
            return comment.id

    def update_comment(self, comment_id: str, body: str, *, editor: User | None = None) -> None:
        with self.lock:
            comment = self.get(comment_id)
            if comment.type != "comment":
                raise ValueError(f"{comment_id} is not a comment")
            comment.body = body
            self._bump(comment, editor)

    def resolve_comment(self, comment_id: str, resolution: str = "resolved") -> None:
        with self.lock:
            comment = self.get(comment_id)
            if comment.location != "inline" or resolution not in RESOLUTIONS:
                raise ValueError("only inline comments are resolved: open, reopened, resolved or dangling")
            comment.resolution = resolution

    # -- queries used by the HTTP layer --------------------------------------------------------------------
    def container_of(self, content: Content) -> Content | None:
        """The page or blog post an attachment or comment belongs to."""
        if content.type not in ("attachment", "comment") or content.parent_id is None:
            return None
        try:
            return self.get(content.parent_id)
        except KeyError:
            return None

    def ancestors(self, content: Content) -> list[Content]:
        """Tree ancestors, root first. Attachments and comments have none of their own (their container does)."""
        chain: list[Content] = []
        pid = content.parent_id if content.type in TREE_TYPES else None
        while pid is not None:
            try:
                parent = self.get(pid)
            except KeyError:
                break
            chain.append(parent)
            pid = parent.parent_id
        return list(reversed(chain))

    def comment_chain(self, comment: Content) -> list[Content]:
        """The comments a reply answers, root first."""
        chain: list[Content] = []
        rid = comment.reply_to
        while rid is not None:
            try:
                parent = self.get(rid)
            except KeyError:
                break
            chain.append(parent)
            rid = parent.reply_to
        return list(reversed(chain))

    def searchable(self, content: Content) -> bool:
        # CQL finds current and archived content, never trash; attachments and comments follow their container.
        if content.status not in ("current", "archived"):
            return False
        container = self.container_of(content)
        if content.type in ("attachment", "comment"):
            return container is not None and container.status in ("current", "archived")
        return True
