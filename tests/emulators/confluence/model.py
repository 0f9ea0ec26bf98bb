"""The emulated site's records: users, groups, spaces, content, grants and the request log.

Plain dataclasses; every rule about them lives in the modules that use them (``permissions``, ``cql``, renderers).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

Edition = Literal["cloud", "dc"]
Channel = Literal["site", "gateway"]
JSON = dict[str, Any]
ExpandTree = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_STATUSES = ("current", "archived", "trashed", "draft")
# Types that live in a space's page tree. Folders, whiteboards, databases and smart links ("embed") exist on Cloud
# only; CQL and v2 know them by these names (v2 AncestorType / ParentContentType).
TREE_TYPES = ("page", "folder", "whiteboard", "database", "embed")
CONTAINER_TYPES = ("page", "blogpost")
COMMENT_LOCATIONS = ("footer", "inline")
RESOLUTIONS = ("open", "reopened", "resolved", "dangling")
# Cloud's default product-access group: every user is in it and new spaces let it view, as a fresh site does.
DEFAULT_GROUP = "confluence-users"
ADMIN_GROUP = "confluence-administrators"


@dataclass
class User:
    account_id: str
    display_name: str
    username: str
    email: str
    active: bool = True

    @property
    def user_key(self) -> str:
        # DC user keys are opaque 32-hex strings, stable per user.
        return hashlib.sha1(self.username.encode()).hexdigest()[:32]


@dataclass
class Group:
    name: str

    @property
    def id(self) -> str:
        # Cloud groups carry a UUID; DC knows groups by name only.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "confluence-emulator/group/" + self.name))


@dataclass
class Space:
    id: int
    key: str
    name: str
    type: str
    created: datetime
    status: str = "current"  # v2 SpaceStatus: current | archived
    homepage_id: str | None = None


@dataclass(frozen=True)
class Grant:
    """One space permission: ``operation`` on ``target`` for a user, a group or anonymous users."""

    id: int
    space_key: str
    operation: str  # v1/v2 operation key: read, create, administer, restrict_content, ...
    target: str  # space, page, blogpost, comment, attachment
    principal: Literal["user", "group", "anonymous"]
    principal_id: str  # accountId, group name, or "" for anonymous


@dataclass
class Restrictions:
    """Who a read or update restriction names; empty sets mean no restriction for that operation."""

    users: set[str] = field(default_factory=set)  # account ids
    groups: set[str] = field(default_factory=set)  # group names

    def __bool__(self) -> bool:
        return bool(self.users or self.groups)


@dataclass
class Content:
    """A page, blog post, attachment, comment, folder, whiteboard, database or smart link.

    ``parent_id`` is the tree parent (page or folder ...) of tree items, and the container page or blog post of
    attachments and comments. Replies to comments keep the container in ``parent_id`` and the comment answered in
    ``reply_to``.
    """

    num: int
    type: str
    space_key: str
    title: str
    body: str
    status: str
    created: datetime
    created_by: User
    version: int
    when: datetime
    by: User
    parent_id: str | None = None
    labels: list[str] = field(default_factory=list)
    data: bytes = b""
    media_type: str = ""
    comment: str = ""
    reply_to: str | None = None
    location: str = ""  # comments: footer | inline
    selection: str = ""  # inline comments: the highlighted text
    resolution: str = ""  # inline comments: open | reopened | resolved | dangling
    url: str = ""  # smart links
    restrictions: dict[str, Restrictions] = field(
        default_factory=lambda: {"read": Restrictions(), "update": Restrictions()}
    )
    position: int = 0
    id: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: ids are read on every render and CQL match, and neither num nor type ever changes.
        self.id = f"att{self.num}" if self.type == "attachment" else str(self.num)


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    auth_ok: bool
    channel: str = "site"
    principal: str = ""  # accountId / username of the caller, "anonymous", or "" when refused
    route: str = ""  # the route's name (``ConfluenceEmulator.routes`` says whether CHANGE-864 removed it)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", ".", text.lower()).strip(".") or "user"


def aware(dt: datetime) -> datetime:
    # Naive datetimes given by tests are taken as UTC, so results do not depend on the host's zone.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
