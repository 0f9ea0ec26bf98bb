"""Words as Meilisearch matches them: case- and accent-folded, with prefix and typo tolerance."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

MAX_QUERY_WORDS = 10
# Meilisearch's default typoTolerance.minWordSizeForTypos.
ONE_TYPO, TWO_TYPOS = 5, 9


@lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    decomposed = unicodedata.normalize("NFKD", c)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def words(text: str) -> list[str]:
    """The folded words of a text: runs of letters and digits."""
    out: list[str] = []
    buf: list[str] = []
    for c in text:
        folded = _fold_char(c)
        if folded and all(ch.isalnum() for ch in folded):
            buf.append(folded)
        elif buf:
            out.append("".join(buf))
            buf = []
    if buf:
        out.append("".join(buf))
    return out


def query_terms(q: str) -> tuple[list[str], bool]:
    """The query's words (at most ten) and whether the last is a prefix (the query does not end in a separator)."""
    found = words(q)
    return found[:MAX_QUERY_WORDS], 0 < len(found) <= MAX_QUERY_WORDS and q[-1:].isalnum()


def _damerau(a: str, b: str) -> int:
    """Optimal string alignment distance (a transposition is one typo)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def match_word(term: str, token: str, prefix: bool) -> tuple[int, bool] | None:
    """(typos, exact) when the document word `token` matches the query word `term`, else None."""
    if token == term:
        return 0, True
    if prefix and token.startswith(term):
        return 0, False
    budget = 2 if len(term) >= TWO_TYPOS else 1 if len(term) >= ONE_TYPO else 0
    if budget == 0 or (not prefix and abs(len(token) - len(term)) > budget):
        return None
    if prefix and len(token) > len(term):
        ends = range(max(1, len(term) - budget), min(len(token), len(term) + budget) + 1)
        distance = min(_damerau(term, token[:k]) for k in ends)
    else:
        distance = _damerau(term, token)
    if term[:1] != token[:1]:
        distance += 1  # a typo on the first letter counts double
    return (distance, False) if distance <= budget else None
