"""Who is on the emulated site and what they may do: users, groups, space permissions, content restrictions and
the credentials that identify them.

Defaults mirror a fresh site: every user is in ``confluence-users`` and a new space lets that group view it, so a
test that sets no permissions sees everything, as before. Anonymous access needs both the site switch
(``anonymous_access``) and a space grant, as in Confluence's admin screens.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from .credentials import ALL_SCOPES, Credentials, OAuthClient
from .model import ADMIN_GROUP, DEFAULT_GROUP, Content, Grant, Group, Restrictions, Space, User, slug


class AccessStore:
    """Mixin of :class:`ConfluenceState`: identities, grants and restrictions."""

    lock: threading.RLock
    users: dict[str, User]
    groups: dict[str, Group]
    members: dict[str, set[str]]  # group name -> account ids
    spaces: dict[str, Space]
    grants: list[Grant]
    credentials: Credentials
    anonymous_access: bool
    read_restricted: set[str]
    _next_grant: int

    def now(self) -> datetime:
        raise NotImplementedError

    def get(self, content_id: str) -> Content:
        raise NotImplementedError

    # -- users and groups ----------------------------------------------------------------------------------
    def add_user(self, display_name: str, email: str | None = None, *, groups: Iterable[str] = ()) -> User:
        with self.lock:
            base = slug(email.split("@")[0]) if email else slug(display_name)
            taken = {u.username for u in self.users.values()}
            username, n = base, 1
            while username in taken:
                n += 1
                username = f"{base}{n}"
            account_id = f"712020:{uuid.uuid5(uuid.NAMESPACE_URL, 'confluence-emulator/' + username)}"
            user = User(account_id, display_name, username, email or f"{username}@example.com")
            self.users[account_id] = user
            for name in (DEFAULT_GROUP, *groups):
                self.add_member(name, user)
            return user

    def user_by_username(self, username: str) -> User | None:
        with self.lock:
            return next((u for u in self.users.values() if u.username == username), None)

    def user_by_email(self, email: str) -> User | None:
        with self.lock:
            return next((u for u in self.users.values() if u.email == email), None)

    def user_by_key(self, key: str) -> User | None:
        with self.lock:
            return next((u for u in self.users.values() if u.user_key == key), None)

    def add_group(self, name: str) -> Group:
        with self.lock:
            group = self.groups.setdefault(name, Group(name))
            self.members.setdefault(name, set())
            return group

    def group_by_id(self, group_id: str) -> Group | None:
        with self.lock:
            return next((g for g in self.groups.values() if g.id == group_id), None)

    def add_member(self, group: str, user: User) -> None:
        with self.lock:
            self.add_group(group)
            self.members[group].add(user.account_id)

    def remove_member(self, group: str, user: User) -> None:
        with self.lock:
            self.members.get(group, set()).discard(user.account_id)

    def groups_of(self, user: User) -> set[str]:
        with self.lock:
            return {name for name, ids in self.members.items() if user.account_id in ids}

    # -- space permissions ---------------------------------------------------------------------------------
    def grant(
        self,
        space: str,
        *,
        user: User | None = None,
        group: str | None = None,
        anonymous: bool = False,
        operation: str = "read",
        target: str = "space",
    ) -> Grant:
        """Add one space permission for exactly one of a user, a group or anonymous users."""
        with self.lock:
            if space not in self.spaces:
                raise KeyError(f"no space {space}")
            if sum((user is not None, group is not None, anonymous)) != 1:
                raise ValueError("a grant names exactly one of user, group or anonymous")
            if group is not None:
                self.add_group(group)
            principal: Literal["user", "group", "anonymous"] = "user" if user else "group" if group else "anonymous"
            pid = user.account_id if user else group or ""
            for existing in self.grants:
                key = (
                    existing.space_key,
                    existing.operation,
                    existing.target,
                    existing.principal,
                    existing.principal_id,
                )
                if key == (space, operation, target, principal, pid):
                    return existing
            made = Grant(self._next_grant, space, operation, target, principal, pid)
            self._next_grant += 1
            self.grants.append(made)
            return made

    def revoke(
        self, space: str, *, user: User | None = None, group: str | None = None, anonymous: bool = False
    ) -> None:
        """Remove every permission of that principal in the space (removing view removes the rest, as in the UI)."""
        with self.lock:
            pid = user.account_id if user else group or ""
            principal = "user" if user else "group" if group else "anonymous"
            if not anonymous and user is None and group is None:
                raise ValueError("name a user, a group or anonymous")
            self.grants = [
                g
                for g in self.grants
                if not (g.space_key == space and g.principal == principal and g.principal_id == pid)
            ]

    def space_grants(self, space: str) -> list[Grant]:
        with self.lock:
            return [g for g in self.grants if g.space_key == space]

    def is_space_admin(self, user: User | None, space: str) -> bool:
        if user is None:
            return False
        with self.lock:
            groups = self.groups_of(user)
            if ADMIN_GROUP in groups:
                return True
            return any(
                g.space_key == space
                and g.operation == "administer"
                and (
                    (g.principal == "user" and g.principal_id == user.account_id)
                    or (g.principal == "group" and g.principal_id in groups)
                )
                for g in self.grants
            )

    # -- content restrictions ------------------------------------------------------------------------------
    def set_restrictions(
        self,
        content_id: str,
        *,
        read_users: Iterable[User] = (),
        read_groups: Iterable[str] = (),
        update_users: Iterable[User] = (),
        update_groups: Iterable[str] = (),
    ) -> None:
        """Replace a page's (or blog post's, folder's ...) restrictions. No new version, as in the UI."""
        with self.lock:
            content = self.get(content_id)
            if content.type in ("attachment", "comment"):
                raise ValueError("attachments and comments follow their container's restrictions")
            for name in (*read_groups, *update_groups):
                self.add_group(name)
            content.restrictions = {
                "read": Restrictions({u.account_id for u in read_users}, set(read_groups)),
                "update": Restrictions({u.account_id for u in update_users}, set(update_groups)),
            }
            if content.restrictions["read"]:
                self.read_restricted.add(content.id)
            else:
                self.read_restricted.discard(content.id)

    def clear_restrictions(self, content_id: str) -> None:
        self.set_restrictions(content_id)

    # -- credentials ---------------------------------------------------------------------------------------
    def _token_user(self, email: str) -> User:
        return self.user_by_email(email) or self.add_user(email.split("@")[0].title(), email)

    def add_cloud_token(self, email: str, token: str) -> User:
        """A classic (unscoped) API token: works as Basic ``email:token`` against the site URL."""
        with self.lock:
            self.credentials.classic[email] = token
            return self._token_user(email)

    def add_scoped_token(self, email: str, token: str, scopes: Iterable[str] = ALL_SCOPES) -> User:
        """A scoped API token: works only through the API gateway, only within ``scopes``."""
        with self.lock:
            self.credentials.scoped[email] = (token, frozenset(scopes))
            return self._token_user(email)

    def _ensure_username(self, username: str) -> User:
        found = self.user_by_username(username)
        if found is not None:
            return found
        user = self.add_user(username.title(), f"{username}@example.com")
        user.username = username  # DC usernames are whatever the directory says, not a slug of the email
        return user

    def add_pat(self, token: str, username: str = "admin") -> User:
        """A DC personal access token (``Authorization: Bearer``) of ``username`` (created if unknown)."""
        with self.lock:
            self.credentials.pats[token] = username
            return self._ensure_username(username)

    def add_password(self, username: str, password: str) -> User:
        with self.lock:
            self.credentials.passwords[username] = password
            return self._ensure_username(username)

    def add_oauth_client(
        self, client_id: str, secret: str, *, user: User | None = None, scopes: Iterable[str] = ALL_SCOPES
    ) -> User:
        """A service account's OAuth 2.0 credential (client credentials grant). Returns the service account."""
        with self.lock:
            account = user or self.add_user(f"Service {client_id}", f"{slug(client_id)}@serviceaccount.atlassian.com")
            self.credentials.clients[client_id] = OAuthClient(client_id, secret, account.account_id, frozenset(scopes))
            return account

    def add_oauth_grant(self, client_id: str, user: User, scopes: Iterable[str] = ALL_SCOPES) -> str:
        """A finished 3LO consent: ``user`` authorised app ``client_id``; returns the refresh token it got."""
        with self.lock:
            app = self.credentials.clients.get(client_id)
            if app is None:
                raise KeyError(f"no OAuth client {client_id}; add_oauth_client first")
            grant = OAuthClient(client_id, app.secret, user.account_id, frozenset(scopes) | {"offline_access"})
            token = "rt-" + secrets.token_urlsafe(24)
            self.credentials.refresh[token] = grant
            return token
