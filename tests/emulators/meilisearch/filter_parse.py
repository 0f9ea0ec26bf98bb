"""The filter expression language: tokenizer and recursive-descent parser, with Meilisearch's error messages.

An error message ends with the offending part's 1-based `start:end` columns and the whole filter as given, the way
Meilisearch's filter parser prints it. Geo filters and `CONTAINS`/`STARTS WITH` are not emulated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import MeiliError, not_emulated

_KEYWORDS = frozenset({"AND", "OR", "IN", "NOT", "TO", "EXISTS", "IS", "NULL", "EMPTY", "CONTAINS", "STARTS", "WITH"})
_GEO_FILTERS = ("_geoRadius", "_geoBoundingBox", "_geoPolygon")
_RESERVED_FIELDS = ("_geo", "_geoDistance", "_geoPoint")
_SYNTAX_CHARS = "()=<>!"
_OPERATIONS = (
    "`=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, "
    "`IS EMPTY`, `IS NOT EMPTY`, `CONTAINS`, `NOT CONTAINS`, `STARTS WITH`, `NOT STARTS WITH`, `_geoRadius`, "
    "`_geoBoundingBox` or `_geoPolygon`"
)
MAX_DEPTH = 200


class FilterSyntaxError(Exception):
    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


def escape_debug(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


@dataclass
class Cond:
    """`attr <op> values`; `start`/`end` locate the attribute in `src` for error messages."""

    attr: str
    start: int
    end: int
    src: str
    op: str  # = != > >= < <= TO IN EXISTS NULL EMPTY
    values: list[str] = field(default_factory=list)


@dataclass
class Not:
    inner: Node


@dataclass
class And:
    items: list[Node]


@dataclass
class Or:
    items: list[Node]


Node = Cond | Not | And | Or


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
    simple = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
    out: list[str] = []
    i = 0
    while i < len(raw):
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if raw[i] != "\\":
            out.append(raw[i])
            i += 1
        elif nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "u" and (m := re.match(r"\{([0-9a-fA-F]{1,6})\}", raw[i + 2 :])):
            out.append(chr(int(m.group(1), 16)))
            i += 2 + len(m.group(0))
        else:
            raise FilterSyntaxError(f"Malformed value: `{escape_debug(raw)}`.", start, end)
    return "".join(out)


def _quoted(src: str, i: int) -> _Tok:
    quote, j = src[i], i + 1
    while j < len(src):
        if src[j] == "\\" and j + 1 < len(src):
            j += 2
        elif src[j] == quote:
            return _Tok("quoted", src[i : j + 1], i + 1, j, src[i + 1 : j])
        else:
            j += 1
    return _Tok("unclosed", src[i:], i, len(src), quote)


def _lex(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
            continue
        if c in "()[],":
            tok = _Tok(c, c, i, i + 1)
        elif src[i : i + 2] in ("!=", ">=", "<="):
            tok = _Tok("op", src[i : i + 2], i, i + 2)
        elif c in "=<>":
            tok = _Tok("op", c, i, i + 1)
        elif c in "'\"":
            tok = _quoted(src, i)
        elif _is_value_char(c):
            j = i
            while j < n and _is_value_char(src[j]):
                j += 1
            tok = _Tok("word", src[i:j], i, j, src[i:j])
        else:
            # Like Meilisearch, an unknown character swallows everything up to the next syntax character.
            j = i + 1
            while j < n and not (src[j].isspace() or src[j] in _SYNTAX_CHARS):
                j += 1
            tok = _Tok("bad", src[i:j], i, j)
        toks.append(tok)
        i = tok.end + (1 if tok.kind == "quoted" else 0)
    toks.append(_Tok("eof", "", n, n))
    return toks


class Parser:
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

    def fail(self, message: str, start: int, end: int | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, start, len(self.src) if end is None else end)

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "eof":
            raise self.fail(
                f"Found unexpected characters at the end of the filter: `{escape_debug(self.src[tok.start :])}`. "
                "You probably forgot an `OR` or an `AND` rule.",
                tok.start,
            )
        return node

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(
                "The filter exceeded the maximum depth limit. Try rewriting the filter so that it contains fewer "
                "nested conditions.",
                self.peek().start,
            )

    def parse_or(self) -> Node:
        self.enter()
        items = [self.parse_and()]
        while self.is_kw(self.peek(), "OR"):
            self.take()
            items.append(self.parse_and())
        self.depth -= 1
        return items[0] if len(items) == 1 else Or(items)

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while self.is_kw(self.peek(), "AND"):
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else And(items)

    def parse_not(self) -> Node:
        if not self.is_kw(self.peek(), "NOT"):
            return self.parse_primary()
        self.take()
        self.enter()
        inner = self.parse_not()
        self.depth -= 1
        return inner.inner if isinstance(inner, Not) else Not(inner)

    def invalid_primary(self, start: int) -> FilterSyntaxError:
        rest = self.src[start:]
        where = "but instead got nothing." if not rest.strip() else f"at `{escape_debug(rest)}`."
        return self.fail(f"Was expecting an operation {_OPERATIONS} {where}", start)

    def parse_primary(self) -> Node:
        first = self.peek()
        if first.kind == "(":
            self.take()
            node = self.parse_or()
            if self.peek().kind != ")":
                raise self.fail(
                    f"Expression `{escape_debug(self.src[first.start :])}` is missing the following closing "
                    "delimiter: `)`.",
                    first.start,
                )
            self.take()
            return node
        self.check_attribute(first)
        attr_tok = self.take()
        return self.condition(attr_tok, self.token_value(attr_tok))

    def check_attribute(self, tok: _Tok) -> None:
        if tok.kind == "word" and tok.text in _GEO_FILTERS:
            raise not_emulated(f"The `{tok.text}` filter")
        if tok.kind == "word" and tok.text in _RESERVED_FIELDS:
            raise self.fail(
                f"`{tok.text}` is a reserved keyword and thus can't be used as a filter expression. Use the "
                "`_geoRadius(latitude, longitude, distance)` or `_geoBoundingBox([latitude, longitude], "
                "[latitude, longitude])` built-in rules to filter on `_geo` coordinates.",
                tok.start,
            )
        if tok.kind == "unclosed":
            raise self.missing_quote(tok)
        if tok.kind == "word" and tok.text in _KEYWORDS:
            raise self.reserved_value(tok)
        if not self.is_value(tok):
            raise self.invalid_primary(tok.start)

    def condition(self, attr_tok: _Tok, attr: str) -> Node:
        def cond(op: str, values: list[str] | None = None) -> Cond:
            return Cond(attr, attr_tok.start, attr_tok.end, self.src, op, values or [])

        tok, nxt = self.peek(), self.peek(1)
        if tok.kind == "op":
            self.take()
            return cond(tok.text, [self.operand()])
        if self.is_kw(tok, "IN", "EXISTS"):
            self.take()
            return cond("IN", self.in_list()) if tok.text == "IN" else cond("EXISTS")
        if self.is_kw(tok, "IS"):
            negate = self.is_kw(nxt, "NOT")
            what = self.peek(2) if negate else nxt
            if not self.is_kw(what, "NULL", "EMPTY"):
                raise self.invalid_primary(attr_tok.start)
            self.pos += 3 if negate else 2
            return Not(cond(what.text)) if negate else cond(what.text)
        if self.is_kw(tok, "NOT") and self.is_kw(nxt, "IN", "EXISTS"):
            self.pos += 2
            return Not(cond("IN", self.in_list()) if nxt.text == "IN" else cond("EXISTS"))
        if self.is_kw(tok, "CONTAINS") or (self.is_kw(tok, "NOT") and self.is_kw(nxt, "CONTAINS")):
            raise MeiliError(
                "feature_not_enabled",
                "Using `CONTAINS` in a filter requires enabling the `contains filter` experimental feature. See "
                "https://github.com/orgs/meilisearch/discussions/763",
            )
        if self.is_kw(tok, "STARTS") or (self.is_kw(tok, "NOT") and self.is_kw(nxt, "STARTS")):
            raise not_emulated("The `STARTS WITH` filter operator")
        if self.is_value(tok) and self.is_kw(nxt, "TO"):
            low = self.token_value(self.take())
            self.take()
            return cond("TO", [low, self.operand()])
        raise self.invalid_primary(attr_tok.start)

    def token_value(self, tok: _Tok) -> str:
        return _unescape(tok.value, tok.start, tok.end) if tok.kind == "quoted" else tok.text

    def missing_quote(self, tok: _Tok) -> FilterSyntaxError:
        return self.fail(
            f"Expression `{escape_debug(self.src[tok.start :])}` is missing the following closing delimiter: "
            f"`{tok.value}`.",
            tok.start,
        )

    def reserved_value(self, tok: _Tok) -> FilterSyntaxError:
        return self.fail(
            f"Was expecting a value but instead got `{tok.text}`, which is a reserved keyword. To use `{tok.text}` "
            "as a field name or a value, surround it by quotes.",
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
        raise self.fail(
            f"Was expecting a value but instead got `{escape_debug(self.src[tok.start : end])}`.", tok.start, end
        )

    def in_list(self) -> list[str]:
        if self.peek().kind != "[":
            raise self.fail("Expected `[` after `IN` keyword.", self.peek().start)
        self.take()
        values: list[str] = []
        while self.is_value(self.peek()):
            values.append(self.token_value(self.take()))
            if self.peek().kind != ",":
                break
            self.take()
        tok = self.peek()
        if tok.kind == "]":
            self.take()
            return values
        if tok.kind == "eof":
            raise self.fail("Expected matching `]` after the list of field names given to `IN[`", tok.start, tok.start)
        rest = escape_debug(self.src[tok.start :])
        keyword = (
            f", which is a keyword. To use `{rest}` as a field name or a value, surround it by quotes"
            if tok.kind == "word" and tok.text in _KEYWORDS
            else ""
        )
        raise self.fail(
            f"Expected only comma-separated field names inside `IN[..]` but instead found `{rest}`{keyword}.",
            tok.start,
        )


def parse_expression(src: str, code: str) -> Node | None:
    """The parsed filter string, None for a blank one; a syntax error is a MeiliError with `code`."""
    if not src.strip():
        return None
    try:
        return Parser(src).parse()
    except FilterSyntaxError as exc:
        raise MeiliError(code, f"{exc.message}\n{exc.start + 1}:{exc.end + 1} {src}") from None
