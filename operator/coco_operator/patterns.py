"""Regular expressions a tenant writes (exclude.titlePatterns), matched with RE2: linear time in the subject,
whatever the pattern, so `(a+)+$` costs what `a+$` costs (Python's `re` backtracks exponentially on it)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import re2  # type: ignore[import-untyped]

# Titles are matched on their first characters only (Confluence titles have at most 255).
MAX_SUBJECT_CHARS = 1000
# Python-only syntax (RE2 lacks it), named in refusals: lookarounds, atomic groups, conditionals, backreferences.
_NOT_RE2 = ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?P=")

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to its author, not to the operator's stderr

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message says why and what to write instead."""


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is refused, or None."""
    if any(construct in pattern for construct in _NOT_RE2) or _has_backreference(pattern):
        return (
            f"title pattern {pattern!r} uses lookaround, backreferences, atomic groups or conditionals; "
            "use plain RE2-compatible syntax (e.g. '^Archive/' or '(?i)deprecated')"
        )
    try:
        re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"title pattern {pattern!r} is not a valid RE2 regular expression: {detail}"
    return None


def _has_backreference(pattern: str) -> bool:
    escaped = False
    for ch in pattern:
        if escaped and ch in "123456789":
            return True
        escaped = not escaped and ch == "\\"
    return False


@functools.lru_cache(maxsize=512)
def title_matcher(pattern: str) -> Matcher:
    """A predicate: does the pattern occur anywhere in (the first MAX_SUBJECT_CHARS characters of) a subject."""
    problem = pattern_problem(pattern)
    if problem:
        raise PatternError(problem)
    compiled = re2.compile(pattern, options=_OPTIONS)

    def search(subject: str) -> bool:
        return compiled.search(subject[:MAX_SUBJECT_CHARS]) is not None

    return search
