"""Which content a Datasource covers, as CQL. Pure: every user value is quoted, the filter is validated upstream.

Pages, blog posts, attachments and Cloud's tree items (folders, whiteboards, databases, smart links) are narrowed
by `connector.config.cql`. Comments are not: a filter written for pages (`ancestor = 123`, `label = "kb"`) means
nothing for a comment, whose CQL fields are its own. A comment follows its page instead (the comments phase keeps
those whose page is indexed). Excluded labels narrow every type, in CQL, so excluded items cost nothing; the same
check runs again on what comes back (`excluded_label`), in case a site answers the clause differently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coco_operator.confluence.client import cql_quote
from coco_operator.confluence.items import TREE_TYPES, labels_of

COMMENT = "comment"


@dataclass(frozen=True)
class Scope:
    spaces: tuple[str, ...]
    cql_filter: str | None = None
    exclude_labels: tuple[str, ...] = ()
    cloud: bool = True

    def _space(self) -> str:
        if len(self.spaces) == 1:
            return f"space = {cql_quote(self.spaces[0])}"
        return f"space in ({', '.join(cql_quote(k) for k in self.spaces)})"

    def _exclusion(self) -> str:
        if not self.exclude_labels:
            return ""
        return f" AND label not in ({', '.join(cql_quote(label) for label in self.exclude_labels)})"

    def types(self, types: Iterable[str]) -> list[str]:
        """The types this site has, in order, each once (tree types only on Cloud)."""
        return [t for t in dict.fromkeys(types) if self.cloud or t not in TREE_TYPES]

    def _parts(self, types: Iterable[str]) -> list[str]:
        wanted = self.types(types)
        main = [t for t in wanted if t != COMMENT]
        parts = []
        if main:
            cql = f"{self._space()} AND type in ({', '.join(main)}){self._exclusion()}"
            if self.cql_filter:
                cql += f" AND ({self.cql_filter})"
            parts.append(cql)
        if COMMENT in wanted:
            parts.append(f"{self._space()} AND type = {COMMENT}{self._exclusion()}")
        if not parts:
            raise ValueError("no content type to list")
        return parts

    def cql(self, types: Iterable[str]) -> str:
        """Content of `types` in scope; with comments and other types, an OR of two parenthesised parts."""
        parts = self._parts(types)
        return parts[0] if len(parts) == 1 else " OR ".join(f"({part})" for part in parts)

    def where(self, types: Iterable[str], clause: str) -> str:
        """`cql(types)` narrowed by one more clause (e.g. a `lastmodified` window)."""
        parts = self._parts(types)
        cql = self.cql(types)
        return f"({cql}) AND {clause}" if len(parts) > 1 else f"{cql} AND {clause}"

    def excluded_label(self, item: Mapping[str, Any]) -> str | None:
        """The first excluded label the item carries (labels as it came back), or None."""
        return first_excluded(labels_of(item), self.exclude_labels)


def first_excluded(labels: Iterable[str], excluded: Sequence[str]) -> str | None:
    if not excluded:
        return None
    wanted = {label.lower() for label in excluded}
    return next((label for label in labels if label.lower() in wanted), None)
