"""What a run does with one item under `spec.permissions.mode`: index it with these readers, or leave it out and
say why. Pure functions.

- `sync`: the readers Confluence's rule gives (`readers.readers`); an item nobody could be shown is left out.
- `skipRestricted`: an item with a read restriction on it or an ancestor is left out; the rest carry the space's
  readers.
- `none`: everything is public.

An item whose restrictions could not be read at some level is left out in both permission modes: a guess could
only be wrong towards showing it. The `fingerprint` of the stored object lets a later run see, from the index
alone, whether a document's readers changed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from coco_operator.permissions.readers import FIELD, MAX_CLAUSES, PUBLIC, Grant, readers

Mode = Literal["sync", "skipRestricted", "none"]
FINGERPRINT = "fingerprint"  # inside the `permissions` object; not filterable, read back cheaply
FINGERPRINT_PATH = f"{FIELD}.{FINGERPRINT}"


@dataclass(frozen=True)
class Verdict:
    field: dict[str, Any] | None  # the document's `permissions` object; None: the item is not indexed
    restricted: bool  # a read restriction applies on the item or an ancestor
    reason: str | None = None  # why it is not indexed

    @property
    def fingerprint(self) -> str | None:
        return None if self.field is None else str(self.field[FINGERPRINT])


def fingerprint(field: dict[str, Any]) -> str:
    raw = orjson.dumps({k: v for k, v in field.items() if k != FINGERPRINT}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:16]


def stored(field: dict[str, Any]) -> dict[str, Any]:
    """`field` with its fingerprint, as documents carry it."""
    return {**field, FINGERPRINT: fingerprint(field)}


PUBLIC_FIELD = stored(PUBLIC.document_field())
PUBLIC_VERDICT = Verdict(PUBLIC_FIELD, restricted=False)


def decide(mode: Mode, space: Grant, levels: Sequence[Grant], *, unreadable: str | None = None) -> Verdict:
    """The verdict for an item: `space` is its space's view permission, `levels` the read restrictions on it and
    on each ancestor (empty Grants for levels without one); `unreadable` names a level that could not be read.

    Most items of a space share a verdict (no restriction, or the same few): decided once, then remembered.
    """
    return _decide(mode, space, tuple(g for g in levels if not g.empty), unreadable)


@functools.lru_cache(maxsize=4096)
def _decide(mode: Mode, space: Grant, levels: tuple[Grant, ...], unreadable: str | None) -> Verdict:
    if mode == "none":
        return PUBLIC_VERDICT
    restricted = bool(levels)
    if unreadable is not None:
        return Verdict(
            None, restricted=True, reason=f"not indexed: the read restrictions of {unreadable} cannot be read"
        )
    if mode == "skipRestricted" and restricted:
        return Verdict(
            None,
            restricted=True,
            reason="not indexed: read-restricted in Confluence (on it or an ancestor) and permissions.mode is "
            "skipRestricted",
        )
    rule = readers(space, levels if mode == "sync" else ())
    if rule.too_large is not None:
        return Verdict(None, restricted=restricted, reason=f"not indexed: {rule.too_large}")
    if rule.nobody and rule.narrowed:
        return Verdict(
            None,
            restricted=restricted,
            reason=f"not indexed: read restrictions on {len(levels)} levels (it and its ancestors) do not fit the "
            f"{MAX_CLAUSES - 1} the index keeps, and narrowing them leaves no one",
        )
    if rule.nobody:
        return Verdict(None, restricted=restricted, reason="not indexed: no one satisfies its read permissions")
    return Verdict(stored(rule.document_field()), restricted=restricted)
