"""CQL as Confluence parses it: tokenizer, recursive-descent parser and compiled predicates.

Values must be quoted and escaped; dates compare in the site time zone at the precision of the query (minutes or
days); ``ORDER BY`` accepts only single-valued fields ("ordering is not supported where a piece of content can
have multiple values for a field, for instance ordering is not supported on labels": Atlassian's CQL keyword
reference). An ``id = / in`` clause lets a search skip the full scan without changing its answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .model import Content
from .state import ConfluenceState


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
    "container": "container",
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
    "container": _EQ_OPS,
    "title": _EQ_OPS | {"~", "!~"},
    "text": {"~", "!~"},
    "lastmodified": {"=", "!=", ">", ">=", "<", "<="},
    "created": {"=", "!=", ">", ">=", "<", "<="},
}
# Single-valued fields sort; multi-valued ones (labels, ancestors) refuse ORDER BY, as the CQL reference says.
_ORDER_FIELDS = {"lastmodified", "created", "id", "title", "space", "type"}
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
                return [c.parent_id] if c.type not in ("attachment", "comment") and c.parent_id else []
            if fname == "container":
                # Attachments and comments are contained in their page or blog post (replies included).
                return [c.parent_id] if c.type in ("attachment", "comment") and c.parent_id else []
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
                "space": lambda c: c.space_key.lower(),
                "type": lambda c: c.type,
            }[name]
            hits.sort(key=key, reverse=desc)
        return hits


def parse_cql(text: str, tz: ZoneInfo, now: datetime) -> CqlQuery:
    predicate, order, id_bound = _Parser(text, tz, now).parse()
    return CqlQuery(predicate, order, id_bound)
