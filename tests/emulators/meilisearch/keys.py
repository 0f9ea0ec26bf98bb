"""API keys: actions, index patterns, expiry, the key value derived from the master key, and `/keys` bodies."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import (
    JSON,
    MeiliError,
    camel_to_snake,
    expect_object,
    expect_str,
    missing_field,
    reject_unknown_fields,
    ticks,
    type_error,
)

# Meilisearch's actions, in the order its "expected one of" messages list them.
ACTIONS = (
    "*", "search", "documents.*", "documents.add", "documents.get", "documents.delete", "indexes.*",
    "indexes.create", "indexes.get", "indexes.update", "indexes.delete", "indexes.swap", "tasks.*", "tasks.cancel",
    "tasks.delete", "tasks.get", "settings.*", "settings.get", "settings.update", "stats.*", "stats.get",
    "metrics.*", "metrics.get", "dumps.*", "dumps.create", "snapshots.*", "snapshots.create", "version",
    "keys.create", "keys.get", "keys.update", "keys.delete", "experimental.get", "experimental.update", "export",
    "network.get", "network.update", "chatCompletions", "chats.*", "chats.get", "chats.delete", "chatsSettings.*",
    "chatsSettings.get", "chatsSettings.update", "*.get", "webhooks.get", "webhooks.update", "webhooks.delete",
    "webhooks.create", "webhooks.*", "indexes.compact", "fields.post",
)  # fmt: skip
# What `*.get` grants: reads, but not keys.get (that would let a read-only key read the admin key).
_READS = frozenset(
    {"search", "documents.get", "export", "indexes.get", "tasks.get", "settings.get", "stats.get", "metrics.get"}
    | {"version", "experimental.get", "network.get", "chats.get", "chatsSettings.get", "webhooks.get"}
)
_WILDCARDS = {"*.get": _READS, "*": frozenset(a for a in ACTIONS if not a.endswith("*") and a != "*.get")}
_PATTERN_RE = re.compile(r"[A-Za-z0-9_-]+\*?|\*")
_CREATE_FIELDS = ("description", "name", "uid", "actions", "indexes", "expiresAt")
_RFC3339_RE = re.compile(r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def granted(actions: list[str]) -> frozenset[str]:
    """The actions a key's list grants: `*`, `*.get` and `group.*` expanded."""
    out: set[str] = set()
    for action in actions:
        if action in _WILDCARDS:
            out |= _WILDCARDS[action]
        elif action.endswith(".*"):
            out |= {a for a in ACTIONS if a.startswith(action[:-1]) and not a.endswith("*")}
        else:
            out.add(action)
    return frozenset(out)


def pattern_matches(pattern: str, index: str) -> bool:
    """`*` is every index, `team-a_*` every index starting with `team-a_`, anything else that index only."""
    return index.startswith(pattern[:-1]) if pattern.endswith("*") else pattern == index


def derive_key(master_key: str, uid: str) -> str:
    """Meilisearch's key value: HMAC-SHA256 of the hyphenated lowercase uid, keyed by the master key, in hex."""
    return hmac.new(master_key.encode(), str(uuid.UUID(uid)).encode(), hashlib.sha256).hexdigest()


def _rfc3339(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass
class ApiKey:
    uid: str
    key: str
    name: str | None
    description: str | None
    actions: list[str]
    indexes: list[str]
    expires_at: datetime | None
    created_at: float
    updated_at: float

    def view(self) -> JSON:
        def stamp(t: float) -> str:
            return _rfc3339(datetime.fromtimestamp(t, UTC))

        return {
            "name": self.name,
            "description": self.description,
            "key": self.key,
            "uid": self.uid,
            "actions": list(self.actions),
            "indexes": list(self.indexes),
            "expiresAt": _rfc3339(self.expires_at) if self.expires_at else None,
            "createdAt": stamp(self.created_at),
            "updatedAt": stamp(self.updated_at),
        }

    def allows_index(self, index: str) -> bool:
        return any(pattern_matches(p, index) for p in self.indexes)

    def allows(self, action: str, index: str | None = None) -> bool:
        """The action on the index (on some index when None), before the key's expiry."""
        if self.expires_at is not None and datetime.now(UTC) >= self.expires_at:
            return False
        return action in granted(self.actions) and (index is None or self.allows_index(index))


def new_key(master_key: str, fields: JSON) -> ApiKey:
    uid = fields.get("uid") or str(uuid.uuid4())
    now = time.time()
    return ApiKey(
        uid=uid,
        key=derive_key(master_key, uid),
        name=fields.get("name"),
        description=fields.get("description"),
        actions=fields["actions"],
        indexes=fields["indexes"],
        expires_at=fields["expiresAt"],
        created_at=now,
        updated_at=now,
    )


def default_keys(master_key: str) -> list[ApiKey]:
    """The keys a fresh Meilisearch creates, newest first as `GET /keys` lists them."""
    defaults = [
        ("Default Search API Key", "Use it to search from the frontend", ["search"]),
        (
            "Default Admin API Key",
            "Use it for anything that is not a search operation. Caution! Do not expose it on a public frontend",
            ["*"],
        ),
        (
            "Default Read-Only Admin API Key",
            "Use it to read information across the whole database. Caution! Do not expose this key on a public "
            "frontend",
            ["*.get", "keys.get"],
        ),
        ("Default Chat API Key", "Use it to chat and search from the frontend", ["chatCompletions", "search"]),
    ]
    keys = [
        new_key(master_key, {"name": n, "description": d, "actions": a, "indexes": ["*"], "expiresAt": None})
        for n, d, a in defaults
    ]
    for age, key in enumerate(keys):
        key.created_at = key.updated_at = key.created_at - age * 1e-3
    return keys


def parse_create(body: Any) -> JSON:
    """The fields of a `POST /keys` body, checked the way Meilisearch's deserializer does."""
    obj = expect_object(body)
    reject_unknown_fields(obj, _CREATE_FIELDS)
    fields: JSON = {}
    for name, value in obj.items():
        code, path = f"invalid_api_key_{camel_to_snake(name)}", f".{name}"
        if name in ("name", "description"):
            fields[name] = None if value is None else expect_str(value, code, path)
        elif name == "uid":
            fields[name] = _parse_uid(expect_str(value, code, path))
        elif name == "actions":
            fields[name] = _parse_actions(value, code)
        elif name == "indexes":
            fields[name] = _parse_patterns(value, code)
        else:
            fields[name] = None if value is None else _parse_expiry(expect_str(value, code, path))
    for required in ("actions", "indexes", "expiresAt"):
        if required not in fields:
            raise missing_field(required, f"missing_api_key_{camel_to_snake(required)}")
    return fields


def _parse_uid(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise MeiliError("invalid_api_key_uid", f"Invalid value at `.uid`: `{raw}` is not a valid UUID") from None


def _parse_actions(value: Any, code: str) -> list[str]:
    if not isinstance(value, list):
        raise type_error(code, ".actions", "an array", value)
    for i, action in enumerate(value):
        if action not in ACTIONS:
            if not isinstance(action, str):
                raise type_error(code, f".actions[{i}]", "a string", action)
            raise MeiliError(code, f"Unknown value `{action}` at `.actions[{i}]`: expected one of {ticks(ACTIONS)}")
    return list(value)


def _parse_patterns(value: Any, code: str) -> list[str]:
    if not isinstance(value, list):
        raise type_error(code, ".indexes", "an array", value)
    for i, pattern in enumerate(value):
        if not isinstance(pattern, str):
            raise type_error(code, f".indexes[{i}]", "a string", pattern)
        if not _PATTERN_RE.fullmatch(pattern) or len(pattern.encode()) > 400:
            raise MeiliError(
                code,
                f"Invalid value at `.indexes[{i}]`: `{pattern}` is not a valid index uid pattern. Index uid patterns "
                "can be an integer or a string containing only alphanumeric characters, hyphens (-), underscores "
                "(_), and optionally end with a star (*).",
            )
    return list(value)


def _parse_expiry(raw: str) -> datetime:
    """RFC 3339, or a UTC date with or without a time; it must lie in the future."""
    moment = _parse_rfc3339(raw) or next((m for f in _DATE_FORMATS if (m := _strptime(raw, f))), None)
    if moment is None or moment <= datetime.now(UTC):
        raise MeiliError(
            "invalid_api_key_expires_at",
            f"Invalid value at `.expiresAt`: `{raw}` is not a valid date. It should follow the RFC 3339 format to "
            "represents a date or datetime in the future or specified as a null value. e.g. 'YYYY-MM-DD' or "
            "'YYYY-MM-DD HH:MM:SS'.\n",
        )
    return moment


def _parse_rfc3339(raw: str) -> datetime | None:
    match = _RFC3339_RE.fullmatch(raw)
    if match is None:
        return None
    base, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{base.replace('t', 'T')}{(fraction or '')[:7]}{offset}")
    except ValueError:
        return None


def _strptime(raw: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_patch(body: Any) -> JSON:
    """A `PATCH /keys/{key}` body: only `name` and `description` may change."""
    obj = expect_object(body)
    for name, value in obj.items():
        if name in ("uid", "actions", "indexes", "expiresAt", "createdAt", "updatedAt"):
            raise MeiliError(
                f"immutable_api_key_{camel_to_snake(name)}",
                f"Immutable field `{name}`: expected one of `description`, `name`",
            )
        reject_unknown_fields({name: value}, ("description", "name"))
        if value is not None:
            expect_str(value, f"invalid_api_key_{name}", f".{name}")
    return obj
