"""Who may read what, by Confluence's rules.

A user may view content if they may view its space (a ``read``/``space`` grant to them, to a group of theirs, or
to anonymous users) and satisfy the read restrictions on the item and on every ancestor in the page tree;
attachments and comments follow their container. An anonymous caller also needs the site's anonymous access
switch; a grant to anonymous users applies to every logged-in user even while that switch is off. Pure
functions over a locked :class:`ConfluenceState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Content, User
from .state import ConfluenceState


@dataclass
class Viewer:
    """The caller whose view a request computes; ``user`` None is an anonymous caller. Caches per request."""

    user: User | None
    groups: frozenset[str] = frozenset()
    _spaces: dict[str, bool] = field(default_factory=dict)
    _items: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, state: ConfluenceState, user: User | None) -> Viewer:
        return cls(user, frozenset(state.groups_of(user)) if user is not None else frozenset())

    @property
    def principal(self) -> str:
        return self.user.account_id if self.user is not None else "anonymous"


def can_view_space(state: ConfluenceState, viewer: Viewer, space_key: str) -> bool:
    cached = viewer._spaces.get(space_key)
    if cached is not None:
        return cached
    allowed = False
    for g in state.grants:
        if g.space_key != space_key or g.operation != "read" or g.target != "space":
            continue
        if g.principal == "anonymous" and (viewer.user is not None or state.anonymous_access):
            # A space open to anonymous users is open to every logged-in user too, even while the site's
            # anonymous access is off (Atlassian KB "Users can view a space regardless of its permissions").
            allowed = True
        elif viewer.user is not None and (
            (g.principal == "user" and g.principal_id == viewer.user.account_id)
            or (g.principal == "group" and g.principal_id in viewer.groups)
        ):
            allowed = True
        if allowed:
            break
    viewer._spaces[space_key] = allowed
    return allowed


def satisfies(viewer: Viewer, item: Content) -> bool:
    """The item's own read restriction (not its ancestors')."""
    rule = item.restrictions["read"]
    if not rule:
        return True
    if viewer.user is None:
        return False
    return viewer.user.account_id in rule.users or bool(rule.groups & viewer.groups)


def can_read(state: ConfluenceState, viewer: Viewer, content: Content) -> bool:
    """Space permission and every read restriction from the item up to the root of its tree."""
    cached = viewer._items.get(content.id)
    if cached is not None:
        return cached
    item = state.container_of(content) if content.type in ("attachment", "comment") else content
    if item is None or not can_view_space(state, viewer, content.space_key):
        allowed = False
    elif not state.read_restricted:
        allowed = True  # nothing on the site is restricted: the space decides
    else:
        allowed = satisfies(viewer, item) and all(satisfies(viewer, a) for a in state.ancestors(item))
    viewer._items[content.id] = allowed
    return allowed


def restricted_anywhere(state: ConfluenceState, content: Content) -> bool:
    """Whether a read restriction applies to the item directly or through an ancestor."""
    item = state.container_of(content) if content.type in ("attachment", "comment") else content
    if item is None:
        return False
    return bool(item.restrictions["read"]) or any(a.restrictions["read"] for a in state.ancestors(item))
