"""The `filter` parameter: its string and array forms, the filterable check, and evaluation against a document."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from .documents import covers, leaves, values_at
from .errors import JSON, MeiliError, compact
from .filter_parse import And, Cond, Node, Not, Or, parse_expression

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def parse_filter(value: Any, code: str) -> Node | None:
    """A string, or an array whose strings are ANDed and whose inner arrays of strings are ORed."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_expression(value, code)
    if not isinstance(value, list):
        raise MeiliError(
            code, f"Invalid syntax for the filter parameter: `expected String, Array, found: {compact(value)}`."
        )
    ands: list[Node] = []
    for item in value:
        if isinstance(item, list):
            ors = [n for n in (parse_expression(_string_in_or(s, code), code) for s in item) if n is not None]
            if ors:
                ands.append(ors[0] if len(ors) == 1 else Or(ors))
        elif isinstance(item, str):
            if (node := parse_expression(item, code)) is not None:
                ands.append(node)
        else:
            raise MeiliError(
                code, f"Invalid syntax for the filter parameter: `expected String, [String], found: {compact(item)}`."
            )
    if not ands:
        return None
    return ands[0] if len(ands) == 1 else And(ands)


def _string_in_or(value: Any, code: str) -> str:
    if not isinstance(value, str):
        raise MeiliError(code, f"Invalid syntax for the filter parameter: `expected String, found: {compact(value)}`.")
    return value


def fuse_filters(query: Any, rule: Any) -> Any:
    """A tenant token's rule ANDed with the query's filter, the way Meilisearch concatenates the array forms."""
    if query is None:
        return rule
    if rule is None:
        return query
    left = query if isinstance(query, list) else [query]
    right = rule if isinstance(rule, list) else [rule]
    return left + right


def _conditions(node: Node) -> Iterator[Cond]:
    if isinstance(node, Cond):
        yield node
    elif isinstance(node, Not):
        yield from _conditions(node.inner)
    else:
        for item in node.items:
            yield from _conditions(item)


def check_filterable(node: Node, filterable: list[str], code: str) -> None:
    """Every attribute must be covered by `filterableAttributes` (raised as the engine does, without the index)."""
    for cond in _conditions(node):
        if covers(filterable, cond.attr):
            continue
        if filterable:
            tail = (
                f"Available filterable attribute patterns are: {', '.join(f'`{a}`' for a in sorted(set(filterable)))}."
            )
        else:
            tail = "This index does not have configured filterable attributes."
        raise MeiliError(
            code, f"Attribute `{cond.attr}` is not filterable. {tail}\n{cond.start + 1}:{cond.end + 1} {cond.src}"
        )


def matches(node: Node, doc: JSON) -> bool:
    if isinstance(node, And):
        return all(matches(item, doc) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, doc) for item in node.items)
    if isinstance(node, Not):
        return not matches(node.inner, doc)
    raw = values_at(doc, node.attr)
    if node.op == "EXISTS":
        return bool(raw)
    if node.op == "NULL":
        return any(v is None for v in leaves(raw)) or None in raw
    if node.op == "EMPTY":
        return any(v in ("", [], {}) for v in raw)
    found = leaves(raw)
    if node.op in ("=", "!="):
        hit = any(_equals(leaf, node.values[0]) for leaf in found)
        return hit if node.op == "=" else not hit
    if node.op == "IN":
        return any(_equals(leaf, v) for leaf in found for v in node.values)
    return any(_compare(leaf, node.op, node.values) for leaf in found)


def _facet(value: str) -> str:
    # Meilisearch indexes string facets trimmed and lowercased: equality is case-insensitive.
    return value.strip().lower()


def _number(text: str) -> float | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(leaf: Any, value: str) -> bool:
    if isinstance(leaf, bool):
        return _facet(value) == ("true" if leaf else "false")
    if _is_number(leaf):
        number = _number(value)
        return number is not None and float(leaf) == number
    return isinstance(leaf, str) and _facet(leaf) == _facet(value)


def _compare(leaf: Any, op: str, values: list[str]) -> bool:
    if _is_number(leaf):
        bounds = [_number(v) for v in values]
        if any(b is None for b in bounds):
            return False
        return _holds(float(leaf), op, [b for b in bounds if b is not None])
    if isinstance(leaf, bool):
        leaf = "true" if leaf else "false"
    # String facets compare lexicographically too.
    return isinstance(leaf, str) and _holds(_facet(leaf), op, [_facet(v) for v in values])


def _holds(value: Any, op: str, bounds: list[Any]) -> bool:
    if op == "TO":
        return bool(bounds[0] <= value <= bounds[1])
    return bool(
        {">": value > bounds[0], ">=": value >= bounds[0], "<": value < bounds[0], "<=": value <= bounds[0]}[op]
    )
