"""Accessors of Confluence items: labels, breadcrumbs (pages, tree items, attachments, comments) and the metadata
fingerprint that finds changes made without a new version."""

from __future__ import annotations

from typing import Any

from coco_operator.confluence.items import breadcrumbs, labels_of, metadata_fingerprint

PAGE: dict[str, Any] = {
    "id": "5",
    "type": "page",
    "title": "Failover",
    "ancestors": [
        {"id": "1", "type": "folder", "title": "Runbooks"},
        {"id": "2", "type": "slide"},  # a type added later, without a title: left out
        {"id": "3", "type": "page", "title": "Databases"},
    ],
    "metadata": {"labels": {"results": [{"name": "ops"}, {"name": "db"}, {"prefix": "global"}]}},
}
COMMENT: dict[str, Any] = {
    "id": "9",
    "type": "comment",
    "title": "Re: Failover",
    "ancestors": [{"id": "8", "type": "comment", "title": "Re: Failover"}],  # the comment it answers
    "container": {"id": "5", "title": "Failover", "ancestors": PAGE["ancestors"]},
}


def test_labels_and_breadcrumbs() -> None:
    assert labels_of(PAGE) == ["ops", "db"] and labels_of({}) == [] and labels_of({"metadata": None}) == []
    assert breadcrumbs(PAGE) == ["Runbooks", "Databases"]
    assert breadcrumbs(COMMENT) == ["Runbooks", "Databases", "Failover"]  # its page's, never the comments answered
    assert breadcrumbs({"type": "attachment", "container": {"id": "5", "title": "Failover"}}) == ["Failover"]
    assert breadcrumbs({"type": "comment", "container": "odd"}) == [] and breadcrumbs({"ancestors": "odd"}) == []


def test_the_fingerprint_moves_with_title_labels_and_breadcrumbs_only() -> None:
    base = metadata_fingerprint(PAGE)
    assert len(base) == 16 and base == metadata_fingerprint(dict(PAGE, version={"number": 9}, body="x"))
    relabelled = dict(PAGE, metadata={"labels": {"results": [{"name": "db"}, {"name": "ops"}]}})
    assert metadata_fingerprint(relabelled) == base  # label order does not matter
    assert metadata_fingerprint(dict(PAGE, metadata={})) != base
    assert metadata_fingerprint(dict(PAGE, title="Failover v2")) != base
    assert metadata_fingerprint(dict(PAGE, ancestors=PAGE["ancestors"][:1])) != base
    moved = dict(COMMENT, container=dict(COMMENT["container"], ancestors=[]))
    assert metadata_fingerprint(moved) != metadata_fingerprint(COMMENT)
