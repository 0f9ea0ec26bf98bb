"""The shape of what a Confluence listing answers, checked before anything reads it (docs/security.md, point 6).

A server may answer any JSON. Every result of a listing must be an object with an `id` (text or a number) and, where
present, the fields the run reads must have the types it reads them as; otherwise the run fails with reason
MalformedResponse naming the field, instead of an exception deep inside the mapping code.
"""

from __future__ import annotations

from typing import Any

from coco_operator.errors import MalformedAnswerError

STOPS = "the run stops before indexing or deleting anything from it. Check the site or any proxy in between"
# Fields the run reads, and the JSON type each must have when present (null is taken as absent).
OBJECT_FIELDS = ("version", "space", "history", "body", "metadata", "_links", "container", "extensions")
TEXT_FIELDS = ("type", "status", "title")
LIST_FIELDS = ("ancestors",)


def results_of(page: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The page's `results`, each checked; raises MalformedAnswerError naming what is wrong."""
    results = page.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise MalformedAnswerError(f"Confluence at {where} answered `results` that are not a list; {STOPS}")
    for position, item in enumerate(results):
        problem = item_problem(item)
        if problem:
            raise MalformedAnswerError(
                f"Confluence at {where} answered a malformed item (result {position + 1} of its page: {problem}); "
                f"{STOPS}"
            )
    return results


def item_problem(item: object) -> str | None:
    """What is wrong with one listed item, or None."""
    if not isinstance(item, dict):
        return f"{_a(_json_type(item))} where an object belongs"
    cid = item.get("id")
    if isinstance(cid, bool) or not isinstance(cid, str | int) or cid == "":
        return "no id" if cid is None or cid == "" else f"an id that is {_a(_json_type(cid))}"
    for names, kind in ((OBJECT_FIELDS, dict), (TEXT_FIELDS, str), (LIST_FIELDS, list)):
        for name in names:
            value = item.get(name)
            if value is not None and not isinstance(value, kind):
                return f"item {str(cid)[:40]} has {name} as {_a(_json_type(value))}"
    version = item.get("version")
    if isinstance(version, dict):
        number = version.get("number")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            return f"item {str(cid)[:40]} has version.number as {_a(_json_type(number))}"
    return None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
