"""The v1 content object (pages, blog posts, attachments, comments and Cloud tree types) with its expansions.

Expansions that matter to connectors: ``body.storage``, ``version``, ``history.lastUpdated``, ``space``,
``ancestors`` (root first; sub-expansions such as ``ancestors.restrictions.read.restrictions.user`` apply to each
ancestor), ``metadata.labels``, ``container`` (attachments and comments; ``container.ancestors`` and other
sub-expansions apply to the container), ``extensions`` (attachments: media
type and size; comments: location), ``restrictions.read.restrictions.user|group``.
"""

from __future__ import annotations

from .model import JSON, Content, ExpandTree
from .render_v1 import V1Renderer


def _history(r: V1Renderer, c: Content, exp: ExpandTree) -> JSON:
    history: JSON = {"latest": True, "createdBy": r.user(c.created_by), "createdDate": r.iso(c.created)}
    if "lastUpdated" in exp:
        history["lastUpdated"] = r.version(c)
    else:
        history["_expandable"] = {"lastUpdated": "", "previousVersion": "", "contributors": ""}
    history["_links"] = {"self": f"{r.endpoint}/rest/api/content/{c.id}/history"}
    return history


def _metadata(r: V1Renderer, c: Content, exp: ExpandTree) -> JSON | None:
    metadata: JSON = {}
    if c.type == "attachment":
        metadata.update({"mediaType": c.media_type, "comment": c.comment})
    if "metadata" in exp and "labels" in exp["metadata"]:
        labels = [{"prefix": "global", "name": n, "id": str(r.state._label_id(n)), "label": n} for n in c.labels]
        metadata["labels"] = {
            "results": labels,
            "start": 0,
            "limit": 200,
            "size": len(labels),
            "_links": {"self": f"{r.endpoint}/rest/api/content/{c.id}/label"},
        }
    if not metadata and "metadata" not in exp:
        return None
    metadata["_expandable"] = {"currentuser": "", "properties": "", "frontend": "", "likes": ""}
    return metadata


def _extensions(c: Content) -> JSON | None:
    if c.type == "attachment":
        return {"mediaType": c.media_type, "fileSize": len(c.data), "comment": c.comment}
    if c.type == "comment":
        ext: JSON = {"location": c.location}
        if c.location == "inline":
            ext["inlineProperties"] = {"originalSelection": c.selection, "markerRef": f"emulator-{c.num}"}
            ext["resolution"] = {"status": c.resolution}
        return ext
    return None


def _restrictions(r: V1Renderer, c: Content, exp: ExpandTree) -> JSON:
    # Attachments and comments carry none of their own: their container's apply.
    out: JSON = {op: r.restriction(c, op) for op in ("read", "update") if op in exp or not exp}
    out["_expandable"] = {op: "" for op in ("read", "update") if op not in out}
    out["_links"] = {"self": f"{r.endpoint}/rest/api/content/{c.id}/restriction/byOperation"}
    return out


def _container(r: V1Renderer, c: Content, exp: ExpandTree) -> JSON | None:
    state = r.state
    if c.type in ("attachment", "comment"):
        parent = state.container_of(c)
        if parent is None:
            return {}
        # Sub-expansions apply to the container (`container.ancestors`, as confluence-markdown-exporter asks).
        return content_json(r, parent, exp) if exp else r.brief(parent)
    space = state.spaces.get(c.space_key)
    return r.space(space) if space is not None else None


def content_json(r: V1Renderer, c: Content, exp: ExpandTree) -> JSON:
    state = r.state
    out: JSON = {"id": c.id, "type": c.type, "status": c.status, "title": c.title}
    expandable: JSON = {}
    space = state.spaces.get(c.space_key)
    if "space" in exp and space is not None:
        out["space"] = r.space(space, exp["space"])
    else:
        expandable["space"] = f"/rest/api/space/{c.space_key}"
    if "history" in exp:
        out["history"] = _history(r, c, exp["history"])
    else:
        expandable["history"] = f"/rest/api/content/{c.id}/history"
    if "version" in exp:
        out["version"] = r.version(c)
    else:
        expandable["version"] = ""
    if "ancestors" in exp:
        chain = state.comment_chain(c) if c.type == "comment" else state.ancestors(c)
        sub = exp["ancestors"]
        out["ancestors"] = [content_json(r, a, sub) if sub else r.brief(a) for a in chain]
    else:
        expandable["ancestors"] = ""
    if "body" in exp:
        out["body"] = r.body(c, exp["body"])
    else:
        expandable["body"] = ""
    metadata = _metadata(r, c, exp)
    if metadata is not None:
        out["metadata"] = metadata
    else:
        expandable["metadata"] = ""
    if "container" in exp:
        container = _container(r, c, exp["container"])
        if container is not None:
            out["container"] = container
    elif c.type in ("attachment", "comment"):
        expandable["container"] = f"/rest/api/content/{c.parent_id}"
    else:
        expandable["container"] = f"/rest/api/space/{c.space_key}"
    extensions = _extensions(c)
    if extensions is not None:
        out["extensions"] = extensions
    if "restrictions" in exp:
        out["restrictions"] = _restrictions(r, c, exp["restrictions"])
    else:
        expandable["restrictions"] = f"/rest/api/content/{c.id}/restriction/byOperation"
    expandable.update(
        {
            "children": f"/rest/api/content/{c.id}/child",
            "descendants": f"/rest/api/content/{c.id}/descendant",
            "operations": "",
        }
    )
    out["_links"] = r.links(c)
    out["_expandable"] = expandable
    return out
