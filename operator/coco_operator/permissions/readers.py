"""Who may read a Confluence item, as a few filterable fields of its search document. Pure functions.

Confluence's rule: a person may read an item when they hold the space's view permission AND satisfy the read
restrictions on the item and on every ancestor (attachments and comments follow their container). Each of those
levels is a disjunction ("one of these users or a member of one of these groups"); the whole rule is their
conjunction. Group membership is not known at sync time (it lives in the identity provider), so the rule is
stored as it is: clause `c0` holds the space's readers, `c1`..`c3` the distinct restriction levels, each a list of
principals (`user:ID`, `group:ID`, or `*` for anyone). A search for a person then filters
`permissions.cN IN [that person's principals, "*"]` for every N, which is exactly Confluence's rule.

Bounded size: at most `MAX_CLAUSES` clauses and `MAX_PRINCIPALS` principals per clause. When an item has more
distinct restriction levels, two clauses are replaced by their intersection — someone who satisfies the
intersection satisfies both, so the stored rule is never wider than Confluence's (it may hide an item from a
person who qualifies through different principals at different levels; never the other way round). A clause
with too many principals cannot be narrowed safely, so the item becomes readable by nobody and the caller counts
it as skipped with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ANYONE = "*"
MAX_CLAUSES = 4  # c0 (space) + up to 3 restriction levels
MAX_PRINCIPALS = 1000
CLAUSE_FIELDS = tuple(f"c{i}" for i in range(MAX_CLAUSES))
FIELD = "permissions"


def user(identity: str) -> str:
    return f"user:{identity}"


def group(identity: str) -> str:
    return f"group:{identity}"


@dataclass(frozen=True)
class Grant:
    """One level of the rule: who satisfies it. `anyone` (anonymous access) satisfies it for everybody."""

    users: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    anyone: bool = False

    @property
    def empty(self) -> bool:
        return not self.anyone and not self.users and not self.groups

    def principals(self) -> frozenset[str]:
        if self.anyone:
            return frozenset({ANYONE})
        return frozenset({user(u) for u in self.users} | {group(g) for g in self.groups})


@dataclass(frozen=True)
class Readers:
    """The stored rule: clauses of principals; an empty clause means nobody qualifies."""

    clauses: tuple[frozenset[str], ...]
    narrowed: bool = False  # clauses were intersected to fit MAX_CLAUSES (the rule is stricter than Confluence's)
    too_large: str | None = None  # why nobody may read it although Confluence would let someone

    @property
    def public(self) -> bool:
        return all(ANYONE in c for c in self.clauses)

    @property
    def nobody(self) -> bool:
        return any(not c for c in self.clauses)

    def document_field(self) -> dict[str, Any]:
        """The `permissions` object of a search document: c0..c3 always present (unused ones are `*`)."""
        out: dict[str, Any] = {"public": self.public}
        for i, name in enumerate(CLAUSE_FIELDS):
            clause = self.clauses[i] if i < len(self.clauses) else frozenset({ANYONE})
            out[name] = sorted(clause)
        return out


PUBLIC = Readers(clauses=(frozenset({ANYONE}),))


def readers(space: Grant, restrictions: Sequence[Grant]) -> Readers:
    """The rule for an item: the space grant, then the read restrictions from the item up to the root.

    `restrictions` holds one Grant per level that has read restrictions (levels without any are left out or
    passed as empty Grants; both mean "no restriction at this level").
    """
    levels = [g.principals() for g in restrictions if not g.empty]
    clauses = _without_implied([space.principals(), *levels])
    narrowed = False
    while len(clauses) > MAX_CLAUSES:
        clauses = _narrow_once(clauses)
        narrowed = True
    if any(len(c) > MAX_PRINCIPALS for c in clauses):
        largest = max(len(c) for c in clauses)
        return Readers(
            clauses=(frozenset(),),
            narrowed=narrowed,
            too_large=f"a permission level names {largest} users and groups (more than {MAX_PRINCIPALS})",
        )
    return Readers(clauses=tuple(clauses), narrowed=narrowed)


def _without_implied(clauses: Iterable[frozenset[str]]) -> list[frozenset[str]]:
    """Drop clauses that every qualifying person satisfies anyway.

    A clause of `*` holds for everybody. A clause that is a superset of another is implied by it (whoever holds a
    principal of the smaller one holds one of the larger). Order is kept so c0 stays the space clause when it
    is not implied.
    """
    out: list[frozenset[str]] = []
    pending = [c for c in clauses if ANYONE not in c]
    for i, clause in enumerate(pending):
        implied = any(other < clause or (other == clause and j < i) for j, other in enumerate(pending) if j != i)
        if not implied:
            out.append(clause)
    return out or [frozenset({ANYONE})]


def _narrow_once(clauses: list[frozenset[str]]) -> list[frozenset[str]]:
    """Replace the two restriction clauses with the largest overlap by their intersection (never wider)."""
    best: tuple[int, int, int] | None = None
    for i in range(1, len(clauses)):
        for j in range(i + 1, len(clauses)):
            overlap = len(clauses[i] & clauses[j])
            if best is None or overlap > best[0]:
                best = (overlap, i, j)
    assert best is not None  # callers only narrow when there are more than MAX_CLAUSES clauses
    _, i, j = best
    merged = clauses[i] & clauses[j]
    # An empty intersection is a clause nobody satisfies: every other clause is then implied and dropped.
    return _without_implied([*(c for k, c in enumerate(clauses) if k not in (i, j)), merged])
