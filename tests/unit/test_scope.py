"""The CQL of a Datasource's scope: spaces, types, the user's filter, excluded labels; every value quoted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from coco_operator.api.datasource import ConfluenceConfig
from coco_operator.confluence.scope import Scope, first_excluded


def test_pages_and_blog_posts_with_the_filter_and_the_exclusion() -> None:
    scope = Scope(("DOCS",), 'ancestor = "12"', ("secret", 'we"ird'))
    assert scope.cql(["page", "blogpost"]) == (
        'space = "DOCS" AND type in (page, blogpost) AND label not in ("secret", "we\\"ird") AND (ancestor = "12")'
    )


def test_comments_are_not_narrowed_by_the_filter_but_by_the_exclusion() -> None:
    scope = Scope(("A", "B"), 'label = "kb"', ("secret",))
    assert scope.cql(["comment"]) == 'space in ("A", "B") AND type = comment AND label not in ("secret")'
    both = scope.cql(["page", "comment"])
    assert both == (
        '(space in ("A", "B") AND type in (page) AND label not in ("secret") AND (label = "kb")) OR '
        '(space in ("A", "B") AND type = comment AND label not in ("secret"))'
    )
    # A clause added to the OR applies to both parts.
    assert scope.where(["page", "comment"], "lastmodified >= x") == f"({both}) AND lastmodified >= x"
    assert scope.where(["page"], "lastmodified >= x") == (
        'space in ("A", "B") AND type in (page) AND label not in ("secret") AND (label = "kb") AND lastmodified >= x'
    )


def test_tree_types_only_on_cloud() -> None:
    types = ["page", "folder", "whiteboard", "database", "embed", "page"]
    assert Scope(("X",)).cql(types) == 'space = "X" AND type in (page, folder, whiteboard, database, embed)'
    assert Scope(("X",), cloud=False).cql(types) == 'space = "X" AND type in (page)'
    with pytest.raises(ValueError):
        Scope(("X",), cloud=False).cql(["folder"])


def test_the_runtime_check_matches_labels_case_insensitively() -> None:
    scope = Scope(("X",), exclude_labels=("secret",))
    item = {"metadata": {"labels": {"results": [{"name": "public"}, {"name": "Secret"}]}}}
    assert scope.excluded_label(item) == "Secret"
    assert scope.excluded_label({"metadata": {}}) is None
    assert Scope(("X",)).excluded_label(item) is None
    assert first_excluded(["a", "b"], ["B"]) == "b"


def _config(**extra: object) -> ConfluenceConfig:
    return ConfluenceConfig.model_validate(
        {"endpoint": "https://wiki.example.com", "tokenSecretRef": {"name": "t"}, "space": "DOCS", **extra}
    )


def test_excluded_labels_are_bounded_plain_labels_in_lower_case() -> None:
    config = _config(exclude_labels=["Secret", "secret", "hr-only"])
    assert config.exclude_labels == ["secret", "hr-only"]
    assert not config.enable_comments and not config.enable_tree_items
    for bad in (["two words"], ["a,b"], [""], ["x" * 256], [f"l{i}" for i in range(51)]):
        with pytest.raises(ValidationError):
            _config(exclude_labels=bad)
