from __future__ import annotations

import re

from coco_operator.confluence.items import metadata_fingerprint
from coco_operator.documents import (
    MappingContext,
    attachment_document,
    comment_document,
    content_document,
    content_type,
    document_id,
)

CTX = MappingContext(
    datasource_id="docs/eng-wiki",
    datasource_name="My Confluence Wiki",
    site_base="https://example.atlassian.net/wiki",
    space_key="DOCS",
    space_name="Engineering Docs",
)
PAGE = {
    "id": "65538",
    "type": "page",
    "status": "current",
    "title": "Install guide",
    "space": {"key": "DOCS", "name": "Engineering Docs"},
    "history": {
        "createdDate": "2026-01-02T03:04:05.000Z",
        "createdBy": {"accountId": "abc", "displayName": "Ada Lovelace"},
    },
    "version": {"number": 7, "when": "2026-11-01T10:00:00.000Z", "by": {"accountId": "def", "displayName": "Bob"}},
    "ancestors": [{"id": "1", "title": "Home"}, {"id": "2", "title": "Guides"}],
    "metadata": {"labels": {"results": [{"prefix": "global", "name": "howto"}, {"name": "install"}]}},
    "body": {"storage": {"value": "<h1>Install</h1><p>Run the <strong>installer</strong>.</p>"}},
    "_links": {"webui": "/spaces/DOCS/pages/65538/Install+guide"},
}


def test_document_id_is_valid_and_stable() -> None:
    a = document_id("docs/eng-wiki", "65538")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,511}", a)
    assert a == document_id("docs/eng-wiki", "65538")
    assert a != document_id("docs/other", "65538")


def test_page_maps_to_coco_document() -> None:
    doc = content_document(PAGE, CTX)
    assert doc["id"] == document_id("docs/eng-wiki", "65538")
    assert doc["source"] == {"type": "connector", "name": "My Confluence Wiki", "id": "docs/eng-wiki"}
    assert doc["type"] == "page"
    assert doc["title"] == "Install guide"
    assert doc["url"] == "https://example.atlassian.net/wiki/spaces/DOCS/pages/65538/Install+guide"
    assert doc["category"] == "Engineering Docs"
    assert doc["categories"] == ["Home", "Guides"]
    assert doc["tags"] == ["howto", "install"]
    assert doc["owner"] == {"avatar": "", "username": "Ada Lovelace", "userid": "abc"}
    assert doc["last_updated_by"]["user"]["username"] == "Bob"
    assert doc["created"] == "2026-01-02T03:04:05.000Z"
    assert doc["updated"] == "2026-11-01T10:00:00.000Z"
    assert "Run the installer." in doc["content"] and "Install" in doc["content"]
    assert doc["size"] == len(doc["content"].encode())
    assert doc["metadata"]["version"] == 7 and doc["metadata"]["space_key"] == "DOCS"
    assert set(doc) >= {
        "id", "source", "type", "title", "content", "url", "category", "categories", "tags", "owner",
        "created", "updated", "size", "metadata",
    }  # fmt: skip


def test_blogpost_and_data_center_users() -> None:
    post = dict(PAGE, type="blogpost", history={"createdBy": {"username": "jdoe", "userKey": "k1", "displayName": "J"}})
    doc = content_document(post, CTX)
    assert doc["type"] == "blogpost"
    assert doc["owner"] == {"avatar": "", "username": "J", "userid": "k1"}


def test_attachment_metadata_only_and_with_text() -> None:
    att = {
        "id": "att9",
        "type": "attachment",
        "title": "diagram.png",
        "container": {"id": "65538", "title": "Install guide"},
        "extensions": {"mediaType": "image/png", "fileSize": 2048},
        "version": {"number": 1, "when": "2026-11-01T10:00:00.000Z"},
        "_links": {"webui": "/pages/viewpageattachments.action?pageId=65538"},
    }
    doc = attachment_document(att, None, CTX)
    assert doc["type"] == "attachment" and doc["content"] == "" and doc["size"] == 2048
    assert doc["metadata"]["media_type"] == "image/png" and doc["metadata"]["indexed_text"] is False
    assert doc["categories"] == ["Install guide"]
    text_doc = attachment_document(dict(att, title="notes.txt"), "hello", CTX)
    assert text_doc["content"] == "hello" and text_doc["metadata"]["indexed_text"] is True


def test_comment_maps_to_its_own_document_under_its_page() -> None:
    comment = {
        "id": "70001",
        "type": "comment",
        "status": "current",
        "title": "Re: Install guide",
        "history": {"createdBy": {"accountId": "c1", "displayName": "Carol"}},
        "version": {"number": 2, "when": "2026-11-02T10:00:00.000Z", "by": {"accountId": "c1", "displayName": "Carol"}},
        "ancestors": [{"id": "70000", "type": "comment", "title": "Re: Install guide"}],
        "container": {"id": "65538", "type": "page", "title": "Install guide", "ancestors": PAGE["ancestors"]},
        "extensions": {
            "location": "inline",
            "inlineProperties": {"originalSelection": "installer", "markerRef": "m1"},
            "resolution": {"status": "open"},
        },
        "_links": {"webui": "/spaces/DOCS/pages/65538/Install+guide?focusedCommentId=70001#comment-70001"},
    }
    doc = comment_document(comment, CTX, "Does this still work?")
    assert doc["type"] == "comment" and doc["content"] == "Does this still work?"
    assert doc["categories"] == ["Home", "Guides", "Install guide"] and doc["category"] == "Engineering Docs"
    assert doc["url"].endswith("focusedCommentId=70001#comment-70001") and doc["owner"]["username"] == "Carol"
    meta = doc["metadata"]
    assert (meta["container_id"], meta["container_type"], meta["location"]) == ("65538", "page", "inline")
    assert (meta["reply_to"], meta["resolution"], meta["selection"]) == ("70000", "open", "installer")
    assert meta["fingerprint"] == metadata_fingerprint(comment)


def test_tree_items_and_unknown_types() -> None:
    folder = dict(PAGE, type="folder", title="Runbooks", body={}, ancestors=[])
    doc = content_document(folder, CTX)
    assert doc["type"] == "folder" and doc["content"] == "" and doc["size"] == 0 and doc["title"] == "Runbooks"
    assert content_type(dict(PAGE, type="embed")) == "embed" and content_type(dict(PAGE, type="slide")) is None
    assert content_type({"id": "1"}) == "page"
