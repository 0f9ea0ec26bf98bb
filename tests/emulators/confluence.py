"""Emulator of the Confluence Cloud and Data Center REST API v1, served over real HTTP.

Used in-process by tests (which mutate a :class:`ConfluenceState` directly) and as a standalone demo source::

    python -m tests.emulators.confluence --edition cloud --port 8090 --seed demo

It reproduces the behaviours that make real connectors lose content: silent ``limit`` caps, opaque Cloud
cursors, DC's under-counted ``start``, empty pages that still carry ``next``, minute-granular CQL dates in the
site time zone, archived/trashed visibility, the Cloud attachment download redirect, rate limits and faults.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, quote_plus, urlencode
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

Edition = Literal["cloud", "dc"]
JSON = dict[str, Any]
ExpandTree = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLOUD_MAX_START = 100_000
MEDIA_TOKEN_TTL_S = 300.0
_CONTENT_STATUSES = ("current", "archived", "trashed", "draft")


# --------------------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------------------


@dataclass
class User:
    account_id: str
    display_name: str
    username: str
    email: str

    @property
    def user_key(self) -> str:
        # DC user keys are opaque 32-hex strings, stable per user.
        return hashlib.sha1(self.username.encode()).hexdigest()[:32]


@dataclass
class Space:
    id: int
    key: str
    name: str
    type: str


@dataclass
class Content:
    """A page, blog post or attachment. Attachments keep their container page in ``parent_id``."""

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

    @property
    def id(self) -> str:
        return f"att{self.num}" if self.type == "attachment" else str(self.num)


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    auth_ok: bool


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", ".", text.lower()).strip(".") or "user"


def _aware(dt: datetime) -> datetime:
    # Naive datetimes given by tests are taken as UTC, so results do not depend on the host's zone.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


class ConfluenceState:
    """Everything the emulated site knows. Tests mutate it directly; all access goes through ``lock``."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.lock = threading.RLock()
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.users: dict[str, User] = {}
        self.spaces: dict[str, Space] = {}
        self.contents: dict[int, Content] = {}
        self.label_ids: dict[str, int] = {}
        self.cloud_tokens: dict[str, str] = {}
        self.pats: dict[str, str] = {}
        self.passwords: dict[str, str] = {}
        self._next_num = 65_537
        self._next_space_id = 98_305
        self._now: datetime | None = None
        # Silent caps on `limit`: the answer's `limit` shows the cap actually applied.
        self.dc_body_cap = 50
        self.dc_expand_cap = 200
        self.dc_plain_cap = 1000
        self.cloud_body_cap = 50
        self.cloud_cap = 1000
        # When True a Cloud cursor reused with a different limit answers 400 instead of silently skipping.
        self.cloud_cursor_strict_limit = False
        self.requests: list[RequestRecord] = []
        self.reset_counters()
        self.default_user = self.add_user("Admin", "admin@example.com")

    def reset_counters(self) -> None:
        """Clear fault injection counters and quirk flags (not content, credentials or caps)."""
        with self.lock:
            self.rate_limit_next = 0
            self.retry_after = "1"
            self.fail_next: list[int] = []
            self.malformed_next = 0
            self.dc_rate_limit_as_403 = False
            self.dc_miscount_start = False
            self.empty_page_with_next = False
            self.timeout_body_pages_over: int | None = None
            self.latency_s = 0.0

    # -- clock ---------------------------------------------------------------------------------------------
    def set_now(self, now: datetime | None) -> None:
        with self.lock:
            self._now = None if now is None else _aware(now)

    def now(self) -> datetime:
        with self.lock:
            return self._now if self._now is not None else datetime.now(UTC)

    # -- users, spaces, credentials ------------------------------------------------------------------------
    def add_user(self, display_name: str, email: str | None = None) -> User:
        with self.lock:
            base = _slug(email.split("@")[0]) if email else _slug(display_name)
            taken = {u.username for u in self.users.values()}
            username, n = base, 1
            while username in taken:
                n += 1
                username = f"{base}{n}"
            account_id = f"712020:{uuid.uuid5(uuid.NAMESPACE_URL, 'confluence-emulator/' + username)}"
            user = User(account_id, display_name, username, email or f"{username}@example.com")
            self.users[account_id] = user
            return user

    def user_by_username(self, username: str) -> User | None:
        with self.lock:
            return next((u for u in self.users.values() if u.username == username), None)

    def add_space(self, key: str, name: str, *, type: str = "global") -> None:
        with self.lock:
            if key in self.spaces:
                raise ValueError(f"space {key} already exists")
            # Personal spaces are recognisable by their key, as on real sites.
            kind = "personal" if key.startswith("~") and type == "global" else type
            self.spaces[key] = Space(self._next_space_id, key, name, kind)
            self._next_space_id += 1

    def add_cloud_token(self, email: str, token: str) -> None:
        with self.lock:
            self.cloud_tokens[email] = token

    def add_pat(self, token: str, username: str = "admin") -> None:
        with self.lock:
            self.pats[token] = username

    def add_password(self, username: str, password: str) -> None:
        with self.lock:
            self.passwords[username] = password

    # -- content -------------------------------------------------------------------------------------------
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
            if type not in ("page", "blogpost"):
                raise ValueError(f"unsupported content type {type}")
            if parent_id is not None:
                parent = self.get(parent_id)
                if type != "page" or parent.type != "page" or parent.space_key != space:
                    raise ValueError("a parent must be a page in the same space, and only pages have parents")
            user = author or self.default_user
            at = _aware(created) if created else self.now()
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
                parent_id=parent_id,
                labels=self._norm_labels(labels),
            )
            self.contents[content.num] = content
            return content.id

    def add_blogpost(self, space: str, title: str, body: str, **kw: Any) -> str:
        return self.add_page(space, title, body, type="blogpost", **kw)

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
        with self.lock:
            content = self.get(content_id)
            if title is not None:
                content.title = title
            if body is not None:
                content.body = body
            if labels is not None:
                content.labels = self._norm_labels(labels)
            self._bump(content, editor)

    def descendants(self, content_id: str) -> list[Content]:
        with self.lock:
            out: list[Content] = []
            frontier = [content_id]
            while frontier:
                pid = frontier.pop()
                for c in self.contents.values():
                    if c.parent_id == pid and c.type == "page":
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
                if c in moved or (c.type == "attachment" and c.parent_id in ids):
                    c.space_key = new_space
            content.parent_id = None
            self._bump(content, None)

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
            for att in [c for c in self.contents.values() if c.type == "attachment"]:
                if att.parent_id == content.id:
                    del self.contents[att.num]

    def add_attachment(self, page_id: str, filename: str, data: bytes, media_type: str, *, comment: str = "") -> str:
        """Attach a file; re-attaching the same file name makes a new version of the same attachment."""
        with self.lock:
            page = self.get(page_id)
            if page.type == "attachment":
                raise ValueError("attachments belong to pages or blog posts")
            for c in self.contents.values():
                if c.type == "attachment" and c.parent_id == page_id and c.title == filename:
                    c.data, c.media_type, c.comment = data, media_type, comment
                    self._bump(c, None)
                    return c.id
            at = self.now()
            att = Content(
                num=self._alloc(),
                type="attachment",
                space_key=page.space_key,
                title=filename,
                body="",
                status="current",
                created=at,
                created_by=self.default_user,
                version=1,
                when=at,
                by=self.default_user,
                parent_id=page_id,
                data=data,
                media_type=media_type,
                comment=comment,
            )
            self.contents[att.num] = att
            return att.id

    # -- queries used by the HTTP layer --------------------------------------------------------------------
    def ancestors(self, content: Content) -> list[Content]:
        chain: list[Content] = []
        pid = content.parent_id if content.type == "page" else None
        while pid is not None:
            try:
                parent = self.get(pid)
            except KeyError:
                break
            chain.append(parent)
            pid = parent.parent_id
        return list(reversed(chain))

    def searchable(self, content: Content) -> bool:
        # CQL finds current and archived content, never trash; attachments follow their container.
        if content.status not in ("current", "archived"):
            return False
        if content.type == "attachment" and content.parent_id is not None:
            try:
                return self.get(content.parent_id).status in ("current", "archived")
            except KeyError:
                return False
        return True


# --------------------------------------------------------------------------------------------------------------
# CQL: tokenizer, recursive-descent parser, compiled predicates
# --------------------------------------------------------------------------------------------------------------


class CqlError(ValueError):
    pass


@dataclass(frozen=True)
class _Tok:
    kind: str  # "(", ")", ",", "OP", "STR", "WORD", "EOF"
    value: str
    pos: int


@dataclass(frozen=True)
class _Value:
    text: str
    func: str | None = None
    args: tuple[str, ...] = ()


_OPS = ("!=", ">=", "<=", "!~", "=", "~", ">", "<")
_KEYWORDS = {"AND", "OR", "NOT", "IN", "ORDER", "BY", "ASC", "DESC"}
_WORD_STOP = set("()," + "\"'" + "=!~<>")
_FIELDS = {
    "space": "space",
    "space.key": "space",
    "type": "type",
    "id": "id",
    "content": "id",
    "title": "title",
    "label": "label",
    "lastmodified": "lastmodified",
    "created": "created",
    "ancestor": "ancestor",
    "parent": "parent",
    "text": "text",
}
_EQ_OPS = {"=", "!=", "in", "not in"}
_FIELD_OPS = {
    "space": _EQ_OPS,
    "type": _EQ_OPS,
    "id": _EQ_OPS,
    "label": _EQ_OPS,
    "ancestor": _EQ_OPS,
    "parent": _EQ_OPS,
    "title": _EQ_OPS | {"~", "!~"},
    "text": {"~", "!~"},
    "lastmodified": {"=", "!=", ">", ">=", "<", "<="},
    "created": {"=", "!=", ">", ">=", "<", "<="},
}
_ORDER_FIELDS = {"lastmodified", "created", "id", "title"}
_REL_RE = re.compile(r"^\s*([+-]?)(\d+)\s*([yMwdhm])\s*$")
_REL_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}

Predicate = Callable[[Content, ConfluenceState], bool]


def tokenize_cql(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            toks.append(_Tok(ch, ch, i))
            i += 1
        elif op := next((o for o in _OPS if text.startswith(o, i)), None):
            toks.append(_Tok("OP", op, i))
            i += len(op)
        elif ch in "\"'":
            start, buf = i, []
            i += 1
            while True:
                if i >= len(text):
                    raise CqlError(f"unterminated string at {start}")
                c = text[i]
                if c == "\\":
                    if i + 1 >= len(text):
                        raise CqlError("dangling escape")
                    buf.append(text[i + 1])
                    i += 2
                elif c == ch:
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
            toks.append(_Tok("STR", "".join(buf), start))
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _WORD_STOP:
                j += 1
            if j == i:
                raise CqlError(f"unexpected character {ch!r} at {i}")
            toks.append(_Tok("WORD", text[i:j], i))
            i = j
    toks.append(_Tok("EOF", "", len(text)))
    return toks


class _Parser:
    def __init__(self, text: str, tz: ZoneInfo, now: datetime) -> None:
        self.toks = tokenize_cql(text)
        self.i = 0
        # Predicate -> the ids it can only match (from `id = / in` clauses): lets a search skip the full scan,
        # as a real server's index would. Never changes an answer: the predicate still decides.
        self.id_bounds: dict[Predicate, frozenset[str]] = {}
        self.tz = tz
        self.now = now

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_kw(self, word: str, tok: _Tok | None = None) -> bool:
        tok = tok or self.peek()
        return tok.kind == "WORD" and tok.value.upper() == word

    def expect(self, kind: str) -> _Tok:
        tok = self.take()
        if tok.kind != kind:
            raise CqlError(f"expected {kind} at {tok.pos}, found {tok.value or tok.kind!r}")
        return tok

    def parse(self) -> tuple[Predicate, list[tuple[str, bool]], frozenset[str] | None]:
        pred = self.parse_or()
        order: list[tuple[str, bool]] = []
        if self.is_kw("ORDER"):
            self.take()
            if not self.is_kw("BY"):
                raise CqlError("expected BY after ORDER")
            self.take()
            while True:
                tok = self.expect("WORD")
                name = _FIELDS.get(tok.value.lower(), tok.value.lower())
                if name not in _ORDER_FIELDS:
                    raise CqlError(f"cannot order by {tok.value}")
                desc = False
                if self.is_kw("ASC") or self.is_kw("DESC"):
                    desc = self.take().value.upper() == "DESC"
                order.append((name, desc))
                if self.peek().kind != ",":
                    break
                self.take()
        if self.peek().kind != "EOF":
            raise CqlError(f"unexpected {self.peek().value!r} at {self.peek().pos}")
        return pred, order, self.id_bounds.get(pred)

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.is_kw("OR"):
            self.take()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        pred: Predicate = lambda c, s: any(p(c, s) for p in parts)  # noqa: E731
        if all(p in self.id_bounds for p in parts):
            self.id_bounds[pred] = frozenset().union(*(self.id_bounds[p] for p in parts))
        return pred

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while self.is_kw("AND"):
            self.take()
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        pred: Predicate = lambda c, s: all(p(c, s) for p in parts)  # noqa: E731
        bounded = [self.id_bounds[p] for p in parts if p in self.id_bounds]
        if bounded:
            self.id_bounds[pred] = frozenset.intersection(*bounded)
        return pred

    def parse_not(self) -> Predicate:
        if self.is_kw("NOT"):
            self.take()
            inner = self.parse_not()
            return lambda c, s: not inner(c, s)
        if self.peek().kind == "(":
            self.take()
            inner = self.parse_or()
            self.expect(")")
            return inner
        return self.parse_clause()

    def parse_value(self) -> _Value:
        tok = self.take()
        if tok.kind == "STR":
            return _Value(tok.value)
        if tok.kind != "WORD" or tok.value.upper() in _KEYWORDS:
            raise CqlError(f"expected a value at {tok.pos}")
        if self.peek().kind == "(":
            self.take()
            args: list[str] = []
            while self.peek().kind != ")":
                arg = self.take()
                if arg.kind not in ("STR", "WORD"):
                    raise CqlError(f"bad function argument at {arg.pos}")
                args.append(arg.value)
                if self.peek().kind == ",":
                    self.take()
            self.expect(")")
            return _Value(tok.value, func=tok.value.lower(), args=tuple(args))
        return _Value(tok.value)

    def parse_clause(self) -> Predicate:
        tok = self.expect("WORD")
        fname = _FIELDS.get(tok.value.lower())
        if fname is None:
            raise CqlError(f"unknown field {tok.value}")
        if self.is_kw("NOT") and self.is_kw("IN", self.toks[self.i + 1]):
            self.i += 2
            op = "not in"
        elif self.is_kw("IN"):
            self.take()
            op = "in"
        else:
            op = self.expect("OP").value
        if op not in _FIELD_OPS[fname]:
            raise CqlError(f"operator {op} is not supported for {fname}")
        if op in ("in", "not in"):
            self.expect("(")
            values = [self.parse_value()]
            while self.peek().kind == ",":
                self.take()
                values.append(self.parse_value())
            self.expect(")")
        else:
            values = [self.parse_value()]
        return self.compile(fname, op, values)

    # -- compile one clause into a predicate -----------------------------------------------------------
    def compile(self, fname: str, op: str, values: list[_Value]) -> Predicate:
        if fname in ("lastmodified", "created"):
            return self.compile_date(fname, op, values[0])
        if any(v.func for v in values):
            raise CqlError(f"functions are not supported for {fname}")
        wanted = [v.text for v in values]
        if fname in ("title", "text") and op in ("~", "!~"):
            needle = wanted[0].strip("*").lower()

            def contains(c: Content, s: ConfluenceState) -> bool:
                hay = c.title if fname == "title" else f"{c.title}\n{c.body}"
                return needle in hay.lower()

            return contains if op == "~" else (lambda c, s: not contains(c, s))
        fold = fname in ("space", "type", "title", "label")
        wanted_set = {w.lower() if fold else w for w in wanted}

        def field_values(c: Content, s: ConfluenceState) -> list[str]:
            if fname == "space":
                return [c.space_key]
            if fname == "type":
                return [c.type]
            if fname == "id":
                return [c.id, str(c.num)]
            if fname == "title":
                return [c.title]
            if fname == "label":
                return c.labels
            if fname == "parent":
                return [c.parent_id] if c.type == "page" and c.parent_id else []
            return [a.id for a in s.ancestors(c)]  # ancestor

        def match(c: Content, s: ConfluenceState) -> bool:
            have = field_values(c, s)
            return any((h.lower() if fold else h) in wanted_set for h in have)

        if op in ("=", "in"):
            if fname == "id":
                self.id_bounds[match] = frozenset(wanted_set)
            return match
        return lambda c, s: not match(c, s)

    def compile_date(self, fname: str, op: str, value: _Value) -> Predicate:
        bound, unit = self.date_value(value)

        def floor(dt: datetime) -> datetime:
            # CQL compares in the site zone at the precision of the query: minutes (or days).
            local = dt.astimezone(self.tz).replace(tzinfo=None, second=0, microsecond=0)
            return local.replace(hour=0, minute=0) if unit == "day" else local

        compare: dict[str, Callable[[datetime], bool]] = {
            "=": lambda t: t == bound,
            "!=": lambda t: t != bound,
            ">": lambda t: t > bound,
            ">=": lambda t: t >= bound,
            "<": lambda t: t < bound,
            "<=": lambda t: t <= bound,
        }
        test = compare[op]
        if fname == "created":
            return lambda c, s: test(floor(c.created))
        return lambda c, s: test(floor(c.when))

    def date_value(self, value: _Value) -> tuple[datetime, str]:
        if value.func is not None:
            if value.func != "now":
                raise CqlError(f"unsupported function {value.text}()")
            local_now = self.now.astimezone(self.tz).replace(tzinfo=None, second=0, microsecond=0)
            if not value.args or not value.args[0].strip():
                return local_now, "minute"
            m = _REL_RE.match(value.args[0])
            if m is None:
                raise CqlError(f"bad relative date {value.args[0]!r}")
            sign = -1 if m.group(1) == "-" else 1
            amount, unit = int(m.group(2)) * sign, m.group(3)
            if unit in _REL_UNITS:
                return local_now + amount * _REL_UNITS[unit], "minute"
            months = amount * (12 if unit == "y" else 1)
            y, mo = divmod(local_now.month - 1 + months, 12)
            return local_now.replace(year=local_now.year + y, month=mo + 1, day=min(local_now.day, 28)), "minute"
        text = value.text.strip().replace("/", "-")
        for fmt, unit in (("%Y-%m-%d %H:%M", "minute"), ("%Y-%m-%d", "day")):
            try:
                return datetime.strptime(text, fmt), unit
            except ValueError:
                continue
        raise CqlError(f"bad date {value.text!r}")


@dataclass
class CqlQuery:
    predicate: Predicate
    order: list[tuple[str, bool]]
    id_bound: frozenset[str] | None = None  # the query can match only these ids (or numbers)

    def candidates(self, state: ConfluenceState) -> list[Content]:
        if self.id_bound is None:
            return list(state.contents.values())
        nums = {int(i.removeprefix("att")) for i in self.id_bound if i.removeprefix("att").isdigit()}
        return [state.contents[n] for n in sorted(nums) if n in state.contents]

    def run(self, state: ConfluenceState, candidates: list[Content]) -> list[Content]:
        hits = sorted((c for c in candidates if self.predicate(c, state)), key=lambda c: c.num)
        # Sorts are stable, so applying keys from last to first gives a multi-key order with id as tiebreak.
        for name, desc in reversed(self.order):
            key: Callable[[Content], Any] = {
                "lastmodified": lambda c: c.when,
                "created": lambda c: c.created,
                "id": lambda c: c.num,
                "title": lambda c: c.title.lower(),
            }[name]
            hits.sort(key=key, reverse=desc)
        return hits


def parse_cql(text: str, tz: ZoneInfo, now: datetime) -> CqlQuery:
    predicate, order, id_bound = _Parser(text, tz, now).parse()
    return CqlQuery(predicate, order, id_bound)


# --------------------------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------------------------


class _Reply(Exception):
    """Raised by handlers to answer early with a prepared response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON as Confluence sends it (UTF-8). orjson: at 50 bodies a response, encoding was a third of the
    emulator's time, and the emulator shares the machine with the client it serves."""
    try:
        raw = orjson.dumps(body)
    except TypeError:
        raw = json.dumps(body).encode()
    return web.Response(body=raw, status=status, headers=headers, content_type="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {
        "statusCode": status,
        "data": {"authorized": status not in (401, 403), "valid": True, "errors": [], "successful": False},
        "message": message,
    }
    return _json_response(body, status=status, headers=headers)


def _parse_expand(request: web.Request) -> ExpandTree:
    tree: ExpandTree = {}
    for raw in request.query.getall("expand", []):
        for part in raw.split(","):
            node = tree
            for seg in (s for s in part.strip().split(".") if s):
                node = node.setdefault(seg, {})
    return tree


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Reply(_error(400, f"{name} must be an integer")) from None
    if value < 0:
        raise _Reply(_error(400, f"{name} must not be negative"))
    return value


def _tinyui(num: int) -> str:
    raw = num.to_bytes(8, "little").rstrip(b"\0") or b"\0"
    return "/x/" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _http_date_or_seconds(value: str, now: datetime) -> datetime:
    try:
        return now + timedelta(seconds=float(value))
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return now + timedelta(seconds=1)


class ConfluenceEmulator:
    def __init__(
        self,
        state: ConfluenceState | None = None,
        *,
        edition: Edition = "cloud",
        context_path: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if edition not in ("cloud", "dc"):
            raise ValueError(f"unknown edition {edition}")
        self.state = state or ConfluenceState()
        self.edition: Edition = edition
        ctx = context_path.strip().rstrip("/")
        if ctx and not ctx.startswith("/"):
            ctx = "/" + ctx
        # Cloud always lives under /wiki; a DC context path is whatever the admin configured.
        self.context = "/wiki" if edition == "cloud" else ctx
        self.host = host
        self._port = port
        self._bound_port: int | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._media_tokens: dict[str, tuple[str, float]] = {}

    # -- addresses -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("emulator is not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"  # a few thousand calls per response of 50 items: cheap enough

    @property
    def endpoint(self) -> str:
        return self.base_url + self.context

    @property
    def cloud(self) -> bool:
        return self.edition == "cloud"

    # -- lifecycle -----------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        p = self.context + "/rest/api"
        routes = [
            web.get(p + "/space", self._spaces),
            web.get(p + "/space/{key}", self._space),
            web.get(p + "/content", self._contents),
            web.get(p + "/content/search", self._search),
            web.get(p + "/search", self._generic_search),
            web.get(p + "/content/{id}", self._content),
            web.get(p + "/content/{id}/child/page", self._child_pages),
            web.get(p + "/content/{id}/child/attachment", self._child_attachments),
            web.get(p + "/content/{id}/restriction/byOperation", self._restrictions),
            web.get(self.context + "/download/attachments/{page}/{filename}", self._legacy_download),
        ]
        if self.cloud:
            routes += [
                web.get(p + "/content/{id}/child/attachment/{att}/download", self._rest_download),
                web.get("/media/{token}/{att}", self._media, name="media"),
            ]
        app.add_routes(routes)
        return app

    async def start_async(self) -> None:
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        await site.start()
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])

    async def stop_async(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def start(self) -> None:
        """Serve from a daemon thread with its own event loop; returns once the socket listens."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="confluence-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("emulator did not start within 10 seconds")
        if failure:
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._thread = self._loop = None

    def __enter__(self) -> ConfluenceEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request pipeline ----------------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        state = self.state
        if state.latency_s > 0:
            await asyncio.sleep(state.latency_s)
        record = RequestRecord(request.method, request.path, dict(request.query), 0, False)
        try:
            response = await self._dispatch(request, handler, record)
        except _Reply as reply:
            response = reply.response
        except web.HTTPException as exc:
            # Unknown paths and methods answer in Confluence's JSON error shape.
            response = _error(exc.status, exc.reason)
        record.status = response.status
        with state.lock:
            state.requests.append(record)
        return response

    async def _dispatch(self, request: web.Request, handler: Handler, record: RequestRecord) -> web.StreamResponse:
        state = self.state
        if request.match_info.route.name == "media":
            # The media host is separate from Confluence: no Confluence auth, no rate limit.
            record.auth_ok = True
            return await handler(request)
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        record.auth_ok = True
        fault = self._take_fault()
        if fault is not None:
            return fault
        response = await handler(request)
        if isinstance(response, web.Response) and response.status == 200:
            with state.lock:
                malformed = state.malformed_next > 0 and response.content_type == "application/json"
                if malformed:
                    state.malformed_next -= 1
            if malformed and isinstance(response.body, bytes):
                # Cutting the document in half always leaves an unbalanced, unparseable JSON text.
                response.body = response.body[: max(1, len(response.body) // 2)]
        return response

    def _authenticate(self, request: web.Request) -> web.Response | None:
        state = self.state
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        user: str | None = None
        secret: str | None = None
        if scheme == "basic":
            try:
                user, _, secret = base64.b64decode(credential.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = None
        with state.lock:
            if self.cloud:
                if user is None or secret is None:
                    return _error(401, "Unauthorized", {"WWW-Authenticate": f'Basic realm="{self.endpoint}"'})
                expected = state.cloud_tokens.get(user)
                if expected is not None and hmac.compare_digest(expected, secret):
                    return None
                # Real Cloud answers a wrong API token with 403, not 401.
                return _error(403, "Current user not permitted to use Confluence")
            if scheme == "bearer" and credential.strip() in state.pats:
                return None
            if user is not None and secret is not None:
                expected = state.passwords.get(user)
                if expected is not None and hmac.compare_digest(expected, secret):
                    return None
            reason = "AUTHENTICATED_FAILED" if header else "AUTHENTICATION_DENIED"
            return _error(
                401,
                "This request requires authentication" if not header else "Authentication failed",
                {"WWW-Authenticate": 'Basic realm="Confluence"', "X-Seraph-LoginReason": reason},
            )

    def _take_fault(self) -> web.Response | None:
        state = self.state
        with state.lock:
            if state.rate_limit_next > 0:
                state.rate_limit_next -= 1
                return self._rate_limited()
            if state.fail_next:
                status = state.fail_next.pop(0)
                headers = {"Retry-After": state.retry_after} if status == 503 else None
                return _error(status, "Injected failure", headers)
        return None

    def _rate_limited(self) -> web.Response:
        state = self.state
        if not self.cloud and state.dc_rate_limit_as_403:
            return web.Response(status=403, text="Rate limit exceeded", content_type="text/plain")
        reset = _http_date_or_seconds(state.retry_after, datetime.now(UTC))
        headers = {
            "Retry-After": state.retry_after,
            "X-RateLimit-Limit": "100" if self.cloud else "20",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if self.cloud:
            headers["X-RateLimit-NearLimit"] = "true"
        else:
            headers["X-RateLimit-Interval-Seconds"] = "1"
            headers["X-RateLimit-FillRate"] = "1"
        return _error(429, "Rate limit exceeded", headers)

    # -- rendering -----------------------------------------------------------------------------------------
    def _iso(self, dt: datetime) -> str:
        if self.cloud:
            return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return dt.astimezone(self.state.tz).isoformat(timespec="milliseconds")

    def _user_json(self, user: User) -> JSON:
        if self.cloud:
            return {
                "type": "known",
                "accountId": user.account_id,
                "accountType": "atlassian",
                "publicName": user.display_name,
                "displayName": user.display_name,
                "isExternalCollaborator": False,
                "_expandable": {"operations": "", "personalSpace": ""},
                "_links": {"self": f"{self.endpoint}/rest/api/user?accountId={user.account_id}"},
            }
        return {
            "type": "known",
            "username": user.username,
            "userKey": user.user_key,
            "displayName": user.display_name,
            "_links": {"self": f"{self.endpoint}/rest/api/user?key={user.user_key}"},
        }

    def _space_json(self, space: Space) -> JSON:
        return {
            "id": space.id,
            "key": space.key,
            "name": space.name,
            "type": space.type,
            "status": "current",
            "_expandable": {
                "settings": f"/rest/api/space/{space.key}/settings",
                "metadata": "",
                "operations": "",
                "lookAndFeel": f"/rest/api/settings/lookandfeel?spaceKey={space.key}",
                "permissions": "",
                "icon": "",
                "description": "",
                "theme": f"/rest/api/space/{space.key}/theme",
                "history": "",
                "homepage": "",
            },
            "_links": {
                "webui": f"/spaces/{space.key}" if self.cloud else f"/display/{space.key}",
                "self": f"{self.endpoint}/rest/api/space/{space.key}",
            },
        }

    def _version_json(self, c: Content) -> JSON:
        return {
            "by": self._user_json(c.by),
            "when": self._iso(c.when),
            "message": "",
            "number": c.version,
            "minorEdit": False,
            "_expandable": {"content": f"/rest/api/content/{c.id}", "collaborators": ""},
            "_links": {"self": f"{self.endpoint}/rest/experimental/content/{c.id}/version/{c.version}"},
        }

    def _links(self, c: Content) -> JSON:
        links: JSON = {}
        if c.type == "attachment":
            pid = c.parent_id or ""
            preview = quote(f"/{pid}/{c.id}/{c.title}", safe="")
            links["webui"] = f"/pages/viewpageattachments.action?pageId={pid}&preview={preview}"
            ms = int(c.when.timestamp() * 1000)
            extra = "&cacheVersion=1&api=v2" if self.cloud else "&api=v2"
            links["download"] = (
                f"/download/attachments/{pid}/{quote(c.title)}?version={c.version}&modificationDate={ms}{extra}"
            )
        elif self.cloud and c.type == "blogpost":
            day = c.created.astimezone(UTC)
            links["webui"] = f"/spaces/{c.space_key}/blog/{day:%Y/%m/%d}/{c.id}/{quote_plus(c.title)}"
        elif self.cloud:
            links["webui"] = f"/spaces/{c.space_key}/pages/{c.id}/{quote_plus(c.title)}"
        else:
            links["webui"] = f"/pages/viewpage.action?pageId={c.id}"
        if c.type != "attachment":
            links["edit"] = f"/pages/resumedraft.action?draftId={c.id}"
            links["tinyui"] = _tinyui(c.num)
        links["self"] = f"{self.endpoint}/rest/api/content/{c.id}"
        return links

    def _brief_json(self, c: Content) -> JSON:
        return {
            "id": c.id,
            "type": c.type,
            "status": c.status,
            "title": c.title,
            "_links": self._links(c),
            "_expandable": {"container": "", "body": "", "version": "", "space": "", "history": ""},
        }

    def _content_json(self, c: Content, exp: ExpandTree) -> JSON:
        state = self.state
        out: JSON = {"id": c.id, "type": c.type, "status": c.status, "title": c.title}
        expandable: JSON = {}
        space = state.spaces.get(c.space_key)
        if "space" in exp and space is not None:
            out["space"] = self._space_json(space)
        else:
            expandable["space"] = f"/rest/api/space/{c.space_key}"
        if "history" in exp:
            history: JSON = {
                "latest": True,
                "createdBy": self._user_json(c.created_by),
                "createdDate": self._iso(c.created),
            }
            if "lastUpdated" in exp["history"]:
                history["lastUpdated"] = self._version_json(c)
            else:
                history["_expandable"] = {"lastUpdated": "", "previousVersion": "", "contributors": ""}
            history["_links"] = {"self": f"{self.endpoint}/rest/api/content/{c.id}/history"}
            out["history"] = history
        else:
            expandable["history"] = f"/rest/api/content/{c.id}/history"
        if "version" in exp:
            out["version"] = self._version_json(c)
        else:
            expandable["version"] = ""
        if "ancestors" in exp:
            out["ancestors"] = [self._brief_json(a) for a in state.ancestors(c)]
        else:
            expandable["ancestors"] = ""
        if "body" in exp:
            out["body"] = self._body_json(c, exp["body"])
        else:
            expandable["body"] = ""
        metadata: JSON = {}
        if c.type == "attachment":
            metadata.update({"mediaType": c.media_type, "comment": c.comment})
        if "metadata" in exp and "labels" in exp["metadata"]:
            labels = [{"prefix": "global", "name": n, "id": str(state._label_id(n)), "label": n} for n in c.labels]
            metadata["labels"] = {
                "results": labels,
                "start": 0,
                "limit": 200,
                "size": len(labels),
                "_links": {"self": f"{self.endpoint}/rest/api/content/{c.id}/label"},
            }
        if metadata or "metadata" in exp:
            metadata["_expandable"] = {"currentuser": "", "properties": "", "frontend": "", "likes": ""}
            out["metadata"] = metadata
        else:
            expandable["metadata"] = ""
        if "container" in exp:
            if c.type == "attachment" and c.parent_id is not None:
                try:
                    out["container"] = self._brief_json(state.get(c.parent_id))
                except KeyError:
                    out["container"] = {}
            elif space is not None:
                out["container"] = self._space_json(space)
        elif c.type == "attachment":
            expandable["container"] = f"/rest/api/content/{c.parent_id}"
        else:
            expandable["container"] = f"/rest/api/space/{c.space_key}"
        if c.type == "attachment":
            out["extensions"] = {"mediaType": c.media_type, "fileSize": len(c.data), "comment": c.comment}
        expandable.update(
            {
                "children": f"/rest/api/content/{c.id}/child",
                "descendants": f"/rest/api/content/{c.id}/descendant",
                "restrictions": f"/rest/api/content/{c.id}/restriction/byOperation",
                "operations": "",
            }
        )
        out["_links"] = self._links(c)
        out["_expandable"] = expandable
        return out

    def _body_json(self, c: Content, exp: ExpandTree) -> JSON:
        body: JSON = {}
        reps = ["storage", "view", "export_view", "styled_view", "editor", "anonymous_export_view"]
        for rep in reps:
            if rep in exp:
                # The emulator renders views as the storage XHTML itself; connectors should prefer storage.
                body[rep] = {
                    "value": c.body,
                    "representation": rep,
                    "_expandable": {"content": f"/rest/api/content/{c.id}"},
                }
        body["_expandable"] = {rep: "" for rep in reps if rep not in exp}
        return body

    # -- paging --------------------------------------------------------------------------------------------
    def _effective_limit(self, request: web.Request, exp: ExpandTree) -> int:
        state = self.state
        requested = _int_param(request, "limit", 25)
        if requested < 1:
            raise _Reply(_error(400, "limit must be positive"))
        if self.cloud:
            cap = state.cloud_body_cap if "body" in exp else state.cloud_cap
        elif "body" in exp:
            cap = state.dc_body_cap
        else:
            cap = state.dc_expand_cap if exp else state.dc_plain_cap
        limit = min(requested, cap)
        over = state.timeout_body_pages_over
        if over is not None and "body" in exp and limit > over:
            # Big pages of bodies make the proxy in front of Confluence give up.
            html = (
                "<html><head><title>504 Gateway Time-out</title></head>"
                "<body><h1>504 Gateway Time-out</h1></body></html>"
            )
            raise _Reply(web.Response(status=504, text=html, content_type="text/html"))
        return limit

    def _start(self, request: web.Request) -> int:
        start = _int_param(request, "start", 0)
        if self.cloud and start > CLOUD_MAX_START:
            raise _Reply(_error(400, f"start must be at most {CLOUD_MAX_START}"))
        return start

    def _next_start(self, total: int, start: int, limit: int, size: int) -> int | None:
        state = self.state
        nxt: int | None = start + limit
        if start + limit >= total:
            # An exhausted listing has no next link, unless emulating the extra empty page quirk.
            nxt = start + limit if state.empty_page_with_next and start < total + limit else None
        if nxt is not None and not self.cloud and state.dc_miscount_start and size > 1:
            nxt -= min(max(1, size // 4), size - 1)
        return nxt

    def _rel(self, request: web.Request) -> str:
        return request.path[len(self.context) :]

    def _link(self, request: web.Request, **params: str | int) -> str:
        kept = [(k, v) for k, v in request.query.items() if k not in ("start", "limit", "cursor", "next")]
        pairs: list[tuple[str, str | int]] = [*kept, *params.items()]
        return self._rel(request) + "?" + urlencode(pairs, quote_via=quote, safe=",")

    def _list_json(self, request: web.Request, results: list[JSON], start: int, limit: int, nxt: str | None) -> JSON:
        self_url = self.endpoint + self._rel(request)
        if request.rel_url.raw_query_string:
            self_url += "?" + request.rel_url.raw_query_string
        links: JSON = {"base": self.endpoint, "context": self.context}
        if nxt is not None:
            links["next"] = nxt
        links["self"] = self_url
        return {"results": results, "start": start, "limit": limit, "size": len(results), "_links": links}

    def _paged(self, request: web.Request, items: list[Content], exp: ExpandTree) -> web.Response:
        limit = self._effective_limit(request, exp)
        start = self._start(request)
        page = items[start : start + limit]
        nxt = self._next_start(len(items), start, limit, len(page))
        link = None if nxt is None else self._link(request, limit=limit, start=nxt)
        results = [self._content_json(c, exp) for c in page]
        return _json_response(self._list_json(request, results, start, limit, link))

    # -- Cloud cursors -------------------------------------------------------------------------------------
    def _cursor(self, position: int, limit: int, cql: str) -> str:
        digest = hashlib.sha256(cql.encode()).hexdigest()[:12]
        raw = json.dumps({"p": position, "l": limit, "q": digest}, separators=(",", ":")).encode()
        return "_f_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_cursor(self, cursor: str, limit: int, cql: str) -> int:
        invalid = _Reply(_error(400, "Invalid cursor"))
        if not cursor.startswith("_f_"):
            raise invalid
        payload = cursor[3:]
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            position, old_limit, digest = int(data["p"]), int(data["l"]), str(data["q"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise invalid from None
        if digest != hashlib.sha256(cql.encode()).hexdigest()[:12] or position < 0 or old_limit < 1:
            raise invalid
        if old_limit != limit:
            if self.state.cloud_cursor_strict_limit:
                raise _Reply(_error(400, "The limit cannot change while paging with a cursor"))
            # The cursor remembers a page number, not an offset: a larger limit skips results.
            position = (position // old_limit) * limit
        return position

    # -- handlers ------------------------------------------------------------------------------------------
    async def _spaces(self, request: web.Request) -> web.Response:
        state = self.state
        keys = set(request.query.getall("spaceKey", []))
        kind = request.query.get("type")
        limit = min(_int_param(request, "limit", 25), state.cloud_cap if self.cloud else state.dc_plain_cap)
        start = self._start(request)
        with state.lock:
            spaces = sorted(state.spaces.values(), key=lambda s: s.key)
            spaces = [s for s in spaces if (not keys or s.key in keys) and (not kind or s.type == kind)]
            page = spaces[start : start + limit]
            nxt = self._next_start(len(spaces), start, limit, len(page))
            link = None if nxt is None else self._link(request, limit=limit, start=nxt)
            results = [self._space_json(s) for s in page]
        return _json_response(self._list_json(request, results, start, limit, link))

    async def _space(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        with self.state.lock:
            space = self.state.spaces.get(key)
            if space is None:
                return _error(404, f"No space found with key : {key}")
            return _json_response(self._space_json(space))

    def _statuses(self, request: web.Request) -> set[str]:
        raw = [s for v in request.query.getall("status", []) for s in v.split(",") if s.strip()]
        wanted = {s.strip().lower() for s in raw} or {"current"}
        if "any" in wanted:
            return set(_CONTENT_STATUSES)
        unknown = wanted - set(_CONTENT_STATUSES)
        if unknown:
            raise _Reply(_error(400, f"Invalid status: {', '.join(sorted(unknown))}"))
        return wanted

    async def _contents(self, request: web.Request) -> web.Response:
        state = self.state
        exp = _parse_expand(request)
        ctype = request.query.get("type", "page")
        if ctype not in ("page", "blogpost"):
            raise _Reply(_error(400, f"Unsupported content type: {ctype}"))
        statuses = self._statuses(request)
        space_key = request.query.get("spaceKey")
        title = request.query.get("title")
        with state.lock:
            items = [
                c
                for c in sorted(state.contents.values(), key=lambda c: c.num)
                if c.type == ctype
                and c.status in statuses
                and (space_key is None or c.space_key == space_key)
                and (title is None or c.title == title)
            ]
            return self._paged(request, items, exp)

    def _cql_page(self, request: web.Request, exp: ExpandTree) -> tuple[str, list[Content], int, int, int, str | None]:
        """(cql, page of hits, start, limit, total, next link) of a CQL request, for both search routes."""
        state = self.state
        cql = request.query.get("cql", "")
        if not cql.strip():
            raise _Reply(_error(400, "The CQL query parameter is required"))
        limit = self._effective_limit(request, exp)
        cursor = request.query.get("cursor") if self.cloud else None
        start = self._decode_cursor(cursor, limit, cql) if cursor else self._start(request)
        with state.lock:
            try:
                query = parse_cql(cql, state.tz, state.now())
            except CqlError as exc:
                bad = _error(400, f"Could not parse cql : {cql}")
                bad.headers["X-Emulator-Cql-Error"] = quote(str(exc))
                raise _Reply(bad) from exc
            hits = query.run(state, [c for c in query.candidates(state) if state.searchable(c)])
            page = hits[start : start + limit]
            nxt = self._next_start(len(hits), start, limit, len(page))
        link = None
        if nxt is not None and self.cloud:
            link = self._link(request, next="true", cursor=self._cursor(nxt, limit, cql), limit=limit)
        elif nxt is not None:
            link = self._link(request, limit=limit, start=nxt)
        return cql, page, start, limit, len(hits), link

    def _search_extras(self, request: web.Request, body: JSON, cql: str, start: int, limit: int, total: int) -> None:
        body["totalSize"] = total
        body["cqlQuery"] = cql
        body["searchDuration"] = 1
        self._cloud_prev_link(request, body, cql, start, limit)

    def _cloud_prev_link(self, request: web.Request, body: JSON, cql: str, start: int, limit: int) -> None:
        if self.cloud and start > 0:
            prev = max(0, start - limit)
            body["_links"]["prev"] = self._link(
                request, prev="true", cursor=self._cursor(prev, limit, cql), limit=limit
            )

    async def _search(self, request: web.Request) -> web.Response:
        """`/content/search`: content objects. Data Center's answer also counts all hits (`totalSize`); Cloud's
        (a ContentArray) does not."""
        exp = _parse_expand(request)
        cql, page, start, limit, total, link = self._cql_page(request, exp)
        with self.state.lock:
            results = [self._content_json(c, exp) for c in page]
        body = self._list_json(request, results, start, limit, link)
        if self.cloud:
            self._cloud_prev_link(request, body, cql, start, limit)
        else:
            self._search_extras(request, body, cql, start, limit, total)
        return _json_response(body)

    async def _generic_search(self, request: web.Request) -> web.Response:
        """`/rest/api/search`: search results wrapping the content, with `totalSize` on both editions."""
        exp = _parse_expand(request)
        content_exp = exp.get("content", {})
        cql, page, start, limit, total, link = self._cql_page(request, content_exp)
        with self.state.lock:
            results = []
            for c in page:
                content = self._content_json(c, content_exp)
                results.append(
                    {
                        "content": content,
                        "title": c.title,
                        "excerpt": "",
                        "url": content["_links"]["webui"],
                        "entityType": "content",
                        "lastModified": self._iso(c.when),
                        "score": 1.0,
                    }
                )
        body = self._list_json(request, results, start, limit, link)
        self._search_extras(request, body, cql, start, limit, total)
        return _json_response(body)

    async def _restrictions(self, request: web.Request) -> web.Response:
        """No page here carries restrictions: read and update restricted to nobody, as for an ordinary page."""
        content = self._visible(request, request.match_info["id"])
        empty: JSON = {"user": {"results": [], "size": 0}, "group": {"results": [], "size": 0}}
        return _json_response(
            {
                op: {"operation": op, "restrictions": empty, "content": {"id": content.id, "type": content.type}}
                for op in ("read", "update")
            }
        )

    def _visible(self, request: web.Request, content_id: str) -> Content:
        state = self.state
        statuses = self._statuses(request) if "status" in request.query else {"current", "archived"}
        try:
            content = state.get(content_id)
        except KeyError:
            content = None
        if content is None or content.status not in statuses:
            raise _Reply(_error(404, f"No content found with id : ContentId{{id={content_id}}}"))
        return content

    async def _content(self, request: web.Request) -> web.Response:
        exp = _parse_expand(request)
        with self.state.lock:
            content = self._visible(request, request.match_info["id"])
            return _json_response(self._content_json(content, exp))

    async def _child_pages(self, request: web.Request) -> web.Response:
        state = self.state
        exp = _parse_expand(request)
        with state.lock:
            parent = self._visible(request, request.match_info["id"])
            items = [
                c
                for c in sorted(state.contents.values(), key=lambda c: c.num)
                if c.type == "page" and c.parent_id == parent.id and c.status == "current"
            ]
            return self._paged(request, items, exp)

    async def _child_attachments(self, request: web.Request) -> web.Response:
        state = self.state
        exp = _parse_expand(request)
        filename = request.query.get("filename")
        media_type = request.query.get("mediaType")
        with state.lock:
            parent = self._visible(request, request.match_info["id"])
            items = [
                c
                for c in sorted(state.contents.values(), key=lambda c: c.num)
                if c.type == "attachment"
                and c.parent_id == parent.id
                and c.status == "current"
                and (filename is None or c.title == filename)
                and (media_type is None or c.media_type == media_type)
            ]
            return self._paged(request, items, exp)

    def _attachment(self, page_id: str, match: Callable[[Content], bool]) -> Content:
        with self.state.lock:
            for c in self.state.contents.values():
                if c.type == "attachment" and c.parent_id == page_id and c.status == "current" and match(c):
                    return c
        raise _Reply(_error(404, "Attachment not found"))

    async def _rest_download(self, request: web.Request) -> web.Response:
        att_id = request.match_info["att"]
        att = self._attachment(request.match_info["id"], lambda c: c.id == att_id)
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            now = time.monotonic()
            self._media_tokens = {k: v for k, v in self._media_tokens.items() if v[1] > now}
            self._media_tokens[token] = (att.id, now + MEDIA_TOKEN_TTL_S)
        location = f"{self.base_url}/media/{token}/{att.id}"
        return web.Response(status=302, headers={"Location": location})

    async def _media(self, request: web.Request) -> web.Response:
        token, att_id = request.match_info["token"], request.match_info["att"]
        with self.state.lock:
            grant = self._media_tokens.get(token)
            if grant is None or grant[0] != att_id or grant[1] < time.monotonic():
                return _json_response({"error": "invalid or expired token"}, status=401)
            try:
                att = self.state.get(att_id)
            except KeyError:
                return _json_response({"error": "file not found"}, status=404)
            data, media_type, name = att.data, att.media_type, att.title
        disposition = f"attachment; filename*=UTF-8''{quote(name)}"
        return web.Response(body=data, content_type=media_type, headers={"Content-Disposition": disposition})

    async def _legacy_download(self, request: web.Request) -> web.Response:
        if self.cloud:
            # Cloud removed the servlet download path for API tokens; only the REST redirect works.
            return _error(401, "Unauthorized", {"WWW-Authenticate": f'OAuth realm="{self.endpoint}"'})
        name = request.match_info["filename"]
        att = self._attachment(request.match_info["page"], lambda c: c.title == name)
        disposition = f"attachment; filename*=UTF-8''{quote(att.title)}"
        return web.Response(body=att.data, content_type=att.media_type, headers={"Content-Disposition": disposition})


# --------------------------------------------------------------------------------------------------------------
# Demo site
# --------------------------------------------------------------------------------------------------------------


def _mention(user: User, edition: Edition) -> str:
    attr = f'ri:account-id="{user.account_id}"' if edition == "cloud" else f'ri:userkey="{user.user_key}"'
    return f"<ac:link><ri:user {attr} /></ac:link>"


def _code(language: str, code: str) -> str:
    return (
        f'<ac:structured-macro ac:name="code" ac:schema-version="1">'
        f'<ac:parameter ac:name="language">{language}</ac:parameter>'
        f"<ac:plain-text-body><![CDATA[{code}]]></ac:plain-text-body></ac:structured-macro>"
    )


def _panel(kind: str, html: str) -> str:
    return (
        f'<ac:structured-macro ac:name="{kind}" ac:schema-version="1">'
        f"<ac:rich-text-body>{html}</ac:rich-text-body></ac:structured-macro>"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th><p>{h}</p></th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td><p>{v}</p></td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tbody><tr>{head}</tr>{body}</tbody></table>"


def seed_demo(state: ConfluenceState, *, edition: Edition = "cloud") -> JSON:
    """Create a small, realistic site: DOCS (page tree, blog posts, attachments) and OPS, plus demo credentials."""
    alice = state.add_user("Alice Nguyen", "alice@example.com")
    bob = state.add_user("Bob Martin", "bob@example.com")
    carol = state.add_user("Carol Diaz", "carol@example.com")
    state.add_cloud_token("demo@example.com", "demo-token")
    state.add_pat("demo-pat", "admin")
    state.add_password("admin", "admin")
    state.add_space("DOCS", "Engineering Docs")
    state.add_space("OPS", "Operations")
    base = state.now() - timedelta(days=30)
    pages: dict[str, str] = {}

    def page(title: str, body: str, parent: str | None, labels: Sequence[str], day: int, who: User) -> str:
        pid = state.add_page(
            "DOCS",
            title,
            body,
            parent_id=pages.get(parent) if parent else None,
            labels=labels,
            author=who,
            created=base + timedelta(days=day, hours=9),
        )
        pages[title] = pid
        return pid

    drawio = (
        '<ac:structured-macro ac:name="drawio" ac:schema-version="1" ac:macro-id="6f0c2a7e-0d1b-4c1e-9a53-drawio01">'
        '<ac:parameter ac:name="diagramName">platform-architecture</ac:parameter>'
        '<ac:parameter ac:name="revision">3</ac:parameter></ac:structured-macro>'
    )
    page(
        "Engineering Docs Home",
        "<h1>Welcome</h1><p>This space holds the engineering handbook: architecture, onboarding and runbooks.</p>"
        + _panel("info", "<p>Start with the <strong>Onboarding Guide</strong> if you are new.</p>")
        + "<ul><li><p>Architecture Overview</p></li><li><p>Runbooks</p></li><li><p>API Reference</p></li></ul>",
        None,
        ["home", "handbook"],
        0,
        alice,
    )
    page(
        "Architecture Overview",
        "<h1>Architecture Overview</h1><p>The platform is a set of small services behind an API gateway.</p>"
        + drawio
        + "<h2>Principles</h2><ol><li><p>Services own their data.</p></li><li><p>Events over calls.</p></li>"
        "<li><p>Everything observable.</p></li></ol>"
        + _table(["Layer", "Technology"], [["Edge", "Envoy"], ["Services", "Python, Go"], ["Storage", "Postgres"]]),
        "Engineering Docs Home",
        ["architecture"],
        1,
        alice,
    )
    page(
        "Service Catalogue",
        "<h1>Service Catalogue</h1>"
        + _table(
            ["Service", "Owner", "Tier"],
            [["billing", "Payments", "1"], ["search", "Discovery", "2"], ["notifications", "Platform", "2"]],
        ),
        "Architecture Overview",
        ["architecture", "services"],
        2,
        bob,
    )
    page(
        "Data Flow",
        "<h1>Data Flow</h1><p>Orders flow from the storefront through Kafka into the billing service.</p>"
        + _code("python", "def handle(event: dict) -> None:\n    order = parse(event)\n    billing.charge(order)\n"),
        "Architecture Overview",
        ["architecture", "kafka"],
        3,
        bob,
    )
    page(
        "Onboarding Guide",
        "<h1>Onboarding Guide</h1><p>Your buddy for the first weeks is "
        + _mention(carol, edition)
        + ".</p><h2>First week</h2><ul><li><p>Get laptop and accounts</p></li>"
        "<li><p>Set up the development environment</p></li><li><p>Ship a small change</p></li></ul>"
        + _panel("note", "<p>Ask for access to the on-call rotation only after your second month.</p>"),
        "Engineering Docs Home",
        ["onboarding"],
        4,
        carol,
    )
    page(
        "Development Environment Setup",
        "<h1>Development Environment Setup</h1><p>Install the toolchain:</p>"
        + _code("bash", "brew install python@3.11 kubectl helm\nmake bootstrap\n")
        + _panel("warning", "<p>Never use production credentials locally.</p>"),
        "Onboarding Guide",
        ["onboarding", "tooling"],
        5,
        carol,
    )
    page(
        "Code Review Guidelines",
        "<h1>Code Review Guidelines</h1><ul><li><p>Small pull requests</p></li>"
        "<li><p>Tests for every bug fix</p></li><li><p>Review within one working day</p></li></ul>"
        "<p>Questions go to " + _mention(bob, edition) + ".</p>",
        "Onboarding Guide",
        ["onboarding", "process"],
        6,
        bob,
    )
    page(
        "Runbooks",
        "<h1>Runbooks</h1><p>Step by step procedures for operating the platform.</p>",
        "Engineering Docs Home",
        ["runbook"],
        7,
        alice,
    )
    page(
        "Deploying to Production",
        "<h1>Deploying to Production</h1><ol><li><p>Merge to main</p></li><li><p>Wait for the canary</p></li>"
        "<li><p>Promote</p></li></ol>"
        + _code("bash", "helm upgrade --install billing charts/billing -f values-prod.yaml\n")
        + _panel("warning", "<p>No deploys on Friday afternoons.</p>"),
        "Runbooks",
        ["runbook", "deploy"],
        8,
        alice,
    )
    page(
        "Incident Response",
        "<h1>Incident Response</h1><p>Incident commander this quarter: "
        + _mention(alice, edition)
        + ".</p>"
        + _table(["Severity", "Response time"], [["SEV1", "15 minutes"], ["SEV2", "1 hour"], ["SEV3", "next day"]]),
        "Runbooks",
        ["runbook", "incident"],
        9,
        carol,
    )
    page(
        "Database Migrations",
        "<h1>Database Migrations</h1><p>Migrations must be backwards compatible.</p>"
        + _code("sql", "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';\n"),
        "Runbooks",
        ["runbook", "database"],
        10,
        bob,
    )
    page(
        "API Reference",
        "<h1>API Reference</h1>"
        + _table(["Method", "Path", "Purpose"], [["GET", "/v1/orders", "List"], ["POST", "/v1/orders", "Create"]])
        + _code("json", '{\n  "id": "ord_123",\n  "amount": 1200,\n  "currency": "EUR"\n}\n'),
        "Engineering Docs Home",
        ["api"],
        11,
        alice,
    )
    page(
        "Glossary",
        "<h1>Glossary</h1>"
        + _table(["Term", "Meaning"], [["SLO", "Service level objective"], ["Canary", "Partial rollout"]]),
        "Engineering Docs Home",
        ["glossary"],
        12,
        carol,
    )
    legacy = page("Legacy Build System", "<p>Replaced by the new pipelines in 2023.</p>", None, ["legacy"], 13, bob)
    state.archive(legacy)

    blogs: dict[str, str] = {}
    for day, (title, body, who) in enumerate(
        [
            ("Welcome to the new handbook", "<p>We moved all engineering docs into this space.</p>", alice),
            ("Q3 reliability review", "<p>Availability was 99.95%. " + _mention(bob, edition) + " led it.</p>", bob),
            ("Postgres 16 upgrade done", "<p>All clusters now run Postgres 16.</p>", carol),
        ]
    ):
        blogs[title] = state.add_blogpost(
            "DOCS", title, body, labels=["news"], author=who, created=base + timedelta(days=14 + day)
        )

    attachments = {
        "architecture-notes.txt": state.add_attachment(
            pages["Architecture Overview"],
            "architecture-notes.txt",
            b"Gateway: Envoy\nServices talk over gRPC\nEvents over Kafka\n",
            "text/plain",
            comment="notes from the design review",
        ),
        "setup-checklist.md": state.add_attachment(
            pages["Development Environment Setup"],
            "setup-checklist.md",
            b"# Setup checklist\n\n- [ ] laptop\n- [ ] VPN\n- [ ] `make bootstrap`\n",
            "text/markdown",
        ),
    }

    ops: dict[str, str] = {}
    ops["Operations Home"] = state.add_page(
        "OPS", "Operations Home", "<h1>Operations</h1><p>On-call, dashboards and capacity.</p>", labels=["ops"]
    )
    for title, body in [
        ("On-call Rotation", _table(["Week", "Primary"], [["1", "Alice"], ["2", "Bob"], ["3", "Carol"]])),
        ("Monitoring Dashboards", "<p>Grafana folder <em>platform</em> holds the golden signals.</p>"),
    ]:
        ops[title] = state.add_page("OPS", title, body, parent_id=ops["Operations Home"], labels=["ops"])

    # One later edit so that version numbers and lastmodified differ from creation.
    state.update_page(pages["Incident Response"], body=state.get(pages["Incident Response"]).body, editor=bob)
    return {
        "spaces": ["DOCS", "OPS"],
        "pages": pages,
        "blogposts": blogs,
        "attachments": attachments,
        "ops_pages": ops,
        "users": {"alice": alice, "bob": bob, "carol": carol},
        "cloud": {"email": "demo@example.com", "token": "demo-token"},
        "dc": {"pat": "demo-pat", "username": "admin", "password": "admin"},
    }


# --------------------------------------------------------------------------------------------------------------
# Standalone entry point
# --------------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Confluence REST v1 emulator (Cloud or Data Center)")
    parser.add_argument("--edition", choices=["cloud", "dc"], default="cloud")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", choices=["demo", "none"], default="demo")
    parser.add_argument("--context-path", default="", help="DC only, e.g. /confluence")
    parser.add_argument("--timezone", default="UTC", help="site time zone used by CQL dates")
    args = parser.parse_args(argv)

    async def serve() -> None:
        state = ConfluenceState(args.timezone)
        if args.seed == "demo":
            seed_demo(state, edition=args.edition)
        emulator = ConfluenceEmulator(
            state, edition=args.edition, context_path=args.context_path, host=args.host, port=args.port
        )
        await emulator.start_async()
        print(f"confluence emulator listening on {emulator.endpoint}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await emulator.stop_async()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
