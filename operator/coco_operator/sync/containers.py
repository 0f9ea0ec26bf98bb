"""Attachments and comments follow their page or blog post: indexed while it is, gone when it goes.

Which containers a run leaves in the index is known once the index phase is done: what the complete listing found
(or, without one, what the index held and the run wrote), less what the run left out (an excluded label, an
enrichment `exclude`). CQL cannot say this for them: a page's labels or a filter on its ancestors are not fields
of its attachments and comments.
"""

from __future__ import annotations

from coco_operator.documents import document_id
from coco_operator.sync.state import Item, Run

CONTAINERS = ("page", "blogpost")


def indexed_containers(run: Run) -> set[str]:
    """Document ids of the pages and blog posts this run leaves in the index."""
    planned = run.planned
    if planned.current is not None:
        ids = {document_id(run.datasource_id, cid) for cid, kind in planned.current.items() if kind in CONTAINERS}
    else:
        ids = set(planned.survey.indexed) | run.tally.written_ids
    return ids - run.tally.excluded_ids - run.writer.dropped_ids


def container_id(item: Item) -> str | None:
    """The content id of an attachment's or a comment's page or blog post (None: the answer names none)."""
    container = item.get("container")
    return str(container["id"]) if isinstance(container, dict) and container.get("id") else None


def follows(run: Run, item: Item, containers: set[str]) -> bool:
    """Whether an attachment or comment is indexed: its container is, and it carries no excluded label itself."""
    cid = container_id(item)
    if not cid or document_id(run.datasource_id, cid) not in containers:
        return False
    return run.source.content_scope.excluded_label(item) is None
