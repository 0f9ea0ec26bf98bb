"""Everything the emulated site knows, and the switches for the quirks and faults it can reproduce.

Tests mutate a :class:`ConfluenceState` directly (all access goes through ``lock``); the HTTP layer reads it.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .access import AccessStore
from .content import ContentStore
from .credentials import Credentials
from .model import DEFAULT_GROUP, Content, Grant, Group, RequestRecord, Space, User, aware

# Atlassian's deprecation headers on v1 endpoints removed from the gateway (atlassian-python-api #1545).
DEPRECATION_WARNING = '299 - "Deprecated API, will be removed on Mon, 31 Mar 2025 00:00:00 GMT"'
DEPRECATION_DATE = "Wed, 1 Mar 2023 00:00:00 GMT"


class ConfluenceState(ContentStore, AccessStore):
    """Everything the emulated site knows. Tests mutate it directly; all access goes through ``lock``."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.lock = threading.RLock()
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.cloud_id = str(uuid.uuid4())
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.members: dict[str, set[str]] = {}
        self.spaces: dict[str, Space] = {}
        self.grants: list[Grant] = []
        self.contents: dict[int, Content] = {}
        self.label_ids: dict[str, int] = {}
        self.child_counts: dict[tuple[str, str | None], int] = {}
        # Ids of content with a read restriction of its own: lets visibility skip ancestor walks when empty.
        self.read_restricted: set[str] = set()
        self.credentials = Credentials()
        # Site-wide "anonymous access" switch (Cloud: global permission; DC: Use Confluence for anonymous users).
        self.anonymous_access = False
        # Whether user objects show email (Cloud hides it unless the profile's visibility allows).
        self.email_visible = False
        # Data Center build: the space-permission REST API exists from 9.1.0 on (CONFSERVER-78176).
        self.dc_version = (9, 2, 0)
        # DC's JSON-RPC API (getSpacePermissionSets) answers only while "Remote API" is enabled.
        self.dc_remote_api = True
        self._next_num = 65_537
        self._next_space_id = 98_305
        self._next_grant = 3_211_265
        self._now: datetime | None = None
        # Silent caps on `limit`: the answer's `limit` shows the cap actually applied.
        self.dc_body_cap = 50
        self.dc_expand_cap = 200
        self.dc_plain_cap = 1000
        self.cloud_body_cap = 50
        self.cloud_cap = 1000
        self.v2_cap = 250  # v2 `limit` maximum (OpenAPI: maximum 250)
        # When True a Cloud cursor reused with a different limit answers 400 instead of silently skipping.
        self.cloud_cursor_strict_limit = False
        # CONFSERVER-95396 starts above this many items.
        self.dc_past_end_threshold = 200
        self.deprecation_warning = DEPRECATION_WARNING
        self.requests: list[RequestRecord] = []
        self.reset_counters()
        self.default_user = self.add_user("Admin", "admin@example.com")
        self.add_member("confluence-administrators", self.default_user)

    def reset_counters(self) -> None:
        """Clear fault injection counters and quirk flags (not content, credentials or caps)."""
        with self.lock:
            self.rate_limit_next = 0
            self.retry_after = "1"
            # How a 429 tells when to come back: "retry_after" (Retry-After and X-RateLimit-Reset) or
            # "reset_only" (X-RateLimit-Reset without Retry-After, as some Cloud 429s do).
            self.rate_limit_style = "retry_after"
            # The next N successful answers carry X-RateLimit-NearLimit: true.
            self.near_limit_next = 0
            self.fail_next: list[int] = []
            self.malformed_next = 0
            self.dc_rate_limit_as_403 = False
            self.dc_miscount_start = False
            # CONFSERVER-95396: past the end of a listing above dc_past_end_threshold items, DC keeps answering
            # full pages (of records already returned) with a next link.
            self.dc_past_end = False
            self.empty_page_with_next = False
            self.timeout_body_pages_over: int | None = None
            self.latency_s = 0.0

    # -- clock ---------------------------------------------------------------------------------------------
    def set_now(self, now: datetime | None) -> None:
        with self.lock:
            self._now = None if now is None else aware(now)

    def now(self) -> datetime:
        with self.lock:
            return self._now if self._now is not None else datetime.now(UTC)

    # -- spaces --------------------------------------------------------------------------------------------
    def add_space(self, key: str, name: str, *, type: str = "global", default_access: bool = True) -> None:
        """Create a space. ``default_access`` lets ``confluence-users`` view it, as a new space does."""
        with self.lock:
            if key in self.spaces:
                raise ValueError(f"space {key} already exists")
            # Personal spaces are recognisable by their key, as on real sites.
            kind = "personal" if key.startswith("~") and type == "global" else type
            self.spaces[key] = Space(self._next_space_id, key, name, kind, self.now())
            self._next_space_id += 1
            self.grant(key, user=self.default_user, operation="administer")
            self.grant(key, user=self.default_user)
            if default_access:
                self.grant(key, group=DEFAULT_GROUP)

    def archive_space(self, key: str) -> None:
        """Archive a space: its content leaves content search (includeArchivedSpaces or not)."""
        with self.lock:
            self.spaces[key].status = "archived"

    def restore_space(self, key: str) -> None:
        with self.lock:
            self.spaces[key].status = "current"

    def space_by_id(self, space_id: str) -> Space | None:
        with self.lock:
            return next((s for s in self.spaces.values() if str(s.id) == space_id), None)
