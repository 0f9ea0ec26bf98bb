"""A strict emulator of the Meilisearch v1.x HTTP API, served over real HTTP on 127.0.0.1.

It is meant to be *at least as strict* as a real server, so that code which passes against it does not fail
against Meilisearch: writes are asynchronous tasks processed in order by a background worker, document ids are
validated per task (one bad id fails the whole batch), delete-by-filter needs filterable attributes, unknown
settings fields are rejected synchronously, error bodies follow ``{message, code, type, link}``.

In-process use::

    with MeiliEmulator() as meili:
        client = meilisearch.Client(meili.url, "masterKey")

Standalone::

    python -m tests.emulators.meilisearch --port 7700 --master-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import csv
import hashlib
import hmac
import io
import itertools
import json
import math
import os
import re
import signal
import sys
import threading
import time
import traceback
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

JSON = dict[str, Any]

PKG_VERSION = "1.12.0"
COMMIT_SHA = "emulator0000000000000000000000000000000"
COMMIT_DATE = "2024-12-23T00:00:00.000000000Z"
ERRORS_LINK = "https://docs.meilisearch.com/errors#"
DEFAULT_RANKING_RULES = ["words", "typo", "proximity", "attribute", "sort", "exactness"]
MAX_QUERY_WORDS = 10
MAX_INDEX_UID_BYTES = 400
TASK_TYPES = (
    "documentAdditionOrUpdate",
    "documentEdition",
    "documentDeletion",
    "settingsUpdate",
    "indexCreation",
    "indexDeletion",
    "indexUpdate",
    "indexSwap",
    "taskCancelation",
    "taskDeletion",
    "dumpCreation",
    "snapshotCreation",
)
TASK_STATUSES = ("enqueued", "processing", "succeeded", "failed", "canceled")
ALL_ACTIONS = (
    "*",
    "search",
    "documents.*",
    "documents.add",
    "documents.get",
    "documents.delete",
    "indexes.*",
    "indexes.create",
    "indexes.get",
    "indexes.update",
    "indexes.delete",
    "indexes.swap",
    "tasks.*",
    "tasks.cancel",
    "tasks.delete",
    "tasks.get",
    "settings.*",
    "settings.get",
    "settings.update",
    "stats.*",
    "stats.get",
    "metrics.*",
    "metrics.get",
    "dumps.*",
    "dumps.create",
    "snapshots.*",
    "snapshots.create",
    "version",
    "keys.create",
    "keys.get",
    "keys.update",
    "keys.delete",
    "experimental.get",
    "experimental.update",
)


# --------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------

_STATUS_BY_CODE = {
    "missing_authorization_header": 401,
    "missing_master_key": 401,
    "invalid_api_key": 403,
    "index_not_found": 404,
    "task_not_found": 404,
    "document_not_found": 404,
    "api_key_not_found": 404,
    "index_already_exists": 409,
    "api_key_already_exists": 409,
    "payload_too_large": 413,
    "missing_content_type": 415,
    "invalid_content_type": 415,
    "internal": 500,
    "io_error": 500,
    "no_space_left_on_device": 500,
    "too_many_open_files": 500,
    "database_size_limit_reached": 500,
    "index_creation_failed": 500,
    "unretrievable_document": 500,
}
_TYPE_BY_CODE = {
    "missing_authorization_header": "auth",
    "missing_master_key": "auth",
    "invalid_api_key": "auth",
    "internal": "internal",
    "database_size_limit_reached": "internal",
    "index_creation_failed": "internal",
    "unretrievable_document": "internal",
    "io_error": "system",
    "no_space_left_on_device": "system",
    "too_many_open_files": "system",
}


class MeiliError(Exception):
    """An API error: the HTTP answer of a synchronous failure, or the ``error`` of a failed task."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 400)

    @property
    def type(self) -> str:
        return _TYPE_BY_CODE.get(self.code, "invalid_request")

    def body(self) -> JSON:
        return {"message": self.message, "code": self.code, "type": self.type, "link": ERRORS_LINK + self.code}


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _ticks(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _found(value: Any) -> str:
    """How Meilisearch's deserializer (deserr) describes an unexpected value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean: `{_compact(value)}`"
    if isinstance(value, int):
        kind = "a positive integer" if value >= 0 else "a negative integer"
        return f"{kind}: `{value}`"
    if isinstance(value, float):
        return f"a number: `{_compact(value)}`"
    if isinstance(value, str):
        return f"a string: `{_compact(value)}`"
    if isinstance(value, list):
        return f"an array: `{_compact(value)}`"
    return f"an object: `{_compact(value)}`"


def _type_error(code: str, path: str, expected: str, value: Any) -> MeiliError:
    at = f" at `{path}`" if path else ""
    return MeiliError(code, f"Invalid value type{at}: expected {expected}, but found {_found(value)}")


def _reject_unknown_fields(obj: JSON, allowed: Iterable[str], code: str, path: str = "") -> None:
    allowed = list(allowed)
    for key in obj:
        if key not in allowed:
            inside = f" inside `{path}`" if path else ""
            raise MeiliError(code, f"Unknown field `{key}`{inside}: expected one of {_ticks(allowed)}")


def _reject_unknown_params(query: dict[str, str], allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for key in query:
        if key not in allowed:
            raise MeiliError("bad_request", f"Unknown parameter `{key}`: expected one of {_ticks(allowed)}")


def _param_uint(query: dict[str, str], name: str, code: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]+", raw):
        raise MeiliError(code, f"Invalid value in parameter `{name}`: could not parse `{raw}` as a positive integer")
    return int(raw)


def _param_bool(query: dict[str, str], name: str, code: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise MeiliError(
            code,
            f"Invalid value in parameter `{name}`: could not parse `{raw}` as a boolean, expected either "
            "`true` or `false`",
        )
    return raw == "true"


def _param_list(query: dict[str, str], name: str) -> list[str] | None:
    raw = query.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _expect_uint(value: Any, code: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _type_error(code, path, "a positive integer", value)
    return value


def _expect_bool(value: Any, code: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise _type_error(code, path, "a boolean", value)
    return value


def _expect_str(value: Any, code: str, path: str) -> str:
    if not isinstance(value, str):
        raise _type_error(code, path, "a string", value)
    return value


def _expect_str_list(value: Any, code: str, path: str) -> list[str]:
    if not isinstance(value, list):
        raise _type_error(code, path, "an array", value)
    for i, item in enumerate(value):
        _expect_str(item, code, f"{path}[{i}]")
    return list(value)


def _expect_object(value: Any, code: str, path: str) -> JSON:
    if not isinstance(value, dict):
        raise _type_error(code, path, "an object", value)
    return value


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --------------------------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------------------------


def _fmt_ts(ns: int | None) -> str | None:
    """RFC 3339 with nanoseconds, as Meilisearch prints its task dates."""
    if ns is None:
        return None
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def _fmt_duration(ns: int) -> str:
    text = f"{ns / 1e9:.9f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return f"PT{text}S"


def _parse_date_param(raw: str, name: str, after: bool) -> int:
    code = f"invalid_task_{_camel_to_snake(name)}"
    message = f"`{raw}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format."
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise MeiliError(code, message) from None
        # A bare date means "the whole day": `after` starts at the next day, like Meilisearch.
        if after:
            day += timedelta(days=1)
        return int(day.timestamp()) * 1_000_000_000
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", raw)
    if not match:
        raise MeiliError(code, message)
    try:
        base = datetime.fromisoformat(match.group(1) + (match.group(3) if match.group(3) != "Z" else "+00:00"))
    except ValueError:
        raise MeiliError(code, message) from None
    frac = (match.group(2) or ".0")[1:10].ljust(9, "0")
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


# --------------------------------------------------------------------------------------------------------------
# Text and documents
# --------------------------------------------------------------------------------------------------------------

_FOLD_CACHE: dict[str, str] = {}


def _fold_char(c: str) -> str:
    """Lowercase, accent-free form of one character (search is case- and accent-insensitive)."""
    folded = _FOLD_CACHE.get(c)
    if folded is None:
        decomposed = unicodedata.normalize("NFKD", c)
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
        _FOLD_CACHE[c] = folded
    return folded


def _fold(text: str) -> str:
    return "".join(_fold_char(c) for c in text)


@dataclass
class _Word:
    text: str  # folded
    start: int  # offsets into the original string
    end: int


def _words(text: str) -> list[_Word]:
    """Split on anything that is not a letter or digit, keeping offsets into the original text."""
    out: list[_Word] = []
    buf: list[str] = []
    start = -1
    for i, c in enumerate(text):
        folded = _fold_char(c)
        if folded and all(ch.isalnum() for ch in folded):
            if start < 0:
                start = i
            buf.append(folded)
        elif start >= 0:
            out.append(_Word("".join(buf), start, i))
            buf, start = [], -1
    if start >= 0:
        out.append(_Word("".join(buf), start, len(text)))
    return out


def _prefix_end(text: str, word: _Word, folded_len: int) -> int:
    """Original offset where the first ``folded_len`` folded characters of ``word`` end."""
    count = 0
    for i in range(word.start, word.end):
        count += len(_fold_char(text[i]))
        if count >= folded_len:
            return i + 1
    return word.end


def _norm_facet(value: str) -> str:
    return value.strip().lower()


_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def _parse_number(text: str) -> float | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _values_at(value: Any, path: str) -> list[Any]:
    """Values reached by a dotted path; arrays are traversed and keys may themselves contain dots."""
    out: list[Any] = []

    def walk(node: Any, rest: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, rest)
            return
        if not isinstance(node, dict):
            return
        for key, sub in node.items():
            if key == rest:
                out.append(sub)
            elif rest.startswith(key + "."):
                walk(sub, rest[len(key) + 1 :])

    walk(value, path)
    return out


def _leaves(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(_leaves(value))
        else:
            out.append(value)
    return out


def _flatten(doc: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) pairs of a document, arrays traversed."""
    if isinstance(doc, dict):
        for key, sub in doc.items():
            yield from _flatten(sub, f"{prefix}.{key}" if prefix else key)
    elif isinstance(doc, list):
        for item in doc:
            yield from _flatten(item, prefix)
    else:
        yield prefix, doc


def _covers(attributes: Iterable[str], field_name: str) -> bool:
    """Whether a field is covered by a settings list: itself or one of its parent objects is listed."""
    return any(field_name == a or field_name.startswith(a + ".") for a in attributes)


def _select(doc: JSON, selectors: list[str]) -> JSON:
    """Keep only the selected (possibly dotted) fields of a document, in document order."""
    if "*" in selectors:
        return copy.deepcopy(doc)
    out: JSON = {}
    for key, sub in doc.items():
        if key in selectors:
            out[key] = copy.deepcopy(sub)
            continue
        nested = [s[len(key) + 1 :] for s in selectors if s.startswith(key + ".")]
        if not nested:
            continue
        if isinstance(sub, dict):
            picked = _select(sub, nested)
            if picked:
                out[key] = picked
        elif isinstance(sub, list):
            items = [_select(item, nested) for item in sub if isinstance(item, dict)]
            items = [item for item in items if item]
            if items:
                out[key] = items
    return out


_DOC_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,511}")


def _external_id(value: Any) -> str | None:
    """The string form of a valid document id, None when Meilisearch would reject it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if -(2**63) <= value < 2**64 else None
    if isinstance(value, str) and _DOC_ID_RE.fullmatch(value):
        return value
    return None


_INDEX_UID_RE = re.compile(r"[A-Za-z0-9_-]+")


def _validate_index_uid(uid: Any, code: str = "invalid_index_uid", path: str = "") -> str:
    if not isinstance(uid, str):
        raise _type_error(code, path, "a string", uid)
    if not _INDEX_UID_RE.fullmatch(uid) or len(uid.encode()) > MAX_INDEX_UID_BYTES:
        at = f"Invalid value at `{path}`: " if path else ""
        raise MeiliError(
            code,
            f"{at}`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only "
            "alphanumeric characters, hyphens (-) and underscores (_), and can not be more than "
            f"{MAX_INDEX_UID_BYTES} bytes.",
        )
    return uid


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.2f} {unit}"
    return f"{n} B"


# --------------------------------------------------------------------------------------------------------------
# Filter language: tokenizer + recursive descent parser + evaluator
# --------------------------------------------------------------------------------------------------------------

_KEYWORDS = frozenset(
    {"AND", "OR", "IN", "NOT", "TO", "EXISTS", "IS", "NULL", "EMPTY", "CONTAINS", "STARTS", "WITH"}
    | {"_geoRadius", "_geoBoundingBox"}
)
_RESERVED_FIELDS = ("_geo", "_geoDistance", "_geoPoint", "_geoRadius", "_geoBoundingBox")
_SYNTAX_CHARS = "()=<>!"
_OPERATIONS = (
    "`=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, "
    "`IS EMPTY`, `IS NOT EMPTY`, `CONTAINS`, `NOT CONTAINS`, `_geoRadius`, or `_geoBoundingBox`"
)
_MAX_FILTER_DEPTH = 200


class _FilterSyntaxError(Exception):
    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


def _escape_debug(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


@dataclass
class _Tok:
    kind: str  # word | quoted | unclosed | op | ( | ) | [ | ] | , | bad | eof
    text: str
    start: int
    end: int
    value: str = ""


def _is_value_char(c: str) -> bool:
    return c.isalnum() or c in "_-."


def _unescape(raw: str, start: int, end: int) -> str:
    out: list[str] = []
    i = 0
    simple = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
    while i < len(raw):
        c = raw[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-7][0-9a-fA-F]", raw[i + 2 : i + 4]):
            out.append(chr(int(raw[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "u" and (m := re.match(r"\{([0-9a-fA-F]{1,6})\}", raw[i + 2 :])):
            out.append(chr(int(m.group(1), 16)))
            i += 2 + len(m.group(0))
        else:
            raise _FilterSyntaxError(f"Malformed value: `{_escape_debug(raw)}`.", start, end)
    return "".join(out)


def _lex(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif c in "()[],":
            toks.append(_Tok(c, c, i, i + 1))
            i += 1
        elif src[i : i + 2] in ("!=", ">=", "<="):
            toks.append(_Tok("op", src[i : i + 2], i, i + 2))
            i += 2
        elif c in "=<>":
            toks.append(_Tok("op", c, i, i + 1))
            i += 1
        elif c in "'\"":
            j, closed = i + 1, False
            while j < n:
                if src[j] == "\\" and j + 1 < n:
                    j += 2
                    continue
                if src[j] == c:
                    closed = True
                    break
                j += 1
            if not closed:
                toks.append(_Tok("unclosed", src[i:], i, n, c))
                i = n
            else:
                toks.append(_Tok("quoted", src[i : j + 1], i + 1, j, src[i + 1 : j]))
                i = j + 1
        elif _is_value_char(c):
            j = i
            while j < n and _is_value_char(src[j]):
                j += 1
            toks.append(_Tok("word", src[i:j], i, j, src[i:j]))
            i = j
        else:
            # Like Meilisearch, an unknown character swallows everything up to the next syntax character.
            j = i + 1
            while j < n and not (src[j].isspace() or src[j] in _SYNTAX_CHARS):
                j += 1
            toks.append(_Tok("bad", src[i:j], i, j))
            i = j
    toks.append(_Tok("eof", "", n, n))
    return toks


@dataclass
class _Cond:
    attr: str
    start: int
    end: int
    src: str
    op: str  # = != > >= < <= TO IN EXISTS NULL EMPTY
    values: list[str] = field(default_factory=list)


@dataclass
class _Geo:
    kind: str  # radius | box
    args: list[float]
    start: int
    end: int
    src: str


@dataclass
class _Not:
    inner: _Node


@dataclass
class _And:
    items: list[_Node]


@dataclass
class _Or:
    items: list[_Node]


_Node = _Cond | _Geo | _Not | _And | _Or


class _FilterParser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = _lex(src)
        self.pos = 0
        self.depth = 0

    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos = min(self.pos + 1, len(self.toks) - 1)
        return tok

    @staticmethod
    def is_kw(tok: _Tok, *words: str) -> bool:
        return tok.kind == "word" and tok.text in words

    @staticmethod
    def is_value(tok: _Tok) -> bool:
        return tok.kind == "quoted" or (tok.kind == "word" and tok.text not in _KEYWORDS)

    def fail(self, message: str, start: int, end: int | None = None) -> _FilterSyntaxError:
        return _FilterSyntaxError(message, start, len(self.src) if end is None else end)

    def parse(self) -> _Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "eof":
            rest = self.src[tok.start :]
            raise self.fail(
                f"Found unexpected characters at the end of the filter: `{_escape_debug(rest)}`. You probably "
                "forgot an `OR` or an `AND` rule.",
                tok.start,
            )
        return node

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_FILTER_DEPTH:
            tok = self.peek()
            raise self.fail(
                "The filter exceeded the maximum depth limit. Try rewriting the filter so that it contains fewer "
                "nested conditions.",
                tok.start,
            )

    def parse_or(self) -> _Node:
        self.enter()
        items = [self.parse_and()]
        while self.is_kw(self.peek(), "OR"):
            self.take()
            items.append(self.parse_and())
        self.depth -= 1
        return items[0] if len(items) == 1 else _Or(items)

    def parse_and(self) -> _Node:
        items = [self.parse_not()]
        while self.is_kw(self.peek(), "AND"):
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else _And(items)

    def parse_not(self) -> _Node:
        if self.is_kw(self.peek(), "NOT"):
            self.take()
            self.enter()
            inner = self.parse_not()
            self.depth -= 1
            return inner.inner if isinstance(inner, _Not) else _Not(inner)
        return self.parse_primary()

    def invalid_primary(self, start: int) -> _FilterSyntaxError:
        rest = self.src[start:]
        where = "but instead got nothing." if not rest.strip() else f"at `{_escape_debug(rest)}`."
        return self.fail(f"Was expecting an operation {_OPERATIONS} {where}", start)

    def parse_primary(self) -> _Node:
        first = self.peek()
        start = first.start
        if first.kind == "(":
            self.take()
            node = self.parse_or()
            if self.peek().kind != ")":
                raise self.fail(
                    f"Expression `{_escape_debug(self.src[start:])}` is missing the following closing delimiter: `)`.",
                    start,
                )
            self.take()
            return node
        if self.is_kw(first, "_geoRadius", "_geoBoundingBox"):
            return self.parse_geo()
        if first.kind == "word" and first.text in _RESERVED_FIELDS:
            raise self.fail(
                f"`{first.text}` is a reserved keyword and thus can't be used as a filter expression. Use the "
                "`_geoRadius(latitude, longitude, distance)` or `_geoBoundingBox([latitude, longitude], "
                "[latitude, longitude])` built-in rules to filter on `_geo` coordinates.",
                start,
            )
        if first.kind == "unclosed":
            raise self.missing_quote(first)
        if first.kind == "word" and first.text in _KEYWORDS:
            raise self.reserved_value(first)
        if not self.is_value(first):
            raise self.invalid_primary(start)
        attr_tok = self.take()
        attr = self.token_value(attr_tok)

        def cond(op: str, values: list[str] | None = None) -> _Cond:
            return _Cond(attr, attr_tok.start, attr_tok.end, self.src, op, values or [])

        tok = self.peek()
        if tok.kind == "op":
            self.take()
            return cond(tok.text, [self.operand()])
        if self.is_kw(tok, "IN"):
            self.take()
            return cond("IN", self.in_list())
        if self.is_kw(tok, "EXISTS"):
            self.take()
            return cond("EXISTS")
        if self.is_kw(tok, "IS"):
            nxt, negate = self.peek(1), False
            if self.is_kw(nxt, "NOT"):
                nxt, negate = self.peek(2), True
            if not self.is_kw(nxt, "NULL", "EMPTY"):
                raise self.invalid_primary(start)
            self.pos += 3 if negate else 2
            checked = cond(nxt.text)
            return _Not(checked) if negate else checked
        if self.is_kw(tok, "NOT"):
            nxt = self.peek(1)
            if self.is_kw(nxt, "IN"):
                self.pos += 2
                return _Not(cond("IN", self.in_list()))
            if self.is_kw(nxt, "EXISTS"):
                self.pos += 2
                return _Not(cond("EXISTS"))
            if self.is_kw(nxt, "CONTAINS"):
                raise self.contains_disabled()
            raise self.invalid_primary(start)
        if self.is_kw(tok, "CONTAINS"):
            raise self.contains_disabled()
        if self.is_value(tok) and self.is_kw(self.peek(1), "TO"):
            low = self.token_value(self.take())
            self.take()
            return cond("TO", [low, self.operand()])
        raise self.invalid_primary(start)

    @staticmethod
    def contains_disabled() -> MeiliError:
        return MeiliError(
            "feature_not_enabled",
            "Using `CONTAINS` in a filter requires enabling the `contains filter` experimental feature. See "
            "https://github.com/orgs/meilisearch/discussions/763",
        )

    def token_value(self, tok: _Tok) -> str:
        if tok.kind == "quoted":
            return _unescape(tok.value, tok.start, tok.end)
        return tok.text

    def missing_quote(self, tok: _Tok) -> _FilterSyntaxError:
        return self.fail(
            f"Expression `{_escape_debug(self.src[tok.start :])}` is missing the following closing delimiter: "
            f"`{tok.value}`.",
            tok.start,
        )

    def reserved_value(self, tok: _Tok) -> _FilterSyntaxError:
        return self.fail(
            f"Was expecting a value but instead got `{tok.text}`, which is a reserved keyword. To use "
            f"`{tok.text}` as a field name or a value, surround it by quotes.",
            tok.start,
            tok.end,
        )

    def operand(self) -> str:
        tok = self.peek()
        if self.is_value(tok):
            self.take()
            return self.token_value(tok)
        if tok.kind == "unclosed":
            raise self.missing_quote(tok)
        if tok.kind == "word":
            raise self.reserved_value(tok)
        end = tok.start
        while end < len(self.src) and not (self.src[end].isspace() or self.src[end] in _SYNTAX_CHARS):
            end += 1
        if end == tok.start:
            raise self.fail("Was expecting a value but instead got nothing.", tok.start, tok.start)
        word = _escape_debug(self.src[tok.start : end])
        raise self.fail(f"Was expecting a value but instead got `{word}`.", tok.start, end)

    def in_list(self) -> list[str]:
        tok = self.peek()
        if tok.kind != "[":
            raise self.fail("Expected `[` after `IN` keyword.", tok.start)
        self.take()
        values: list[str] = []
        if self.is_value(self.peek()):
            values.append(self.token_value(self.take()))
            while self.peek().kind == "," and self.is_value(self.peek(1)):
                self.take()
                values.append(self.token_value(self.take()))
            if self.peek().kind == ",":
                self.take()
        tok = self.peek()
        if tok.kind == "]":
            self.take()
            return values
        if tok.kind == "eof":
            raise self.fail("Expected matching `]` after the list of field names given to `IN[`", tok.start, tok.start)
        rest = _escape_debug(self.src[tok.start :])
        if tok.kind == "word" and tok.text in _KEYWORDS:
            raise self.fail(
                f"Expected only comma-separated field names inside `IN[..]` but instead found `{rest}`, which is a "
                f"keyword. To use `{rest}` as a field name or a value, surround it by quotes.",
                tok.start,
            )
        raise self.fail(
            f"Expected only comma-separated field names inside `IN[..]` but instead found `{rest}`.", tok.start
        )

    def parse_geo(self) -> _Geo:
        head = self.take()
        start = head.start
        if head.text == "_geoRadius":
            usage = "The `_geoRadius` filter expects three arguments: `_geoRadius(latitude, longitude, radius)`."
        else:
            usage = (
                "The `_geoBoundingBox` filter expects two pairs of arguments: `_geoBoundingBox([latitude, "
                "longitude], [latitude, longitude])`."
            )

        def number() -> float:
            tok = self.take()
            value = _parse_number(tok.text) if tok.kind == "word" else None
            if value is None:
                raise self.fail(usage, start)
            return value

        def expect(kind: str) -> None:
            if self.take().kind != kind:
                raise self.fail(usage, start)

        expect("(")
        args: list[float] = []
        if head.text == "_geoRadius":
            args.append(number())
            for _ in range(2):
                expect(",")
                args.append(number())
        else:
            for pair in range(2):
                if pair:
                    expect(",")
                expect("[")
                args.append(number())
                expect(",")
                args.append(number())
                expect("]")
        end_tok = self.peek()
        expect(")")
        kind = "radius" if head.text == "_geoRadius" else "box"
        return _Geo(kind, args, start, end_tok.end, self.src)


def _parse_filter_string(src: str, code: str) -> _Node | None:
    if not src.strip():
        return None
    try:
        return _FilterParser(src).parse()
    except _FilterSyntaxError as exc:
        raise MeiliError(code, f"{exc.message}\n{exc.start + 1}:{exc.end + 1} {src}") from None


def _parse_filter(value: Any, code: str) -> _Node | None:
    """Parse the `filter` parameter: a string, or an array (AND) of strings and arrays of strings (OR)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_filter_string(value, code)
    if not isinstance(value, list):
        raise MeiliError(
            code, f"Invalid syntax for the filter parameter: `expected String, Array, found: {_compact(value)}`."
        )
    ands: list[_Node] = []
    for item in value:
        if isinstance(item, str):
            node = _parse_filter_string(item, code)
            if node is not None:
                ands.append(node)
        elif isinstance(item, list):
            ors: list[_Node] = []
            for sub in item:
                if not isinstance(sub, str):
                    raise MeiliError(
                        code, f"Invalid syntax for the filter parameter: `expected String, found: {_compact(sub)}`."
                    )
                node = _parse_filter_string(sub, code)
                if node is not None:
                    ors.append(node)
            if ors:
                ands.append(ors[0] if len(ors) == 1 else _Or(ors))
        else:
            raise MeiliError(
                code,
                f"Invalid syntax for the filter parameter: `expected String, [String], found: {_compact(item)}`.",
            )
    if not ands:
        return None
    return ands[0] if len(ands) == 1 else _And(ands)


def _filter_leaves(node: _Node) -> Iterator[_Cond | _Geo]:
    if isinstance(node, _Cond | _Geo):
        yield node
    elif isinstance(node, _Not):
        yield from _filter_leaves(node.inner)
    else:
        for item in node.items:
            yield from _filter_leaves(item)


def _check_filterable(node: _Node, filterable: list[str], code: str) -> None:
    for leaf in _filter_leaves(node):
        attr = leaf.attr if isinstance(leaf, _Cond) else "_geo"
        if _covers(filterable, attr):
            continue
        if filterable:
            tail = f"Available filterable attributes are: `{', '.join(sorted(set(filterable)))}`."
        else:
            tail = "This index does not have configured filterable attributes."
        raise MeiliError(
            code, f"Attribute `{attr}` is not filterable. {tail}\n{leaf.start + 1}:{leaf.end + 1} {leaf.src}"
        )


def _facet_equals(leaf: Any, value: str) -> bool:
    if isinstance(leaf, bool):
        return _norm_facet("true" if leaf else "false") == _norm_facet(value)
    if _is_number(leaf):
        number = _parse_number(value)
        return number is not None and float(leaf) == number
    if isinstance(leaf, str):
        return _norm_facet(leaf) == _norm_facet(value)
    return False


def _facet_compare(leaf: Any, op: str, values: list[str]) -> bool:
    def cmp(a: Any, b: Any) -> bool:
        return bool({">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op])

    if _is_number(leaf):
        if op == "TO":
            low, high = _parse_number(values[0]), _parse_number(values[1])
            return low is not None and high is not None and low <= float(leaf) <= high
        number = _parse_number(values[0])
        return number is not None and cmp(float(leaf), number)
    if isinstance(leaf, bool):
        leaf = "true" if leaf else "false"
    if isinstance(leaf, str):
        # Meilisearch also compares string facets lexicographically.
        text = _norm_facet(leaf)
        if op == "TO":
            return _norm_facet(values[0]) <= text <= _norm_facet(values[1])
        return cmp(text, _norm_facet(values[0]))
    return False


def _haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def _doc_geo(doc: JSON) -> tuple[float, float] | None:
    geo = doc.get("_geo")
    if not isinstance(geo, dict):
        return None
    try:
        return float(geo["lat"]), float(geo["lng"])
    except (KeyError, TypeError, ValueError):
        return None


def _eval_filter(node: _Node, doc: JSON) -> bool:
    if isinstance(node, _And):
        return all(_eval_filter(item, doc) for item in node.items)
    if isinstance(node, _Or):
        return any(_eval_filter(item, doc) for item in node.items)
    if isinstance(node, _Not):
        return not _eval_filter(node.inner, doc)
    if isinstance(node, _Geo):
        point = _doc_geo(doc)
        if point is None:
            return False
        if node.kind == "radius":
            lat, lng, radius = node.args
            return _haversine_m(lat, lng, *point) <= radius
        top, right, bottom, left = node.args
        lat, lng = point
        in_lng = left <= lng <= right if left <= right else (lng >= left or lng <= right)
        return bottom <= lat <= top and in_lng
    raw = _values_at(doc, node.attr)
    op = node.op
    if op == "EXISTS":
        return bool(raw)
    if op == "NULL":
        return any(v is None for v in raw) or any(v is None for v in _leaves(raw))
    if op == "EMPTY":
        return any(v == "" or v == [] or v == {} for v in raw)
    leaves = _leaves(raw)
    if op in ("=", "!="):
        hit = any(_facet_equals(leaf, node.values[0]) for leaf in leaves)
        return hit if op == "=" else not hit
    if op == "IN":
        return any(_facet_equals(leaf, v) for leaf in leaves for v in node.values)
    return any(_facet_compare(leaf, op, node.values) for leaf in leaves)


# --------------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------------

SETTINGS_FIELDS = (
    "displayedAttributes",
    "searchableAttributes",
    "filterableAttributes",
    "sortableAttributes",
    "rankingRules",
    "stopWords",
    "nonSeparatorTokens",
    "separatorTokens",
    "dictionary",
    "synonyms",
    "distinctAttribute",
    "proximityPrecision",
    "typoTolerance",
    "faceting",
    "pagination",
    "embedders",
    "searchCutoffMs",
    "localizedAttributes",
    "facetSearch",
    "prefixSearch",
)
# Sub-route name -> (setting, update verb); objects are PATCHed, everything else PUT, as documented.
SETTINGS_ROUTES = {re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower(): name for name in SETTINGS_FIELDS}
_PATCHED_SETTINGS = ("typoTolerance", "faceting", "pagination", "embedders")
_STRING_LIST_SETTINGS = (
    "displayedAttributes",
    "searchableAttributes",
    "filterableAttributes",
    "sortableAttributes",
    "stopWords",
    "nonSeparatorTokens",
    "separatorTokens",
    "dictionary",
)


def _default_settings() -> JSON:
    return {
        "displayedAttributes": ["*"],
        "searchableAttributes": ["*"],
        "filterableAttributes": [],
        "sortableAttributes": [],
        "rankingRules": list(DEFAULT_RANKING_RULES),
        "stopWords": [],
        "nonSeparatorTokens": [],
        "separatorTokens": [],
        "dictionary": [],
        "synonyms": {},
        "distinctAttribute": None,
        "proximityPrecision": "byWord",
        "typoTolerance": {
            "enabled": True,
            "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
            "disableOnWords": [],
            "disableOnAttributes": [],
        },
        "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}},
        "pagination": {"maxTotalHits": 1000},
        "embedders": {},
        "searchCutoffMs": None,
        "localizedAttributes": None,
        "facetSearch": True,
        "prefixSearch": "indexingTime",
    }


_RANKING_RULE_RE = re.compile(r"(words|typo|proximity|attribute|sort|exactness)|(.+):(asc|desc)")


def _validate_setting(name: str, value: Any, path: str) -> None:
    """Type checks Meilisearch performs synchronously (400) when a settings payload is deserialized."""
    code = f"invalid_settings_{_camel_to_snake(name)}"
    if value is None:
        return
    if name in _STRING_LIST_SETTINGS:
        _expect_str_list(value, code, path)
    elif name == "rankingRules":
        for i, rule in enumerate(_expect_str_list(value, code, path)):
            if not _RANKING_RULE_RE.fullmatch(rule):
                raise MeiliError(
                    code,
                    f"Invalid value at `{path}[{i}]`: `{rule}` ranking rule is invalid. Valid ranking rules are "
                    "words, typo, sort, proximity, attribute, exactness and custom ranking rules.",
                )
    elif name == "synonyms":
        for key, words in _expect_object(value, code, path).items():
            _expect_str_list(words, code, f"{path}.{key}")
    elif name == "distinctAttribute":
        _expect_str(value, code, path)
    elif name == "proximityPrecision":
        if value not in ("byWord", "byAttribute"):
            _expect_str(value, code, path)
            raise MeiliError(code, f"Unknown value `{value}` at `{path}`: expected one of `byWord`, `byAttribute`")
    elif name == "prefixSearch":
        if value not in ("indexingTime", "disabled"):
            _expect_str(value, code, path)
            raise MeiliError(code, f"Unknown value `{value}` at `{path}`: expected one of `indexingTime`, `disabled`")
    elif name == "facetSearch":
        _expect_bool(value, code, path)
    elif name == "searchCutoffMs":
        _expect_uint(value, code, path)
    elif name == "typoTolerance":
        obj = _expect_object(value, code, path)
        allowed = ("enabled", "minWordSizeForTypos", "disableOnWords", "disableOnAttributes", "disableOnNumbers")
        _reject_unknown_fields(obj, allowed, code, path)
        for key, sub in obj.items():
            if sub is None:
                continue
            if key in ("enabled", "disableOnNumbers"):
                _expect_bool(sub, code, f"{path}.{key}")
            elif key in ("disableOnWords", "disableOnAttributes"):
                _expect_str_list(sub, code, f"{path}.{key}")
            else:
                sizes = _expect_object(sub, code, f"{path}.{key}")
                _reject_unknown_fields(sizes, ("oneTypo", "twoTypos"), code, f"{path}.{key}")
                for size_key, size in sizes.items():
                    if size is not None:
                        _expect_uint(size, code, f"{path}.{key}.{size_key}")
    elif name == "faceting":
        obj = _expect_object(value, code, path)
        _reject_unknown_fields(obj, ("maxValuesPerFacet", "sortFacetValuesBy"), code, path)
        if obj.get("maxValuesPerFacet") is not None:
            _expect_uint(obj["maxValuesPerFacet"], code, f"{path}.maxValuesPerFacet")
        if obj.get("sortFacetValuesBy") is not None:
            for key, order in _expect_object(obj["sortFacetValuesBy"], code, f"{path}.sortFacetValuesBy").items():
                if order not in ("alpha", "count"):
                    raise MeiliError(
                        code,
                        f"Unknown value `{order}` at `{path}.sortFacetValuesBy.{key}`: expected one of `alpha`, "
                        "`count`",
                    )
    elif name == "pagination":
        obj = _expect_object(value, code, path)
        _reject_unknown_fields(obj, ("maxTotalHits",), code, path)
        if obj.get("maxTotalHits") is not None:
            _expect_uint(obj["maxTotalHits"], code, f"{path}.maxTotalHits")
    elif name == "embedders":
        for key, conf in _expect_object(value, code, path).items():
            if conf is not None:
                _expect_object(conf, code, f"{path}.{key}")
    elif name == "localizedAttributes" and not isinstance(value, list):
        raise _type_error(code, path, "an array", value)


def _merge_object(current: JSON, patch: JSON, defaults: JSON) -> JSON:
    """Partial update of an object setting: null resets a key, nested objects merge."""
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            if key in defaults:
                merged[key] = copy.deepcopy(defaults[key])
            else:
                merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_object(merged[key], value, defaults.get(key) or {})
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_settings(current: JSON, patch: JSON) -> JSON:
    defaults = _default_settings()
    settings = copy.deepcopy(current)
    for name, value in patch.items():
        if value is None:
            settings[name] = copy.deepcopy(defaults[name])
        elif name == "embedders":
            embedders = dict(settings["embedders"])
            for key, conf in value.items():
                if conf is None:
                    embedders.pop(key, None)
                else:
                    embedders[key] = _merge_object(embedders.get(key, {}), conf, {})
            settings["embedders"] = embedders
        elif name in _PATCHED_SETTINGS:
            settings[name] = _merge_object(settings[name], value, defaults[name])
        elif name in ("displayedAttributes", "searchableAttributes") and "*" in value:
            settings[name] = ["*"]
        else:
            settings[name] = copy.deepcopy(value)
    sizes = settings["typoTolerance"]["minWordSizeForTypos"]
    one, two = sizes.get("oneTypo", 5), sizes.get("twoTypos", 9)
    if not (0 <= one <= 255 and 0 <= two <= 255 and one <= two):
        raise MeiliError(
            "invalid_settings_typo_tolerance",
            "`minWordSizeForTypos` setting is invalid. `oneTypo` and `twoTypos` fields should be between `0` and "
            f"`255`, and `twoTypos` should be greater or equals to `oneTypo` but found `oneTypo: {one}` and "
            f"twoTypos: {two}`.",
        )
    return settings


# --------------------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Index:
    uid: str
    primary_key: str | None
    created_at: int
    updated_at: int
    documents: dict[str, JSON] = field(default_factory=dict)
    settings: JSON = field(default_factory=_default_settings)

    def view(self) -> JSON:
        return {
            "uid": self.uid,
            "createdAt": _fmt_ts(self.created_at),
            "updatedAt": _fmt_ts(self.updated_at),
            "primaryKey": self.primary_key,
        }

    def field_distribution(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for doc in self.documents.values():
            for key in doc:
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


@dataclass
class _Task:
    uid: int
    index_uid: str | None
    type: str
    details: JSON | None
    enqueued_at: int
    payload: Any = None
    forced_error: tuple[str, str] | None = None
    status: str = "enqueued"
    batch_uid: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    error: JSON | None = None
    canceled_by: int | None = None

    def summary(self) -> JSON:
        return {
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": self.status,
            "type": self.type,
            "enqueuedAt": _fmt_ts(self.enqueued_at),
        }

    def view(self) -> JSON:
        duration = None
        if self.started_at is not None and self.finished_at is not None:
            duration = _fmt_duration(self.finished_at - self.started_at)
        return {
            "uid": self.uid,
            "batchUid": self.batch_uid,
            "indexUid": self.index_uid,
            "status": self.status,
            "type": self.type,
            "canceledBy": self.canceled_by,
            "details": copy.deepcopy(self.details),
            "error": self.error,
            "duration": duration,
            "enqueuedAt": _fmt_ts(self.enqueued_at),
            "startedAt": _fmt_ts(self.started_at),
            "finishedAt": _fmt_ts(self.finished_at),
        }


@dataclass
class _ApiKey:
    uid: str
    key: str
    name: str | None
    description: str | None
    actions: list[str]
    indexes: list[str]
    expires_at: str | None
    created_at: int
    updated_at: int

    def view(self) -> JSON:
        return {
            "name": self.name,
            "description": self.description,
            "key": self.key,
            "uid": self.uid,
            "actions": list(self.actions),
            "indexes": list(self.indexes),
            "expiresAt": self.expires_at,
            "createdAt": _fmt_ts(self.created_at),
            "updatedAt": _fmt_ts(self.updated_at),
        }

    def expired(self) -> bool:
        if self.expires_at is None:
            return False
        return _parse_date_param(self.expires_at, "expiresAt", after=False) <= time.time_ns()

    def allows_action(self, action: str) -> bool:
        for granted in self.actions:
            if granted in (action, "*"):
                return True
            if granted.endswith(".*") and action.startswith(granted[:-1]):
                return True
        return False

    def allows_index(self, uid: str) -> bool:
        return any(p == "*" or p == uid or (p.endswith("*") and uid.startswith(p[:-1])) for p in self.indexes)


# --------------------------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Term:
    words: list[str]
    prefix: bool = False
    phrase: bool = False
    negative: bool = False


def _parse_query(q: str, stop_words: set[str]) -> list[_Term]:
    terms: list[_Term] = []
    i, n = 0, len(q)
    plain_start = 0

    def flush_plain(end: int) -> None:
        segment = q[plain_start:end]
        for word in _words(segment):
            abs_start = plain_start + word.start
            negative = abs_start > 0 and q[abs_start - 1] == "-" and (abs_start < 2 or q[abs_start - 2].isspace())
            prefix = plain_start + word.end == n
            terms.append(_Term([word.text], prefix=prefix, negative=negative))

    while i < n:
        if q[i] == '"':
            flush_plain(i - 1 if i > 0 and q[i - 1] == "-" else i)
            negative = i > 0 and q[i - 1] == "-"
            close = q.find('"', i + 1)
            close = n if close < 0 else close
            words = [w.text for w in _words(q[i + 1 : close])]
            if words:
                terms.append(_Term(words, phrase=True, negative=negative))
            i = close + 1
            plain_start = i
        else:
            i += 1
    flush_plain(n)
    kept: list[_Term] = []
    count = 0
    for term in terms:
        if not term.phrase and term.words[0] in stop_words and not term.negative:
            continue
        count += len(term.words)
        if count > MAX_QUERY_WORDS:
            break
        kept.append(term)
    return kept


def _damerau(a: str, b: str) -> int:
    """Optimal string alignment distance (a transposition is one typo)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


@dataclass
class _TypoConfig:
    enabled: bool
    one: int
    two: int
    disabled_words: set[str]
    disabled_attributes: list[str]

    def budget(self, word: str, attribute: str) -> int:
        if not self.enabled or word in self.disabled_words or _covers(self.disabled_attributes, attribute):
            return 0
        if len(word) >= self.two:
            return 2
        return 1 if len(word) >= self.one else 0


def _match_word(term: str, token: str, prefix: bool, budget: int) -> tuple[int, bool] | None:
    """(typos, exact) when ``token`` matches the query word ``term``."""
    if token == term:
        return 0, True
    if prefix and token.startswith(term):
        return 0, False
    if budget == 0 or not token:
        return None
    if not prefix and abs(len(token) - len(term)) > budget:
        return None
    if prefix and len(token) > len(term):
        low = max(1, len(term) - budget)
        high = min(len(token), len(term) + budget)
        distance = min(_damerau(term, token[:k]) for k in range(low, high + 1))
    else:
        distance = _damerau(term, token)
    if term[:1] != token[:1]:
        distance += 1  # a typo on the first letter counts double
    return (distance, False) if distance <= budget else None


@dataclass
class _FieldText:
    rank: int
    path: str
    text: str
    words: list[_Word]


@dataclass
class _TermMatch:
    typos: int
    exact: bool
    rank: int
    positions: dict[int, list[int]]  # field number -> word positions


def _searchable_fields(doc: JSON, searchable: list[str], restrict: list[str] | None) -> list[_FieldText]:
    out: list[_FieldText] = []
    if "*" in searchable:
        top = {key: i for i, key in enumerate(doc)}
        pairs = [(top.get(path.split(".")[0], 0), path, v) for path, v in _flatten(doc)]
    else:
        pairs = []
        for rank, attr in enumerate(searchable):
            for value in _values_at(doc, attr):
                for sub_path, scalar in _flatten(value):
                    pairs.append((rank, f"{attr}.{sub_path}" if sub_path else attr, scalar))
    for rank, path, value in pairs:
        if restrict is not None and not _covers(restrict, path):
            continue
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif _is_number(value):
            text = _compact(value)
        else:
            continue
        out.append(_FieldText(rank, path, text, _words(text)))
    return out


class _QueryMatcher:
    def __init__(self, terms: list[_Term], synonyms: dict[str, list[list[str]]], typo: _TypoConfig) -> None:
        self.terms = terms
        self.synonyms = synonyms
        self.typo = typo

    def _phrase_positions(self, words: list[str], fld: _FieldText) -> list[int]:
        tokens = [w.text for w in fld.words]
        k = len(words)
        return [i for i in range(len(tokens) - k + 1) if tokens[i : i + k] == words]

    def match_term(self, term: _Term, fields: list[_FieldText]) -> _TermMatch | None:
        best: _TermMatch | None = None
        for fi, fld in enumerate(fields):
            if term.phrase:
                found = [(p, 0, True) for p in self._phrase_positions(term.words, fld)]
            else:
                word = term.words[0]
                budget = self.typo.budget(word, fld.path)
                found = []
                for pos, token in enumerate(fld.words):
                    hit = _match_word(word, token.text, term.prefix, budget)
                    if hit is not None:
                        found.append((pos, hit[0], hit[1]))
                for alternative in self.synonyms.get(word, []):
                    found.extend((p, 0, False) for p in self._phrase_positions(alternative, fld))
            if not found:
                continue
            typos = min(f[1] for f in found)
            exact = any(f[2] for f in found)
            if best is None:
                best = _TermMatch(typos, exact, fld.rank, {})
            else:
                best.typos = min(best.typos, typos)
                best.exact = best.exact or exact
                best.rank = min(best.rank, fld.rank)
            best.positions[fi] = sorted(f[0] for f in found)
        return best

    def excluded(self, fields: list[_FieldText]) -> bool:
        for term in self.terms:
            if not term.negative:
                continue
            for fld in fields:
                if term.phrase and self._phrase_positions(term.words, fld):
                    return True
                if not term.phrase and any(w.text == term.words[0] for w in fld.words):
                    return True
        return False

    def highlight_spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        words = _words(text)
        for term in self.terms:
            if term.negative:
                continue
            if term.phrase or len(term.words) > 1:
                k = len(term.words)
                for i in range(len(words) - k + 1):
                    if [w.text for w in words[i : i + k]] == term.words:
                        spans.extend((w.start, w.end) for w in words[i : i + k])
                continue
            word = term.words[0]
            budget = self.typo.budget(word, "")
            for token in words:
                hit = _match_word(word, token.text, term.prefix, budget)
                if hit is None:
                    continue
                exact_prefix = term.prefix and hit[0] == 0 and not hit[1]
                end = _prefix_end(text, token, len(word)) if exact_prefix else token.end
                spans.append((token.start, end))
        merged: list[tuple[int, int]] = []
        for start, end in sorted(set(spans)):
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged


class _Desc:
    """Inverts the order of a comparable value, for descending sorts inside tuple keys."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash(self.value)


def _sort_key(doc: JSON, attr: str, ascending: bool) -> tuple[Any, ...]:
    leaves = _leaves(_values_at(doc, attr))
    numbers = [float(v) for v in leaves if _is_number(v)]
    strings = [_norm_facet(v) for v in leaves if isinstance(v, str)]
    strings += ["true" if v else "false" for v in leaves if isinstance(v, bool)]
    # Numbers come before strings, and documents without the field come last, in both directions.
    if numbers:
        return (0, min(numbers)) if ascending else (0, -max(numbers))
    if strings:
        return (1, min(strings)) if ascending else (1, _Desc(max(strings)))
    return (2, 0)


def _parse_sort(sort: list[str], sortable: list[str], ranking_rules: list[str]) -> list[tuple[str, bool]]:
    parsed: list[tuple[str, bool]] = []
    for item in sort:
        attr, sep, direction = item.rpartition(":")
        if not sep or direction not in ("asc", "desc") or not attr:
            raise MeiliError(
                "invalid_search_sort",
                "Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found "
                f"`{item}`.",
            )
        if attr in _RESERVED_FIELDS or attr.startswith("_geoPoint("):
            raise MeiliError(
                "invalid_search_sort",
                f"`{attr.split('(')[0]}` is a reserved keyword and thus can't be used as a sort expression.",
            )
        if not _covers(sortable, attr):
            if sortable:
                tail = f"Available sortable attributes are: `{', '.join(sorted(set(sortable)))}`."
            else:
                tail = "This index does not have configured sortable attributes."
            raise MeiliError("invalid_search_sort", f"Attribute `{attr}` is not sortable. {tail}")
        parsed.append((attr, direction == "asc"))
    if parsed and "sort" not in ranking_rules:
        raise MeiliError(
            "invalid_search_sort",
            "You must specify where `sort` is listed in the rankingRules setting to use the sort parameter at "
            "search time.",
        )
    return parsed


_SEARCH_FIELDS = (
    "q",
    "vector",
    "offset",
    "limit",
    "page",
    "hitsPerPage",
    "attributesToRetrieve",
    "retrieveVectors",
    "attributesToCrop",
    "cropLength",
    "attributesToHighlight",
    "showMatchesPosition",
    "showRankingScore",
    "showRankingScoreDetails",
    "filter",
    "sort",
    "distinct",
    "facets",
    "highlightPreTag",
    "highlightPostTag",
    "cropMarker",
    "matchingStrategy",
    "attributesToSearchOn",
    "hybrid",
    "rankingScoreThreshold",
    "locales",
)
_SEARCH_UINT = ("offset", "limit", "page", "hitsPerPage", "cropLength")
_SEARCH_LISTS = ("attributesToRetrieve", "attributesToCrop", "attributesToHighlight", "facets", "sort")
_SEARCH_BOOLS = ("showMatchesPosition", "showRankingScore", "showRankingScoreDetails", "retrieveVectors")
_SEARCH_STRINGS = ("highlightPreTag", "highlightPostTag", "cropMarker", "distinct")


def _search_code(name: str) -> str:
    return f"invalid_search_{_camel_to_snake(name)}"


def _validate_search_body(body: Any) -> JSON:
    if not isinstance(body, dict):
        raise _type_error("bad_request", "", "an object", body)
    _reject_unknown_fields(body, _SEARCH_FIELDS, "bad_request")
    for name, value in body.items():
        if value is None:
            continue
        code, path = _search_code(name), f".{name}"
        if name == "q":
            _expect_str(value, code, path)
        elif name in _SEARCH_UINT:
            _expect_uint(value, code, path)
        elif name in _SEARCH_LISTS or name in ("attributesToSearchOn", "locales"):
            _expect_str_list(value, code, path)
        elif name in _SEARCH_BOOLS:
            _expect_bool(value, code, path)
        elif name in _SEARCH_STRINGS:
            _expect_str(value, code, path)
        elif name == "matchingStrategy":
            _expect_str(value, code, path)
            if value not in ("last", "all", "frequency"):
                raise MeiliError(
                    code, f"Unknown value `{value}` at `.matchingStrategy`: expected one of `last`, `all`, `frequency`"
                )
        elif name == "rankingScoreThreshold":
            if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
                raise MeiliError(
                    code,
                    f"Invalid value at `.rankingScoreThreshold`: the value of `rankingScoreThreshold` is invalid, "
                    f"expected a float between `0.0` and `1.0`, but found `{_compact(value)}`",
                )
        elif name in ("vector", "hybrid"):
            # Vector search needs embedders; failing loudly beats silently answering with keyword results.
            raise MeiliError(
                "invalid_search_hybrid_query" if name == "hybrid" else "invalid_search_vector",
                f"The Meilisearch emulator does not support `{name}` (vector or hybrid) search.",
            )
    return body


def _search_params_from_query(query: dict[str, str]) -> JSON:
    _reject_unknown_params(query, _SEARCH_FIELDS)
    out: JSON = {}
    for name, raw in query.items():
        code = _search_code(name)
        if name in _SEARCH_UINT:
            out[name] = _param_uint(query, name, code, 0)
        elif name in _SEARCH_BOOLS:
            out[name] = _param_bool(query, name, code, False)
        elif name in (*_SEARCH_LISTS, "attributesToSearchOn", "locales"):
            out[name] = _param_list(query, name)
        elif name == "rankingScoreThreshold":
            number = _parse_number(raw)
            if number is None:
                raise MeiliError(code, f"Invalid value in parameter `{name}`: could not parse `{raw}` as a float")
            out[name] = number
        elif name == "matchingStrategy":
            if raw not in ("last", "all", "frequency"):
                raise MeiliError(
                    code,
                    f"Unknown value `{raw}` for parameter `matchingStrategy`: expected one of `last`, `all`, "
                    "`frequency`",
                )
            out[name] = raw
        else:
            out[name] = raw
    return _validate_search_body(out)


def _facet_key(value: Any) -> tuple[str, str] | None:
    """(grouping key, displayed key) of a facet value."""
    if isinstance(value, bool):
        text = "true" if value else "false"
        return text, text
    if _is_number(value):
        number = float(value)
        shown = str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
        return f"n:{number!r}", shown
    if isinstance(value, str):
        return f"s:{_norm_facet(value)}", value
    return None


def search_index(index: _Index, params: JSON) -> JSON:
    """Run a validated search request against one index."""
    started = time.perf_counter()
    settings = index.settings
    filterable = settings["filterableAttributes"]
    q = params.get("q") or ""
    limit = 20 if params.get("limit") is None else params["limit"]
    offset = params.get("offset") or 0
    page, hits_per_page = params.get("page"), params.get("hitsPerPage")
    paged = page is not None or hits_per_page is not None
    if paged:
        page = 1 if page is None else page
        hits_per_page = 20 if hits_per_page is None else hits_per_page
        if page == 0:
            raise MeiliError(
                "invalid_search_page",
                "Invalid value at `.page`: a non-zero integer value lower than `18446744073709551615` was expected, "
                "but found a zero",
            )

    node = _parse_filter(params.get("filter"), "invalid_search_filter")
    if node is not None:
        _check_filterable(node, filterable, "invalid_search_filter")
    sort = _parse_sort(params.get("sort") or [], settings["sortableAttributes"], settings["rankingRules"])

    searchable = settings["searchableAttributes"]
    restrict = params.get("attributesToSearchOn")
    if restrict is not None and "*" not in restrict:
        for attr in restrict:
            if "*" not in searchable and not _covers(searchable, attr):
                raise MeiliError(
                    "invalid_search_attributes_to_search_on",
                    f"Attribute `{attr}` is not searchable. Available searchable attributes are: "
                    f"`{', '.join(searchable)}`.",
                )
    else:
        restrict = None

    distinct = params.get("distinct") or settings["distinctAttribute"]
    if params.get("distinct") and not _covers(filterable, params["distinct"]):
        tail = (
            f"Available filterable attributes are: `{', '.join(sorted(set(filterable)))}`."
            if filterable
            else "This index does not have configured filterable attributes."
        )
        raise MeiliError(
            "invalid_search_distinct",
            f"Attribute `{params['distinct']}` is not filterable and thus, cannot be used as distinct attribute. "
            f"{tail}",
        )

    facets = params.get("facets")
    if facets:
        facets = list(filterable) if "*" in facets else facets
        invalid = [f for f in facets if not _covers(filterable, f)]
        if invalid:
            if not filterable:
                message = "Invalid facet distribution, this index does not have configured filterable attributes."
            else:
                names = ", ".join(sorted(set(filterable)))
                which = (
                    f"attribute `{invalid[0]}` is" if len(invalid) == 1 else f"attributes `{', '.join(invalid)}` are"
                )
                available = (
                    f"The available filterable attribute is `{names}`."
                    if len(set(filterable)) == 1
                    else f"The available filterable attributes are `{names}`."
                )
                message = f"Invalid facet distribution, {which} not filterable. {available}"
            raise MeiliError("invalid_search_facets", message)

    typo_settings = settings["typoTolerance"]
    typo = _TypoConfig(
        enabled=typo_settings.get("enabled", True),
        one=typo_settings["minWordSizeForTypos"].get("oneTypo", 5),
        two=typo_settings["minWordSizeForTypos"].get("twoTypos", 9),
        disabled_words={_fold(w) for w in typo_settings.get("disableOnWords") or []},
        disabled_attributes=list(typo_settings.get("disableOnAttributes") or []),
    )
    synonyms: dict[str, list[list[str]]] = {}
    for key, alternatives in settings["synonyms"].items():
        synonyms.setdefault(_fold(key), []).extend([w.text for w in _words(alt)] for alt in alternatives if _words(alt))
    stop_words = {_fold(w) for w in settings["stopWords"]}
    terms = _parse_query(q, stop_words)
    positive = [t for t in terms if not t.negative]
    matcher = _QueryMatcher(terms, synonyms, typo)
    strategy = params.get("matchingStrategy") or "last"

    candidates: list[tuple[int, JSON, list[_FieldText]]] = []
    for order, doc in enumerate(index.documents.values()):
        if node is not None and not _eval_filter(node, doc):
            continue
        candidates.append((order, doc, _searchable_fields(doc, searchable, restrict) if terms else []))

    scored: list[tuple[tuple[Any, ...], float, JSON]] = []
    if positive:
        term_matches: list[list[_TermMatch | None]] = []
        doc_freq = [0] * len(positive)
        for _, _, fields in candidates:
            row = [matcher.match_term(t, fields) for t in positive]
            for i, m in enumerate(row):
                doc_freq[i] += m is not None
            term_matches.append(row)
        rarest_first = sorted(range(len(positive)), key=lambda i: doc_freq[i])
        for (order, doc, fields), row in zip(candidates, term_matches, strict=True):
            if matcher.excluded(fields):
                continue
            matched = [m is not None for m in row]
            if strategy == "all":
                bucket = len(positive) if all(matched) else 0
            elif strategy == "frequency":
                bucket = 0
                while bucket < len(positive) and matched[rarest_first[bucket]]:
                    bucket += 1
            else:
                bucket = 0
                while bucket < len(positive) and matched[bucket]:
                    bucket += 1
            if bucket == 0:
                continue
            used = [row[i] for i in rarest_first[:bucket]] if strategy == "frequency" else row[:bucket]
            used_matches = [m for m in used if m is not None]
            typos = sum(m.typos for m in used_matches)
            exact = sum(1 for m in used_matches if m.exact)
            rank = min(m.rank for m in used_matches)
            first_pos = min(min(p) for m in used_matches for p in m.positions.values())
            proximity = 0
            for a, b in itertools.pairwise(used_matches):
                gaps = [
                    min(abs(pb - pa) for pa in a.positions[f] for pb in b.positions[f])
                    for f in a.positions
                    if f in b.positions
                ]
                proximity += min([min(g, 7) for g in gaps] or [8])
            features = {
                "words": -bucket,
                "typo": typos,
                "proximity": proximity,
                "attribute": (rank, first_pos),
                "exactness": -exact,
            }
            score = (bucket / len(positive)) * (1.0 - min(typos, 10) / 20.0) * (1.0 - min(proximity, 16) / 64.0)
            scored.append((_ranking_key(features, doc, order, settings["rankingRules"], sort), score, doc))
    else:
        for order, doc, fields in candidates:
            if terms and matcher.excluded(fields):
                continue
            scored.append((_ranking_key({}, doc, order, settings["rankingRules"], sort), 1.0, doc))
    scored.sort(key=lambda item: item[0])

    threshold = params.get("rankingScoreThreshold")
    ranked = [(score, doc) for _, score, doc in scored if threshold is None or score >= threshold]
    if distinct:
        seen: set[str] = set()
        unique: list[tuple[float, JSON]] = []
        for score, doc in ranked:
            keys = [k for k in (_facet_key(v) for v in _leaves(_values_at(doc, distinct))) if k is not None]
            if keys and any(k[0] in seen for k in keys):
                continue
            seen.update(k[0] for k in keys)
            unique.append((score, doc))
        ranked = unique

    max_total = settings["pagination"]["maxTotalHits"]
    total = min(len(ranked), max_total)
    if paged:
        assert page is not None and hits_per_page is not None
        start, count = (page - 1) * hits_per_page, hits_per_page
    else:
        start, count = offset, limit
    window = ranked[min(start, total) : min(start + count, total)]

    displayed = settings["displayedAttributes"]
    to_retrieve = params.get("attributesToRetrieve") or ["*"]
    to_highlight = params.get("attributesToHighlight") or []
    to_crop = params.get("attributesToCrop") or []
    crop_length = 10 if params.get("cropLength") is None else params["cropLength"]
    pre = params.get("highlightPreTag")
    post = params.get("highlightPostTag")
    pre = "<em>" if pre is None else pre
    post = "</em>" if post is None else post
    marker = params.get("cropMarker")
    marker = "…" if marker is None else marker
    hits: list[JSON] = []
    for score, doc in window:
        visible = _select(doc, displayed)
        hit = _select(visible, to_retrieve)
        if to_highlight or to_crop:
            hit["_formatted"] = _format_hit(
                visible, to_retrieve, to_highlight, to_crop, crop_length, matcher, pre, post, marker
            )
        if params.get("showMatchesPosition"):
            hit["_matchesPosition"] = _matches_position(visible, matcher)
        if params.get("showRankingScore"):
            hit["_rankingScore"] = round(score, 6)
        hits.append(hit)

    result: JSON = {"hits": hits, "query": q, "processingTimeMs": int((time.perf_counter() - started) * 1000)}
    if paged:
        assert page is not None and hits_per_page is not None
        result["hitsPerPage"] = hits_per_page
        result["page"] = page
        result["totalPages"] = math.ceil(total / hits_per_page) if hits_per_page else 0
        result["totalHits"] = total
    else:
        result["limit"] = limit
        result["offset"] = offset
        result["estimatedTotalHits"] = total
    if facets:
        result["facetDistribution"], result["facetStats"] = _facet_distribution(
            [doc for _, doc in ranked], facets, settings["faceting"]
        )
    return result


def _ranking_key(
    features: JSON, doc: JSON, order: int, rules: list[str], sort: list[tuple[str, bool]]
) -> tuple[Any, ...]:
    key: list[Any] = []
    for rule in rules:
        if rule == "sort":
            key.extend(_sort_key(doc, attr, asc) for attr, asc in sort)
        elif rule in features:
            key.append(features[rule])
        elif ":" in rule and rule not in DEFAULT_RANKING_RULES:
            attr, _, direction = rule.rpartition(":")
            key.append(_sort_key(doc, attr, direction == "asc"))
    key.append(order)
    return tuple(key)


def _wants(attributes: list[str], path: str) -> bool:
    return "*" in attributes or _covers(attributes, path)


def _format_hit(
    doc: JSON,
    to_retrieve: list[str],
    to_highlight: list[str],
    to_crop: list[str],
    crop_length: int,
    matcher: _QueryMatcher,
    pre: str,
    post: str,
    marker: str,
) -> JSON:
    crop_lengths: dict[str, int] = {}
    for spec in to_crop:
        name, _, length = spec.partition(":")
        crop_lengths[name] = int(length) if length.isdigit() else crop_length
    selectors = list(to_retrieve) + [a for a in to_highlight + list(crop_lengths) if a != "*"]
    base = _select(doc, ["*"] if "*" in to_retrieve else selectors)

    def visit(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: visit(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [visit(v, path) for v in value]
        if value is None:
            return None
        text = value if isinstance(value, str) else _compact(value)
        crop = crop_lengths.get(path, crop_lengths.get("*")) if _wants(list(crop_lengths), path) else None
        highlight = _wants(to_highlight, path)
        if crop is None and not highlight:
            return value
        return _render(text, matcher, highlight, crop, pre, post, marker)

    return {k: visit(v, k) for k, v in base.items()}


def _render(
    text: str, matcher: _QueryMatcher, highlight: bool, crop: int | None, pre: str, post: str, marker: str
) -> str:
    spans = matcher.highlight_spans(text)
    start, end = 0, len(text)
    if crop is not None:
        words = _words(text)
        if len(words) > crop:
            first = 0
            if spans:
                first = next((i for i, w in enumerate(words) if w.end > spans[0][0]), 0)
            begin = max(0, min(first - crop // 2, len(words) - crop))
            start, end = words[begin].start, words[begin + crop - 1].end
    out: list[str] = [marker] if start > 0 else []
    cursor = start
    if highlight:
        for s, e in spans:
            if e <= start or s >= end:
                continue
            s, e = max(s, start), min(e, end)
            out.append(text[cursor:s] + pre + text[s:e] + post)
            cursor = e
    out.append(text[cursor:end])
    if end < len(text):
        out.append(marker)
    return "".join(out)


def _matches_position(doc: JSON, matcher: _QueryMatcher) -> JSON:
    positions: JSON = {}
    for path, value in _flatten(doc):
        if not isinstance(value, str):
            continue
        for s, e in matcher.highlight_spans(value):
            byte_start = len(value[:s].encode())
            positions.setdefault(path, []).append({"start": byte_start, "length": len(value[s:e].encode())})
    return positions


def _facet_distribution(docs: list[JSON], facets: list[str], faceting: JSON) -> tuple[JSON, JSON]:
    distribution: JSON = {}
    stats: JSON = {}
    max_values = faceting.get("maxValuesPerFacet", 100)
    order_by = faceting.get("sortFacetValuesBy") or {"*": "alpha"}
    for facet in facets:
        counts: dict[str, int] = {}
        shown: dict[str, str] = {}
        numbers: list[float] = []
        for doc in docs:
            seen: set[str] = set()
            for leaf in _leaves(_values_at(doc, facet)):
                key = _facet_key(leaf)
                if key is None or key[0] in seen:
                    continue
                seen.add(key[0])
                shown.setdefault(key[0], key[1])
                counts[key[0]] = counts.get(key[0], 0) + 1
                if _is_number(leaf):
                    numbers.append(float(leaf))
        items = [(shown[k], c) for k, c in counts.items()]
        if order_by.get(facet, order_by.get("*", "alpha")) == "count":
            items.sort(key=lambda kv: (-kv[1], kv[0]))
        else:
            items.sort(key=lambda kv: kv[0])
        distribution[facet] = dict(items[:max_values])
        if numbers:
            stats[facet] = {"min": min(numbers), "max": max(numbers)}
    return distribution, stats


# --------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    request: web.Request
    params: dict[str, str]
    query: dict[str, str]
    key: _ApiKey | None  # None: the master key, or no master key configured


Handler = Callable[[_Ctx], Awaitable[web.Response]]


@dataclass
class _Route:
    method: str
    segments: tuple[str, ...]
    action: str | None  # None: public route
    handler: Handler

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for pattern, part in zip(self.segments, parts, strict=True):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return params


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(), status=status, content_type="application/json"
    )


def _strict_json_loads(raw: bytes) -> Any:
    def reject_constant(name: str) -> Any:
        raise ValueError(f"invalid number `{name}`")

    return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)


# --------------------------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------------------------


class MeiliEmulator:
    """A Meilisearch server emulated in a background thread. See the module docstring."""

    def __init__(
        self,
        master_key: str | None = "masterKey",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        payload_limit: int = 100_000_000,
        task_delay_s: float = 0.0,
    ) -> None:
        self.master_key = master_key
        self.host = host
        self.payload_limit = payload_limit
        self.task_delay_s = task_delay_s
        self.fail_next_tasks: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str, int]] = []
        self._port = port
        self._lock = threading.RLock()
        self._indexes: dict[str, _Index] = {}
        self._tasks: dict[int, _Task] = {}
        self._next_task_uid = 0
        self._next_batch_uid = 0
        self._keys: dict[str, _ApiKey] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._serving = False
        self._routes = self._build_routes()
        if master_key is not None:
            now = time.time_ns()
            self._add_key("Default Search API Key", "Use it to search from the frontend", ["search"], ["*"], None, now)
            self._add_key(
                "Default Admin API Key",
                "Use it for anything that is not a search operation. Caution! Do not expose it on a public frontend",
                ["*"],
                ["*"],
                None,
                now,
            )

    # ---------------------------------------------------------------------------------------------------------
    # Lifecycle
    # ---------------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def __enter__(self) -> MeiliEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the event-loop thread and listen; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("MeiliEmulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._wake = asyncio.Event()
                loop.run_until_complete(self._listen())
                self._worker_task = loop.create_task(self._worker())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(self._teardown())
                loop.close()

        self._thread = threading.Thread(target=run, name="meilisearch-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("MeiliEmulator did not start within 30s")
        if failure:
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        """Stop listening: new connections are refused and tasks stop being processed. Data is kept."""
        if self._loop is None or not self._serving:
            return
        asyncio.run_coroutine_threadsafe(self._unlisten(), self._loop).result(30)

    def restart(self) -> None:
        """Listen again on the same port with all data kept (the backend is back)."""
        if self._loop is None:
            raise RuntimeError("MeiliEmulator was never started")
        if self._serving:
            return
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)

    def close(self) -> None:
        """Stop listening and end the background thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        self._loop = None
        self._thread = None

    async def _listen(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # A short shutdown timeout: stop() must look like a crashed backend, not a graceful drain.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, reuse_address=True)
        await site.start()
        self._runner = runner
        if self._port == 0:
            address = runner.addresses[0]
            self._port = int(address[1])
        self._serving = True
        if self._wake is not None:
            self._wake.set()

    async def _unlisten(self) -> None:
        self._serving = False
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _teardown(self) -> None:
        await self._unlisten()
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task

    # ---------------------------------------------------------------------------------------------------------
    # Test helpers
    # ---------------------------------------------------------------------------------------------------------

    def documents(self, index_uid: str) -> list[JSON]:
        """The stored documents of an index (empty when the index does not exist), bypassing HTTP."""
        with self._lock:
            index = self._indexes.get(index_uid)
            return copy.deepcopy(list(index.documents.values())) if index else []

    def index_uids(self) -> list[str]:
        with self._lock:
            return sorted(self._indexes)

    def settings(self, index_uid: str) -> JSON:
        with self._lock:
            return copy.deepcopy(self._indexes[index_uid].settings)

    def tasks(self) -> list[JSON]:
        with self._lock:
            return [task.view() for task in self._tasks.values()]

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Block until no task is enqueued or processing."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if all(t.status not in ("enqueued", "processing") for t in self._tasks.values()):
                    return
            time.sleep(0.01)
        raise TimeoutError(f"Meilisearch emulator tasks still pending after {timeout_s}s")

    # ---------------------------------------------------------------------------------------------------------
    # Keys and authorization
    # ---------------------------------------------------------------------------------------------------------

    def _add_key(
        self,
        name: str | None,
        description: str | None,
        actions: list[str],
        indexes: list[str],
        expires_at: str | None,
        now: int,
        uid: str | None = None,
    ) -> _ApiKey:
        assert self.master_key is not None
        uid = uid or str(uuid.uuid4())
        # Meilisearch derives a key from its uid and the master key the same way.
        value = hmac.new(self.master_key.encode(), uid.encode(), hashlib.sha256).hexdigest()
        key = _ApiKey(uid, value, name, description, actions, indexes, expires_at, now, now)
        self._keys[uid] = key
        return key

    def _authorize(self, request: web.Request, action: str) -> _ApiKey | None:
        if self.master_key is None:
            if action.startswith("keys."):
                raise MeiliError(
                    "missing_master_key",
                    "Meilisearch is running without a master key. To access this API endpoint, you must have set "
                    "a master key at launch.",
                )
            return None
        header = request.headers.get("Authorization")
        if header is None:
            raise MeiliError(
                "missing_authorization_header",
                "The Authorization header is missing. It must use the bearer authorization method.",
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        invalid = MeiliError("invalid_api_key", "The provided API key is invalid.")
        if scheme != "Bearer" or not token:
            raise invalid
        if hmac.compare_digest(token.encode(), self.master_key.encode()):
            return None
        with self._lock:
            key = next((k for k in self._keys.values() if hmac.compare_digest(k.key, token)), None)
        if key is None or key.expired() or not key.allows_action(action):
            raise invalid
        return key

    # ---------------------------------------------------------------------------------------------------------
    # Dispatch
    # ---------------------------------------------------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        r: list[tuple[str, str, str | None, Handler]] = [
            ("GET", "/health", None, self._health),
            ("GET", "/version", "version", self._version),
            ("GET", "/stats", "stats.get", self._global_stats),
            ("GET", "/keys", "keys.get", self._list_keys),
            ("POST", "/keys", "keys.create", self._create_key),
            ("GET", "/keys/{key}", "keys.get", self._get_key),
            ("PATCH", "/keys/{key}", "keys.update", self._update_key),
            ("DELETE", "/keys/{key}", "keys.delete", self._delete_key),
            ("GET", "/indexes", "indexes.get", self._list_indexes),
            ("POST", "/indexes", "indexes.create", self._create_index),
            ("GET", "/indexes/{index}", "indexes.get", self._get_index),
            ("PATCH", "/indexes/{index}", "indexes.update", self._update_index),
            ("DELETE", "/indexes/{index}", "indexes.delete", self._delete_index),
            ("GET", "/indexes/{index}/stats", "stats.get", self._index_stats),
            ("GET", "/indexes/{index}/documents", "documents.get", self._get_documents),
            ("POST", "/indexes/{index}/documents", "documents.add", self._replace_documents),
            ("PUT", "/indexes/{index}/documents", "documents.add", self._update_documents),
            ("DELETE", "/indexes/{index}/documents", "documents.delete", self._clear_documents),
            ("POST", "/indexes/{index}/documents/fetch", "documents.get", self._fetch_documents),
            ("POST", "/indexes/{index}/documents/delete-batch", "documents.delete", self._delete_batch),
            ("POST", "/indexes/{index}/documents/delete", "documents.delete", self._delete_by_filter),
            ("GET", "/indexes/{index}/documents/{id}", "documents.get", self._get_document),
            ("DELETE", "/indexes/{index}/documents/{id}", "documents.delete", self._delete_document),
            ("GET", "/indexes/{index}/search", "search", self._search_get),
            ("POST", "/indexes/{index}/search", "search", self._search_post),
            ("GET", "/indexes/{index}/settings", "settings.get", self._get_settings),
            ("PATCH", "/indexes/{index}/settings", "settings.update", self._patch_settings),
            ("DELETE", "/indexes/{index}/settings", "settings.update", self._reset_settings),
            ("GET", "/indexes/{index}/settings/{setting}", "settings.get", self._get_setting),
            ("PUT", "/indexes/{index}/settings/{setting}", "settings.update", self._put_setting),
            ("PATCH", "/indexes/{index}/settings/{setting}", "settings.update", self._put_setting),
            ("DELETE", "/indexes/{index}/settings/{setting}", "settings.update", self._reset_setting),
            ("POST", "/swap-indexes", "indexes.swap", self._swap_indexes),
            ("POST", "/multi-search", "search", self._multi_search),
            ("GET", "/tasks", "tasks.get", self._list_tasks),
            ("DELETE", "/tasks", "tasks.delete", self._delete_tasks),
            ("POST", "/tasks/cancel", "tasks.cancel", self._cancel_tasks),
            ("GET", "/tasks/{uid}", "tasks.get", self._get_task),
            ("POST", "/dumps", "dumps.create", self._create_dump),
        ]
        return [_Route(m, tuple(p.strip("/").split("/")), a, h) for m, p, a, h in r]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            response = await self._route(request)
        except MeiliError as exc:
            response = _json(exc.body(), exc.status)
        except Exception as exc:  # the emulator's own bugs must be visible, not swallowed
            traceback.print_exc(file=sys.stderr)
            response = _json(MeiliError("internal", f"emulator bug: {exc!r}").body(), 500)
        with self._lock:
            self.requests.append((request.method, request.path, response.status))
        return response

    async def _route(self, request: web.Request) -> web.Response:
        # Meilisearch trims trailing slashes; each path segment is percent-decoded on its own.
        raw = request.rel_url.raw_path.strip("/")
        parts = [unquote(p) for p in raw.split("/")] if raw else [""]
        path_matches = [(route, params) for route in self._routes if (params := route.match(parts)) is not None]
        if not path_matches:
            return web.Response(status=404)
        chosen = next(((r, p) for r, p in path_matches if r.method == request.method), None)
        if chosen is None:
            return web.Response(status=405)
        route, params = chosen
        key = self._authorize(request, route.action) if route.action is not None else None
        if "index" in params:
            if key is not None and not key.allows_index(params["index"]):
                raise MeiliError("invalid_api_key", "The provided API key is invalid.")
            _validate_index_uid(params["index"])
        query = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        return await route.handler(_Ctx(request, params, query, key))

    # ---------------------------------------------------------------------------------------------------------
    # Bodies
    # ---------------------------------------------------------------------------------------------------------

    async def _read_body(self, ctx: _Ctx) -> bytes:
        request = ctx.request
        chunks: list[bytes] = []
        size = 0
        too_large = request.content_length is not None and request.content_length > self.payload_limit
        # aiohttp already undoes a gzip/deflate/br Content-Encoding, as Meilisearch does.
        while True:
            try:
                chunk = await request.content.read(65536)
            except Exception as exc:
                raise MeiliError("malformed_payload", f"The payload could not be read: {exc}") from None
            if not chunk:
                break
            size += len(chunk)
            if size > self.payload_limit:
                too_large = True
            if not too_large:
                chunks.append(chunk)
        if too_large:
            raise MeiliError(
                "payload_too_large",
                "The provided payload reached the size limit. The maximum accepted payload size is "
                f"{_human_bytes(self.payload_limit)}.",
            )
        return b"".join(chunks)

    @staticmethod
    def _mime(ctx: _Ctx) -> str | None:
        header = ctx.request.headers.get("Content-Type")
        if header is None:
            return None
        return header.split(";")[0].strip().lower()

    async def _json_body(self, ctx: _Ctx) -> Any:
        mime = self._mime(ctx)
        accepted = "Accepted values for the Content-Type header are: `application/json`"
        if mime is None:
            raise MeiliError("missing_content_type", f"A Content-Type header is missing. {accepted}")
        if mime != "application/json":
            header = ctx.request.headers.get("Content-Type", "")
            raise MeiliError("invalid_content_type", f"The Content-Type `{header}` is invalid. {accepted}")
        raw = await self._read_body(ctx)
        if not raw.strip():
            raise MeiliError("missing_payload", "A json payload is missing.")
        try:
            return _strict_json_loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MeiliError("malformed_payload", f"The json payload provided is malformed. `{exc}`.") from None

    async def _document_payload(self, ctx: _Ctx) -> list[JSON]:
        formats = {"application/json": "json", "application/x-ndjson": "ndjson", "text/csv": "csv"}
        accepted = (
            "Accepted values for the Content-Type header are: `application/json`, `application/x-ndjson`, `text/csv`"
        )
        mime = self._mime(ctx)
        if mime is None:
            raise MeiliError("missing_content_type", f"A Content-Type header is missing. {accepted}")
        kind = formats.get(mime)
        if kind is None:
            header = ctx.request.headers.get("Content-Type", "")
            raise MeiliError("invalid_content_type", f"The Content-Type `{header}` is invalid. {accepted}")
        delimiter = ctx.query.get("csvDelimiter")
        if delimiter is not None:
            if len(delimiter) != 1:
                found = (
                    "an empty string"
                    if not delimiter
                    else (f"the following string of {len(delimiter)} characters: `{delimiter}`")
                )
                raise MeiliError(
                    "invalid_document_csv_delimiter",
                    f"Invalid value in parameter `csvDelimiter`: expected a string of one character, but found {found}",
                )
            if kind != "csv":
                raise MeiliError(
                    "invalid_content_type",
                    f"The Content-Type `{mime}` does not support the use of a csv delimiter. The csv delimiter can "
                    "only be used with the Content-Type `text/csv`.",
                )
        raw = await self._read_body(ctx)
        if not raw.strip():
            raise MeiliError("missing_payload", f"A {kind} payload is missing.")

        def malformed(detail: str) -> MeiliError:
            return MeiliError(
                "malformed_payload",
                f"The `{kind}` payload provided is malformed. `Couldn't serialize document value: {detail}`.",
            )

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise malformed(str(exc)) from None
        docs: list[Any]
        if kind == "json":
            try:
                parsed = _strict_json_loads(raw)
            except ValueError as exc:
                raise malformed(str(exc)) from None
            if not isinstance(parsed, list):
                # Deviation (stricter): Meilisearch also takes a single object; the project must send arrays.
                raise malformed("data are not a list of objects")
            docs = parsed
        elif kind == "ndjson":
            docs = []
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    docs.append(_strict_json_loads(line.encode()))
                except ValueError as exc:
                    raise malformed(f"{exc} at line {number}") from None
        else:
            docs = self._parse_csv(text, delimiter or ",", malformed)
        for doc in docs:
            if not isinstance(doc, dict):
                raise malformed(f"invalid type: {_found(doc)}, expected a map")
        return docs

    @staticmethod
    def _parse_csv(text: str, delimiter: str, malformed: Callable[[str], MeiliError]) -> list[Any]:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        if not rows:
            return []
        columns: list[tuple[str, str]] = []
        for header in rows[0]:
            name, sep, kind = header.rpartition(":")
            if sep and kind in ("string", "number", "boolean"):
                columns.append((name, kind))
            else:
                columns.append((header, "string"))
        docs: list[Any] = []
        for row in rows[1:]:
            doc: JSON = {}
            for (name, kind), cell in zip(columns, row, strict=False):
                if kind == "string":
                    doc[name] = cell if cell != "" else None
                elif cell.strip() == "":
                    doc[name] = None
                elif kind == "number":
                    number = _parse_number(cell.strip())
                    if number is None:
                        raise malformed(f"invalid number `{cell}`")
                    doc[name] = int(number) if number.is_integer() and "." not in cell else number
                else:
                    if cell.strip() not in ("true", "false"):
                        raise malformed(f"invalid boolean `{cell}`")
                    doc[name] = cell.strip() == "true"
            docs.append(doc)
        return docs

    # ---------------------------------------------------------------------------------------------------------
    # Tasks
    # ---------------------------------------------------------------------------------------------------------

    def _enqueue(self, index_uid: str | None, type_: str, details: JSON | None, payload: Any = None) -> web.Response:
        with self._lock:
            task = _Task(self._next_task_uid, index_uid, type_, details, time.time_ns(), payload)
            self._next_task_uid += 1
            if self.fail_next_tasks:
                task.forced_error = self.fail_next_tasks.pop(0)
            self._tasks[task.uid] = task
        if self._wake is not None:
            self._wake.set()
        return _json(task.summary(), 202)

    def _next_task(self) -> _Task | None:
        with self._lock:
            enqueued = [t for t in self._tasks.values() if t.status == "enqueued"]
        # Like Meilisearch, cancelation and deletion tasks jump the queue.
        for kind in ("taskCancelation", "taskDeletion"):
            for task in enqueued:
                if task.type == kind:
                    return task
        return enqueued[0] if enqueued else None

    async def _worker(self) -> None:
        assert self._wake is not None
        while True:
            task = self._next_task() if self._serving else None
            if task is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            with self._lock:
                task.status = "processing"
                task.started_at = time.time_ns()
                task.batch_uid = self._next_batch_uid
                self._next_batch_uid += 1
            if self.task_delay_s > 0:
                await asyncio.sleep(self.task_delay_s)
            else:
                await asyncio.sleep(0)
            with self._lock:
                self._process(task)

    def _process(self, task: _Task) -> None:
        try:
            if task.forced_error is not None:
                code, message = task.forced_error
                raise MeiliError(code, message)
            handler = getattr(self, f"_run_{_camel_to_snake(task.type)}")
            handler(task)
            task.status = "succeeded"
        except MeiliError as exc:
            task.status = "failed"
            task.error = exc.body()
            self._zero_details(task)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            task.status = "failed"
            task.error = MeiliError("internal", f"emulator bug: {exc!r}").body()
            self._zero_details(task)
        task.finished_at = max(time.time_ns(), (task.started_at or 0) + 1000)
        task.payload = None

    @staticmethod
    def _zero_details(task: _Task) -> None:
        if task.details is None:
            return
        for key in ("indexedDocuments", "deletedDocuments", "canceledTasks", "deletedTasks"):
            if key in task.details:
                task.details[key] = 0

    def _index_or_fail(self, uid: str | None) -> _Index:
        assert uid is not None
        index = self._indexes.get(uid)
        if index is None:
            raise MeiliError("index_not_found", f"Index `{uid}` not found.")
        return index

    def _create_index_now(self, uid: str, primary_key: str | None) -> _Index:
        now = time.time_ns()
        index = _Index(uid, primary_key, now, now)
        self._indexes[uid] = index
        return index

    def _run_index_creation(self, task: _Task) -> None:
        assert task.index_uid is not None
        if task.index_uid in self._indexes:
            raise MeiliError("index_already_exists", f"Index `{task.index_uid}` already exists.")
        self._create_index_now(task.index_uid, task.payload)

    def _run_index_update(self, task: _Task) -> None:
        index = self._index_or_fail(task.index_uid)
        primary_key = task.payload
        if primary_key is not None and primary_key != index.primary_key:
            if index.documents and index.primary_key is not None:
                raise MeiliError(
                    "index_primary_key_already_exists", f"Index already has a primary key: `{index.primary_key}`."
                )
            index.primary_key = primary_key
        index.updated_at = time.time_ns()

    def _run_index_deletion(self, task: _Task) -> None:
        index = self._index_or_fail(task.index_uid)
        del self._indexes[index.uid]
        assert task.details is not None
        task.details["deletedDocuments"] = len(index.documents)

    def _run_index_swap(self, task: _Task) -> None:
        swaps: list[tuple[str, str]] = task.payload
        missing = sorted({uid for pair in swaps for uid in pair if uid not in self._indexes})
        if missing:
            if len(missing) == 1:
                raise MeiliError("index_not_found", f"Index `{missing[0]}` not found.")
            raise MeiliError("index_not_found", f"Indexes {_ticks(missing)} not found.")
        mapping: dict[str, str] = {}
        for a, b in swaps:
            mapping[a], mapping[b] = b, a
            first, second = self._indexes[a], self._indexes[b]
            first.uid, second.uid = b, a
            self._indexes[a], self._indexes[b] = second, first
            now = time.time_ns()
            first.updated_at = second.updated_at = now
        # The task history follows the data; enqueued tasks keep their target.
        for other in self._tasks.values():
            if other is not task and other.status != "enqueued" and other.index_uid in mapping:
                other.index_uid = mapping[other.index_uid]

    def _run_document_addition_or_update(self, task: _Task) -> None:
        assert task.index_uid is not None and task.details is not None
        docs: list[JSON] = task.payload["documents"]
        method: str = task.payload["method"]
        wanted_key: str | None = task.payload["primaryKey"]
        index = self._indexes.get(task.index_uid)
        if index is None:
            # Meilisearch commits the implicit index creation before indexing, so it survives a failed batch.
            index = self._create_index_now(task.index_uid, None)
        primary_key = index.primary_key
        if wanted_key is not None:
            if primary_key is not None and primary_key != wanted_key:
                raise MeiliError(
                    "index_primary_key_already_exists", f"Index already has a primary key: `{primary_key}`."
                )
            primary_key = wanted_key
        elif primary_key is None and docs:
            candidates = [k for k in docs[0] if k.lower().endswith("id")]
            if not candidates:
                raise MeiliError(
                    "index_primary_key_no_candidate_found",
                    "The primary key inference failed as the engine did not find any field ending with `id` in its "
                    "name. Please specify the primary key manually using the `primaryKey` query parameter.",
                )
            if len(candidates) > 1:
                raise MeiliError(
                    "index_primary_key_multiple_candidates_found",
                    f"The primary key inference failed as the engine found {len(candidates)} fields ending with "
                    f"`id` in their names: '{candidates[0]}' and '{candidates[1]}'. Please specify the primary key "
                    "manually using the `primaryKey` query parameter.",
                )
            primary_key = candidates[0]
        # Validate every document before touching the index: one bad id fails the whole batch.
        keyed: list[tuple[str, JSON]] = []
        for doc in docs:
            assert primary_key is not None
            values = _values_at(doc, primary_key)
            if not values:
                raise MeiliError(
                    "missing_document_id", f"Document doesn't have a `{primary_key}` attribute: `{_compact(doc)}`."
                )
            if len(values) > 1:
                raise MeiliError(
                    "invalid_document_id",
                    f"Document have too many matching `{primary_key}` attribute: `{_compact(doc)}`.",
                )
            external = _external_id(values[0])
            if external is None:
                raise MeiliError(
                    "invalid_document_id",
                    f"Document identifier `{_compact(values[0])}` is invalid. A document identifier can be of type "
                    "integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and "
                    "underscores (_), and can not be more than 511 bytes.",
                )
            keyed.append((external, doc))
        for external, doc in keyed:
            existing = index.documents.get(external)
            if method == "update" and existing is not None:
                merged = dict(existing)
                merged.update(doc)
                index.documents[external] = merged
            else:
                index.documents[external] = doc
        index.primary_key = primary_key
        index.updated_at = time.time_ns()
        task.details["indexedDocuments"] = len(docs)

    def _run_document_deletion(self, task: _Task) -> None:
        index = self._index_or_fail(task.index_uid)
        assert task.details is not None
        payload = task.payload
        if payload["kind"] == "ids":
            removed = sum(index.documents.pop(i, None) is not None for i in dict.fromkeys(payload["ids"]))
        elif payload["kind"] == "filter":
            node = _parse_filter(payload["filter"], "invalid_document_filter")
            doomed: list[str] = []
            if node is not None:
                _check_filterable(node, index.settings["filterableAttributes"], "invalid_document_filter")
                doomed = [i for i, d in index.documents.items() if _eval_filter(node, d)]
            for i in doomed:
                del index.documents[i]
            removed = len(doomed)
        else:
            removed = len(index.documents)
            index.documents.clear()
        index.updated_at = time.time_ns()
        task.details["deletedDocuments"] = removed

    def _run_settings_update(self, task: _Task) -> None:
        assert task.index_uid is not None
        patch: JSON = task.payload["settings"]
        index = self._indexes.get(task.index_uid)
        if index is None:
            if task.payload["reset"]:
                raise MeiliError("index_not_found", f"Index `{task.index_uid}` not found.")
            index = self._create_index_now(task.index_uid, None)
        index.settings = _apply_settings(index.settings, patch)
        index.updated_at = time.time_ns()

    def _run_task_cancelation(self, task: _Task) -> None:
        matches: Callable[[_Task], bool] = task.payload
        matched = [t for t in self._tasks.values() if t is not task and matches(t)]
        canceled = 0
        for other in matched:
            if other.status in ("enqueued", "processing"):
                other.status = "canceled"
                other.canceled_by = task.uid
                other.finished_at = time.time_ns()
                other.payload = None
                canceled += 1
        assert task.details is not None
        task.details["matchedTasks"] = len(matched)
        task.details["canceledTasks"] = canceled

    def _run_task_deletion(self, task: _Task) -> None:
        matches: Callable[[_Task], bool] = task.payload
        matched = [t for t in self._tasks.values() if t is not task and matches(t)]
        deleted = 0
        for other in matched:
            if other.status in ("succeeded", "failed", "canceled"):
                del self._tasks[other.uid]
                deleted += 1
        assert task.details is not None
        task.details["matchedTasks"] = len(matched)
        task.details["deletedTasks"] = deleted

    def _run_dump_creation(self, task: _Task) -> None:
        assert task.details is not None
        task.details["dumpUid"] = (
            time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"{int(time.time() * 1000) % 1000:03d}"
        )

    # ---------------------------------------------------------------------------------------------------------
    # Routes: misc
    # ---------------------------------------------------------------------------------------------------------

    async def _health(self, ctx: _Ctx) -> web.Response:
        return _json({"status": "available"})

    async def _version(self, ctx: _Ctx) -> web.Response:
        return _json({"commitSha": COMMIT_SHA, "commitDate": COMMIT_DATE, "pkgVersion": PKG_VERSION})

    def _is_indexing(self, uid: str) -> bool:
        return any(t.index_uid == uid and t.status in ("enqueued", "processing") for t in self._tasks.values())

    def _stats_of(self, index: _Index) -> JSON:
        return {
            "numberOfDocuments": len(index.documents),
            "isIndexing": self._is_indexing(index.uid),
            "fieldDistribution": index.field_distribution(),
        }

    async def _global_stats(self, ctx: _Ctx) -> web.Response:
        with self._lock:
            indexes = {
                uid: self._stats_of(index)
                for uid, index in sorted(self._indexes.items())
                if ctx.key is None or ctx.key.allows_index(uid)
            }
            size = sum(len(_compact(d)) for i in self._indexes.values() for d in i.documents.values())
            finished = [t.finished_at for t in self._tasks.values() if t.finished_at is not None]
        return _json(
            {
                "databaseSize": size + 4096,
                "usedDatabaseSize": size + 4096,
                "lastUpdate": _fmt_ts(max(finished)) if finished else None,
                "indexes": indexes,
            }
        )

    async def _create_dump(self, ctx: _Ctx) -> web.Response:
        return self._enqueue(None, "dumpCreation", {"dumpUid": None})

    # ---------------------------------------------------------------------------------------------------------
    # Routes: keys
    # ---------------------------------------------------------------------------------------------------------

    async def _list_keys(self, ctx: _Ctx) -> web.Response:
        _reject_unknown_params(ctx.query, ("offset", "limit"))
        offset = _param_uint(ctx.query, "offset", "invalid_api_key_offset", 0)
        limit = _param_uint(ctx.query, "limit", "invalid_api_key_limit", 20)
        with self._lock:
            keys = sorted(self._keys.values(), key=lambda k: k.created_at, reverse=True)
            results = [k.view() for k in keys[offset : offset + limit]]
        return _json({"results": results, "offset": offset, "limit": limit, "total": len(keys)})

    def _find_key(self, ref: str) -> _ApiKey:
        for key in self._keys.values():
            if ref in (key.uid, key.key):
                return key
        raise MeiliError("api_key_not_found", f"API Key `{ref}` not found.")

    async def _get_key(self, ctx: _Ctx) -> web.Response:
        with self._lock:
            return _json(self._find_key(ctx.params["key"]).view())

    async def _create_key(self, ctx: _Ctx) -> web.Response:
        body = _expect_object(await self._json_body(ctx), "bad_request", "")
        allowed = ("uid", "name", "description", "actions", "indexes", "expiresAt")
        _reject_unknown_fields(body, allowed, "bad_request")
        for required in ("actions", "indexes", "expiresAt"):
            if required not in body:
                raise MeiliError(f"missing_api_key_{_camel_to_snake(required)}", f"Missing field `{required}`")
        actions = _expect_str_list(body["actions"], "invalid_api_key_actions", ".actions")
        for i, action in enumerate(actions):
            if action not in ALL_ACTIONS:
                raise MeiliError(
                    "invalid_api_key_actions",
                    f"Unknown value `{action}` at `.actions[{i}]`: expected one of {_ticks(ALL_ACTIONS)}",
                )
        indexes = _expect_str_list(body["indexes"], "invalid_api_key_indexes", ".indexes")
        expires_at = body["expiresAt"]
        if expires_at is not None:
            _expect_str(expires_at, "invalid_api_key_expires_at", ".expiresAt")
            try:
                _parse_date_param(expires_at, "expiresAt", after=False)
            except MeiliError:
                raise MeiliError(
                    "invalid_api_key_expires_at",
                    f"`{expires_at}` is not a valid date. It should follow the RFC 3339 format to represents a "
                    "date or datetime in the future or specified as a null value. e.g. 'YYYY-MM-DD' or "
                    "'YYYY-MM-DD HH:MM:SS'.",
                ) from None
        name = body.get("name")
        description = body.get("description")
        if name is not None:
            _expect_str(name, "invalid_api_key_name", ".name")
        if description is not None:
            _expect_str(description, "invalid_api_key_description", ".description")
        uid = body.get("uid")
        with self._lock:
            if uid is not None:
                _expect_str(uid, "invalid_api_key_uid", ".uid")
                try:
                    uuid.UUID(uid)
                except ValueError:
                    raise MeiliError(
                        "invalid_api_key_uid", f"Invalid value at `.uid`: invalid character: `{uid}` is not a UUID"
                    ) from None
                if uid in self._keys:
                    raise MeiliError(
                        "api_key_already_exists", f"`uid` field value `{uid}` is already an existing API key."
                    )
            key = self._add_key(name, description, actions, indexes, expires_at, time.time_ns(), uid)
            return _json(key.view(), 201)

    async def _update_key(self, ctx: _Ctx) -> web.Response:
        body = _expect_object(await self._json_body(ctx), "bad_request", "")
        for immutable in ("uid", "actions", "indexes", "expiresAt"):
            if immutable in body:
                raise MeiliError(
                    f"immutable_api_key_{_camel_to_snake(immutable)}",
                    f"The `{immutable}` field cannot be modified for the given resource.",
                )
        _reject_unknown_fields(body, ("name", "description"), "bad_request")
        with self._lock:
            key = self._find_key(ctx.params["key"])
            if "name" in body:
                key.name = body["name"]
            if "description" in body:
                key.description = body["description"]
            key.updated_at = time.time_ns()
            return _json(key.view())

    async def _delete_key(self, ctx: _Ctx) -> web.Response:
        with self._lock:
            key = self._find_key(ctx.params["key"])
            del self._keys[key.uid]
        return web.Response(status=204)

    # ---------------------------------------------------------------------------------------------------------
    # Routes: indexes
    # ---------------------------------------------------------------------------------------------------------

    async def _list_indexes(self, ctx: _Ctx) -> web.Response:
        _reject_unknown_params(ctx.query, ("offset", "limit"))
        offset = _param_uint(ctx.query, "offset", "invalid_index_offset", 0)
        limit = _param_uint(ctx.query, "limit", "invalid_index_limit", 20)
        with self._lock:
            indexes = [
                i.view() for uid, i in sorted(self._indexes.items()) if ctx.key is None or ctx.key.allows_index(uid)
            ]
        return _json(
            {"results": indexes[offset : offset + limit], "offset": offset, "limit": limit, "total": len(indexes)}
        )

    async def _create_index(self, ctx: _Ctx) -> web.Response:
        body = _expect_object(await self._json_body(ctx), "bad_request", "")
        _reject_unknown_fields(body, ("uid", "primaryKey"), "bad_request")
        if "uid" not in body:
            raise MeiliError("missing_index_uid", "Missing field `uid`")
        uid = _validate_index_uid(body["uid"], "invalid_index_uid", ".uid")
        if ctx.key is not None and not ctx.key.allows_index(uid):
            raise MeiliError("invalid_api_key", "The provided API key is invalid.")
        primary_key = body.get("primaryKey")
        if primary_key is not None:
            _expect_str(primary_key, "invalid_index_primary_key", ".primaryKey")
        return self._enqueue(uid, "indexCreation", {"primaryKey": primary_key}, primary_key)

    async def _get_index(self, ctx: _Ctx) -> web.Response:
        with self._lock:
            return _json(self._index_or_fail(ctx.params["index"]).view())

    async def _update_index(self, ctx: _Ctx) -> web.Response:
        body = _expect_object(await self._json_body(ctx), "bad_request", "")
        _reject_unknown_fields(body, ("primaryKey",), "bad_request")
        primary_key = body.get("primaryKey")
        if primary_key is not None:
            _expect_str(primary_key, "invalid_index_primary_key", ".primaryKey")
        return self._enqueue(ctx.params["index"], "indexUpdate", {"primaryKey": primary_key}, primary_key)

    async def _delete_index(self, ctx: _Ctx) -> web.Response:
        return self._enqueue(ctx.params["index"], "indexDeletion", {"deletedDocuments": None})

    async def _index_stats(self, ctx: _Ctx) -> web.Response:
        with self._lock:
            return _json(self._stats_of(self._index_or_fail(ctx.params["index"])))

    async def _swap_indexes(self, ctx: _Ctx) -> web.Response:
        body = await self._json_body(ctx)
        if not isinstance(body, list):
            raise _type_error("bad_request", "", "an array", body)
        swaps: list[tuple[str, str]] = []
        seen: set[str] = set()
        for i, item in enumerate(body):
            if not isinstance(item, dict):
                raise _type_error("bad_request", f"[{i}]", "an object", item)
            _reject_unknown_fields(item, ("indexes",), "bad_request", f"[{i}]")
            if "indexes" not in item:
                raise MeiliError("missing_swap_indexes", f"Missing field `indexes` inside `[{i}]`")
            pair = _expect_str_list(item["indexes"], "invalid_swap_indexes", f"[{i}].indexes")
            if len(pair) != 2:
                raise MeiliError(
                    "invalid_swap_indexes",
                    f"Two indexes must be given for each swap. The list `{json.dumps(pair).replace(',', ', ')}` "
                    f"contains {len(pair)} indexes.",
                )
            for j, uid in enumerate(pair):
                _validate_index_uid(uid, "invalid_index_uid", f"[{i}].indexes[{j}]")
                if ctx.key is not None and not ctx.key.allows_index(uid):
                    raise MeiliError("invalid_api_key", "The provided API key is invalid.")
                if uid in seen:
                    raise MeiliError(
                        "invalid_swap_duplicate_index_found",
                        f"Indexes must be declared only once during a swap. `{uid}` was specified several times.",
                    )
                seen.add(uid)
            swaps.append((pair[0], pair[1]))
        details = {"swaps": [{"indexes": [a, b]} for a, b in swaps]}
        return self._enqueue(None, "indexSwap", details, swaps)

    # ---------------------------------------------------------------------------------------------------------
    # Routes: documents
    # ---------------------------------------------------------------------------------------------------------

    async def _add_documents(self, ctx: _Ctx, method: str) -> web.Response:
        _reject_unknown_params(ctx.query, ("primaryKey", "csvDelimiter"))
        docs = await self._document_payload(ctx)
        primary_key = ctx.query.get("primaryKey")
        details = {"receivedDocuments": len(docs), "indexedDocuments": None}
        payload = {"documents": docs, "method": method, "primaryKey": primary_key}
        return self._enqueue(ctx.params["index"], "documentAdditionOrUpdate", details, payload)

    async def _replace_documents(self, ctx: _Ctx) -> web.Response:
        return await self._add_documents(ctx, "replace")

    async def _update_documents(self, ctx: _Ctx) -> web.Response:
        return await self._add_documents(ctx, "update")

    def _list_documents(
        self, index_uid: str, offset: int, limit: int, fields: list[str] | None, flt: Any, ids: Any
    ) -> web.Response:
        with self._lock:
            index = self._index_or_fail(index_uid)
            node = _parse_filter(flt, "invalid_document_filter")
            if node is not None:
                _check_filterable(node, index.settings["filterableAttributes"], "invalid_document_filter")
            docs = list(index.documents.items())
            if ids is not None:
                wanted = {i if isinstance(i, str) else _compact(i) for i in ids}
                docs = [(k, d) for k, d in docs if k in wanted]
            selected = [d for _, d in docs if node is None or _eval_filter(node, d)]
            page = [_select(d, fields or ["*"]) for d in selected[offset : offset + limit]]
        return _json({"results": page, "offset": offset, "limit": limit, "total": len(selected)})

    async def _get_documents(self, ctx: _Ctx) -> web.Response:
        _reject_unknown_params(ctx.query, ("offset", "limit", "fields", "filter", "retrieveVectors"))
        offset = _param_uint(ctx.query, "offset", "invalid_document_offset", 0)
        limit = _param_uint(ctx.query, "limit", "invalid_document_limit", 20)
        _param_bool(ctx.query, "retrieveVectors", "invalid_document_retrieve_vectors", False)
        fields = _param_list(ctx.query, "fields")
        with self._lock:
            self._index_or_fail(ctx.params["index"])
        return self._list_documents(ctx.params["index"], offset, limit, fields, ctx.query.get("filter"), None)

    async def _fetch_documents(self, ctx: _Ctx) -> web.Response:
        body = await self._json_body(ctx)
        if not isinstance(body, dict):
            raise _type_error("bad_request", "", "an object", body)
        _reject_unknown_fields(body, ("offset", "limit", "fields", "retrieveVectors", "filter", "ids"), "bad_request")
        offset = 0 if body.get("offset") is None else _expect_uint(body["offset"], "invalid_document_offset", ".offset")
        limit = 20 if body.get("limit") is None else _expect_uint(body["limit"], "invalid_document_limit", ".limit")
        fields = (
            None
            if body.get("fields") is None
            else _expect_str_list(body["fields"], "invalid_document_fields", ".fields")
        )
        if body.get("retrieveVectors") is not None:
            _expect_bool(body["retrieveVectors"], "invalid_document_retrieve_vectors", ".retrieveVectors")
        ids = body.get("ids")
        if ids is not None and not isinstance(ids, list):
            raise _type_error("invalid_document_ids", ".ids", "an array", ids)
        return self._list_documents(ctx.params["index"], offset, limit, fields, body.get("filter"), ids)

    async def _get_document(self, ctx: _Ctx) -> web.Response:
        _reject_unknown_params(ctx.query, ("fields", "retrieveVectors"))
        fields = _param_list(ctx.query, "fields")
        with self._lock:
            index = self._index_or_fail(ctx.params["index"])
            doc = index.documents.get(ctx.params["id"])
            if doc is None:
                raise MeiliError("document_not_found", f"Document `{ctx.params['id']}` not found.")
            return _json(_select(doc, fields or ["*"]))

    async def _delete_document(self, ctx: _Ctx) -> web.Response:
        details = {"providedIds": 1, "deletedDocuments": None}
        return self._enqueue(
            ctx.params["index"], "documentDeletion", details, {"kind": "ids", "ids": [ctx.params["id"]]}
        )

    async def _delete_batch(self, ctx: _Ctx) -> web.Response:
        body = await self._json_body(ctx)
        if not isinstance(body, list):
            raise MeiliError(
                "bad_request", f"Json deserialize error: invalid type: {_found(body)}, expected a sequence"
            )
        ids = [v if isinstance(v, str) else _compact(v) for v in body]
        details = {"providedIds": len(ids), "deletedDocuments": None}
        return self._enqueue(ctx.params["index"], "documentDeletion", details, {"kind": "ids", "ids": ids})

    async def _delete_by_filter(self, ctx: _Ctx) -> web.Response:
        body = await self._json_body(ctx)
        if not isinstance(body, dict):
            raise _type_error("bad_request", "", "an object", body)
        _reject_unknown_fields(body, ("filter",), "bad_request")
        if "filter" not in body:
            raise MeiliError("missing_document_filter", "Missing field `filter`")
        flt = body["filter"]
        # Syntax is checked now; whether the attributes are filterable is only known when the task runs.
        if _parse_filter(flt, "invalid_document_filter") is None:
            raise MeiliError("invalid_document_filter", "Sending an empty filter is forbidden.")
        details = {"providedIds": 0, "deletedDocuments": None, "originalFilter": _compact(flt)}
        return self._enqueue(ctx.params["index"], "documentDeletion", details, {"kind": "filter", "filter": flt})

    async def _clear_documents(self, ctx: _Ctx) -> web.Response:
        details = {"providedIds": 0, "deletedDocuments": None, "originalFilter": None}
        return self._enqueue(ctx.params["index"], "documentDeletion", details, {"kind": "clear"})

    # ---------------------------------------------------------------------------------------------------------
    # Routes: search
    # ---------------------------------------------------------------------------------------------------------

    def _search(self, uid: str, params: JSON) -> JSON:
        with self._lock:
            return search_index(self._index_or_fail(uid), params)

    async def _search_get(self, ctx: _Ctx) -> web.Response:
        params = _search_params_from_query(ctx.query)
        return _json(self._search(ctx.params["index"], params))

    async def _search_post(self, ctx: _Ctx) -> web.Response:
        params = _validate_search_body(await self._json_body(ctx))
        return _json(self._search(ctx.params["index"], params))

    async def _multi_search(self, ctx: _Ctx) -> web.Response:
        body = _expect_object(await self._json_body(ctx), "bad_request", "")
        _reject_unknown_fields(body, ("queries",), "bad_request")
        if "federation" in body:
            raise MeiliError("bad_request", "The Meilisearch emulator does not support federated search.")
        queries = body.get("queries")
        if not isinstance(queries, list):
            raise _type_error("invalid_multi_search_queries", ".queries", "an array", queries)
        results: list[JSON] = []
        for i, query in enumerate(queries):
            try:
                query = _expect_object(query, "bad_request", f".queries[{i}]")
                if "indexUid" not in query:
                    raise MeiliError("missing_index_uid", f"Missing field `indexUid` inside `.queries[{i}]`")
                uid = _validate_index_uid(query["indexUid"])
                if ctx.key is not None and not ctx.key.allows_index(uid):
                    raise MeiliError("invalid_api_key", "The provided API key is invalid.")
                params = _validate_search_body({k: v for k, v in query.items() if k != "indexUid"})
                results.append({"indexUid": uid, **self._search(uid, params)})
            except MeiliError as exc:
                raise MeiliError(exc.code, f"Inside `.queries[{i}]`: {exc.message}") from None
        return _json({"results": results})

    # ---------------------------------------------------------------------------------------------------------
    # Routes: settings
    # ---------------------------------------------------------------------------------------------------------

    async def _get_settings(self, ctx: _Ctx) -> web.Response:
        with self._lock:
            return _json(copy.deepcopy(self._index_or_fail(ctx.params["index"]).settings))

    def _enqueue_settings(self, uid: str, patch: JSON, reset: bool = False) -> web.Response:
        return self._enqueue(uid, "settingsUpdate", copy.deepcopy(patch), {"settings": patch, "reset": reset})

    async def _patch_settings(self, ctx: _Ctx) -> web.Response:
        body = await self._json_body(ctx)
        if not isinstance(body, dict):
            raise _type_error("bad_request", "", "an object", body)
        _reject_unknown_fields(body, SETTINGS_FIELDS, "bad_request")
        for name, value in body.items():
            _validate_setting(name, value, f".{name}")
        return self._enqueue_settings(ctx.params["index"], body)

    async def _reset_settings(self, ctx: _Ctx) -> web.Response:
        return self._enqueue_settings(ctx.params["index"], dict.fromkeys(SETTINGS_FIELDS), reset=True)

    async def _get_setting(self, ctx: _Ctx) -> web.Response:
        name = SETTINGS_ROUTES.get(ctx.params["setting"])
        if name is None:
            return web.Response(status=404)
        with self._lock:
            return _json(copy.deepcopy(self._index_or_fail(ctx.params["index"]).settings[name]))

    async def _put_setting(self, ctx: _Ctx) -> web.Response:
        name = SETTINGS_ROUTES.get(ctx.params["setting"])
        if name is None:
            return web.Response(status=404)
        verb = "PATCH" if name in _PATCHED_SETTINGS else "PUT"
        if ctx.request.method != verb:
            return web.Response(status=405)
        value = await self._json_body(ctx)
        _validate_setting(name, value, "")
        return self._enqueue_settings(ctx.params["index"], {name: value})

    async def _reset_setting(self, ctx: _Ctx) -> web.Response:
        name = SETTINGS_ROUTES.get(ctx.params["setting"])
        if name is None:
            return web.Response(status=404)
        return self._enqueue_settings(ctx.params["index"], {name: None}, reset=True)

    # ---------------------------------------------------------------------------------------------------------
    # Routes: tasks
    # ---------------------------------------------------------------------------------------------------------

    _TASK_FILTERS = (
        "uids",
        "batchUids",
        "canceledBy",
        "types",
        "statuses",
        "indexUids",
        "afterEnqueuedAt",
        "beforeEnqueuedAt",
        "afterStartedAt",
        "beforeStartedAt",
        "afterFinishedAt",
        "beforeFinishedAt",
    )

    def _task_matcher(self, query: dict[str, str], key: _ApiKey | None) -> Callable[[_Task], bool]:
        def uint_list(name: str, code: str) -> set[int] | None:
            values = _param_list(query, name)
            if values is None or "*" in values:
                return None
            out: set[int] = set()
            for i, raw in enumerate(values):
                if not raw.isdigit():
                    raise MeiliError(
                        code, f"Invalid value in parameter `{name}[{i}]`: could not parse `{raw}` as a positive integer"
                    )
                out.add(int(raw))
            return out

        def enum_list(name: str, allowed: Iterable[str], what: str) -> set[str] | None:
            values = _param_list(query, name)
            if values is None or "*" in values:
                return None
            allowed = tuple(allowed)
            for raw in values:
                if raw not in allowed:
                    raise MeiliError(
                        f"invalid_task_{name}",
                        f"Invalid value in parameter `{name}`: `{raw}` is not a valid task {what}. Available "
                        f"{what}{'es' if what == 'status' else 's'} are {_ticks(allowed)}.",
                    )
            return set(values)

        uids = uint_list("uids", "invalid_task_uids")
        batch_uids = uint_list("batchUids", "invalid_task_batch_uids")
        canceled_by = uint_list("canceledBy", "invalid_task_canceled_by")
        types = enum_list("types", TASK_TYPES, "type")
        statuses = enum_list("statuses", TASK_STATUSES, "status")
        index_uids = _param_list(query, "indexUids")
        if index_uids is not None:
            if "*" in index_uids:
                index_uids = None
            else:
                for i, uid in enumerate(index_uids):
                    _validate_index_uid(uid, "invalid_index_uid", f"indexUids[{i}]")
        bounds: list[tuple[str, bool, int]] = []
        for name in self._TASK_FILTERS[6:]:
            raw = query.get(name)
            if raw is not None:
                after = name.startswith("after")
                bounds.append((name[5:] if after else name[6:], after, _parse_date_param(raw, name, after)))

        def matches(task: _Task) -> bool:
            if key is not None and task.index_uid is not None and not key.allows_index(task.index_uid):
                return False
            if uids is not None and task.uid not in uids:
                return False
            if batch_uids is not None and task.batch_uid not in batch_uids:
                return False
            if canceled_by is not None and task.canceled_by not in canceled_by:
                return False
            if types is not None and task.type not in types:
                return False
            if statuses is not None and task.status not in statuses:
                return False
            if index_uids is not None and task.index_uid not in index_uids:
                return False
            for what, after, bound in bounds:
                stamp = {"EnqueuedAt": task.enqueued_at, "StartedAt": task.started_at, "FinishedAt": task.finished_at}[
                    what
                ]
                if stamp is None or (stamp <= bound if after else stamp >= bound):
                    return False
            return True

        return matches

    async def _list_tasks(self, ctx: _Ctx) -> web.Response:
        _reject_unknown_params(ctx.query, (*self._TASK_FILTERS, "limit", "from", "reverse"))
        limit = _param_uint(ctx.query, "limit", "invalid_task_limit", 20)
        start = _param_uint(ctx.query, "from", "invalid_task_from", -1)
        reverse = _param_bool(ctx.query, "reverse", "invalid_task_reverse", False)
        matches = self._task_matcher(ctx.query, ctx.key)
        with self._lock:
            selected = sorted((t for t in self._tasks.values() if matches(t)), key=lambda t: t.uid, reverse=not reverse)
            total = len(selected)
            if start >= 0:
                selected = [t for t in selected if (t.uid >= start if reverse else t.uid <= start)]
            page = selected[:limit]
            following = selected[limit] if len(selected) > limit else None
            body = {
                "results": [t.view() for t in page],
                "total": total,
                "limit": limit,
                "from": page[0].uid if page else None,
                "next": following.uid if following else None,
            }
        return _json(body)

    async def _get_task(self, ctx: _Ctx) -> web.Response:
        raw = ctx.params["uid"]
        if not raw.isdigit():
            raise MeiliError(
                "invalid_task_uids",
                f"Invalid value in parameter `taskUid`: could not parse `{raw}` as a positive integer",
            )
        with self._lock:
            task = self._tasks.get(int(raw))
            if task is None or (
                ctx.key is not None and task.index_uid is not None and not ctx.key.allows_index(task.index_uid)
            ):
                raise MeiliError("task_not_found", f"Task `{raw}` not found.")
            return _json(task.view())

    def _filtered_task_operation(self, ctx: _Ctx, type_: str, verb: str) -> web.Response:
        _reject_unknown_params(ctx.query, self._TASK_FILTERS)
        if not ctx.query:
            raise MeiliError(
                "missing_task_filters",
                f"Query parameters to filter the tasks to {verb} are missing. Available query parameters are: "
                "`uids`, `indexUids`, `statuses`, `types`, `canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, "
                "`beforeStartedAt`, `afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`.",
            )
        matches = self._task_matcher(ctx.query, ctx.key)
        original = "?" + ctx.request.rel_url.raw_query_string
        counter = "canceledTasks" if type_ == "taskCancelation" else "deletedTasks"
        details = {"matchedTasks": None, counter: None, "originalFilter": original}
        return self._enqueue(None, type_, details, matches)

    async def _cancel_tasks(self, ctx: _Ctx) -> web.Response:
        return self._filtered_task_operation(ctx, "taskCancelation", "cancel")

    async def _delete_tasks(self, ctx: _Ctx) -> web.Response:
        return self._filtered_task_operation(ctx, "taskDeletion", "delete")


# --------------------------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Meilisearch emulator until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7700)
    parser.add_argument(
        "--master-key",
        default=os.environ.get("MEILI_MASTER_KEY"),
        help="master key (default: $MEILI_MASTER_KEY; without one every route is open, like Meilisearch)",
    )
    parser.add_argument("--payload-limit", type=int, default=100_000_000)
    parser.add_argument("--task-delay", type=float, default=0.0, help="seconds each task stays `processing`")
    args = parser.parse_args(argv)
    emulator = MeiliEmulator(
        args.master_key,
        host=args.host,
        port=args.port,
        payload_limit=args.payload_limit,
        task_delay_s=args.task_delay,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator.start()
    print(f"meilisearch emulator listening on {emulator.url}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
