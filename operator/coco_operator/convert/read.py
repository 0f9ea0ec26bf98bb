"""Reading inputs: JSON objects one after another, arrays of them, or Coco API responses; and what each one is."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from coco_operator.convert.report import Finding, JsonObject

Kind = Literal["connector", "datasource"]
CONNECTOR_MARKERS = ("processor", "assets", "category")


@dataclass(frozen=True)
class Source:
    """One JSON object of an input, with where it came from (for messages)."""

    file: str
    line: int
    body: JsonObject
    item: int | None = None  # position in a JSON array

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" + (f" [item {self.item}]" if self.item is not None else "")


def read_objects(text: str, file: str) -> tuple[list[Source], list[Finding]]:
    """Split an input into JSON objects: one object, an array of objects, or objects one after another."""
    decoder = json.JSONDecoder()
    sources: list[Source] = []
    findings: list[Finding] = []
    pos = 1 if text.startswith("\ufeff") else 0
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos >= len(text):
            break
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            hint = ""
            if text[pos:].lstrip().startswith("curl"):
                hint = "; this looks like a curl command: pass only its JSON body (the text between -d ' and ')"
            elif text[pos] in "'\"" and text[pos + 1 : pos + 2] in ("{", "["):
                hint = "; remove the shell quote around the JSON"
            findings.append(
                Finding(
                    "error",
                    f"{file}:{exc.lineno}:{exc.colno}",
                    f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}",
                )
            )
            break
        sources_here, problems = _objects_in(value, file, line)
        sources += sources_here
        findings += problems
    if not sources and not findings:
        findings.append(Finding("error", file, "no JSON object found: expected a Coco connector or datasource"))
    return sources, findings


def _objects_in(value: Any, file: str, line: int) -> tuple[list[Source], list[Finding]]:
    items = value if isinstance(value, list) else [value]
    sources: list[Source] = []
    findings: list[Finding] = []
    for i, item in enumerate(items, 1):
        item_no = i if isinstance(value, list) else None
        at = f"{file}:{line}" + (f" [item {i}]" if item_no is not None else "")
        if not isinstance(item, dict):
            findings.append(Finding("error", at, f"expected a JSON object, got {type(item).__name__}"))
            continue
        hits = (item.get("hits") or {}).get("hits") if isinstance(item.get("hits"), dict) else None
        if isinstance(hits, list):  # a Coco search response: convert every hit
            more, problems = _objects_in(hits, file, line)
            sources += more
            findings += problems
        elif isinstance(item.get("_source"), dict):  # a Coco GET response: {"_id": ..., "_source": {...}}
            body = dict(item["_source"])
            if isinstance(item.get("_id"), str):
                body.setdefault("id", item["_id"])
            sources.append(Source(file, line, body, item_no))
        else:
            sources.append(Source(file, line, item, item_no))
    return sources, findings


def detect_kind(body: JsonObject) -> Kind | None:
    """A datasource references a connector (`connector: {id, config}`) or has `type: connector`; a connector
    has a processor, assets or a category and references none."""
    if isinstance(body.get("connector"), dict) or body.get("type") == "connector":
        return "datasource"
    if "connector" not in body and any(k in body for k in CONNECTOR_MARKERS):
        return "connector"
    return None
