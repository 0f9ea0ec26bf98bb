"""Emulator of Confluence Cloud and Data Center as they are in 2026, served over real HTTP.

Used in-process by tests (which mutate a :class:`ConfluenceState` directly) and as a standalone demo source::

    python -m tests.emulators.confluence --edition cloud --port 8090 --seed demo [--gateway]

It reproduces the behaviours that make real connectors lose content or leak it: silent ``limit`` caps, opaque
Cloud cursors, DC's under-counted ``start`` and past-the-end pages, minute-granular CQL dates in the site time
zone, archived/trashed visibility, the Cloud attachment download redirect, rate limits and faults; the API gateway
with scoped tokens and OAuth 2.0, CHANGE-864's removed v1 reads, REST v2, comments, folders and other Cloud tree
types, archived spaces, and permissions (space grants, anonymous access, inherited read restrictions) enforced
for the calling account. ``docs/confluence-api.md`` lists each behaviour with the source that documents it.

Modules: ``model`` (records), ``state`` with ``content`` and ``access`` (what the site knows), ``credentials``,
``permissions`` (who may read what), ``cql``, ``auth`` and ``pipeline`` (gateway, scopes, deprecations),
``faults``, ``paging``, renderers (``render_v1``, ``render_content``, ``render_v2``), routes (``v1_content``,
``v1_search``, ``v1_people``, ``dc_permissions``, ``v2_content``, ``v2_spaces``), ``oauth``, ``server``, ``seed``.
"""

from .cql import CqlError, CqlQuery, parse_cql, tokenize_cql
from .credentials import ALL_SCOPES, Credentials
from .model import JSON, Content, Edition, Grant, Group, RequestRecord, Restrictions, Space, User
from .permissions import Viewer, can_read, can_view_space, restricted_anywhere
from .seed import PermissionSeed, seed_demo, seed_permissions
from .server import ConfluenceEmulator
from .state import ConfluenceState

__all__ = [
    "ALL_SCOPES",
    "JSON",
    "ConfluenceEmulator",
    "ConfluenceState",
    "Content",
    "CqlError",
    "CqlQuery",
    "Credentials",
    "Edition",
    "Grant",
    "Group",
    "PermissionSeed",
    "RequestRecord",
    "Restrictions",
    "Space",
    "User",
    "Viewer",
    "can_read",
    "can_view_space",
    "parse_cql",
    "restricted_anywhere",
    "seed_demo",
    "seed_permissions",
    "tokenize_cql",
]
