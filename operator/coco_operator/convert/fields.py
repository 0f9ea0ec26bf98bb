"""The fields the API models define, and pydantic's validation errors as messages that say how to fix them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from coco_operator.api.datasource import MIN_INTERVAL
from coco_operator.convert.read import Kind
from coco_operator.convert.report import JsonObject

# How to fix an invalid field, by its path in the spec (list indices left out).
FIXES = {
    "name": "give it a display name (a non-empty string)",
    "type": 'only datasources of type "connector" can be converted',
    "enabled": "use true or false",
    "connector.id": "use the name of the Connector, e.g. confluence (lowercase letters, digits, '-', '.'), "
    "or pass --connector-id",
    "connector.config": 'give the connector settings as an object: {"endpoint": ..., "space": ..., "token": ...}',
    "connector.config.endpoint": "use the site's URL: https://SITE.atlassian.net/wiki (Cloud) or "
    "https://HOST[/context] (Data Center and Server)",
    "connector.config.username": "use the Atlassian account's email (Cloud); leave it out for a Data Center "
    "personal access token",
    "connector.config.space": "use the space key, e.g. DOCS (personal spaces: ~username)",
    "connector.config.enable_blogposts": "use true or false",
    "connector.config.enable_attachments": "use true or false",
    "connector.config.enable_comments": "use true or false",
    "connector.config.enable_tree_items": "use true or false",
    "connector.config.exclude_labels": "use a list of at most 50 labels, each without spaces or commas",
    "connector.config.tokenSecretRef.name": "pass --secret-name with a lowercase DNS-1123 name, e.g. wiki-token",
    "sync": 'give the sync settings as an object: {"enabled": true, "interval": "5m"}',
    "sync.enabled": "use true or false",
    "sync.interval": f"use a Go duration of at least {MIN_INTERVAL}, e.g. 30s, 5m or 1h",
    "sync.timeout": "use a Go duration, e.g. 20m",
    "index": "use a Meilisearch index uid: letters, digits, '-' and '_'",
    "processor": 'give the processor as an object: {"enabled": true, "name": "confluence"}',
    "processor.name": 'use the processor that implements the connector: "confluence"',
    "processor.enabled": "use true or false",
    "tags": "use a list of strings",
    "assets.icons": 'use an object of icon paths by variant, e.g. {"default": "/assets/icon.png"}',
}


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def split_known(model: type[BaseModel], data: JsonObject, prefix: str = "") -> tuple[JsonObject, list[str]]:
    """Keep the keys the model (and its nested models) define; return the paths of the others."""
    kept: JsonObject = {}
    dropped: list[str] = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            dropped.append(f"{prefix}{key}")
            continue
        sub = _submodel(info.annotation)
        if sub is not None and isinstance(value, dict):
            kept[key], more = split_known(sub, value, f"{prefix}{key}.")
            dropped += more
        else:
            kept[key] = value
    return kept, dropped


def _description(model: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    current: type[BaseModel] | None = model
    desc = None
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None or part not in current.model_fields:
            return None
        info = current.model_fields[part]
        desc = info.description
        current = _submodel(info.annotation)
    return desc


def _value_at(data: Any, loc: Sequence[str | int]) -> Any:
    for part in loc:
        in_dict = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return None
        data = data[part]
    return data


def validation_messages(exc: ValidationError, model: type[BaseModel], data: JsonObject) -> list[str]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        path = ".".join(str(p) for p in loc) or "(spec)"
        key = ".".join(p for p in loc if isinstance(p, str))
        value = _value_at(data, loc)
        got = (
            f"; got {json.dumps(value)}" if isinstance(value, str | int | float | bool) and len(str(value)) < 80 else ""
        )
        if err["type"] == "value_error" and isinstance(_value_at(data, loc), dict):
            # A rule on a whole object (as a CEL rule on it): its message says what to do.
            out.append(f"{path}: {err['ctx']['error']}")
            continue
        message = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
        fix = FIXES.get(key)
        if fix is None:
            desc = _description(model, loc)
            fix = f"expected: {desc}" if desc else "check the value"
        out.append(f"{path}: {message}{got}. Fix: {fix}")
    return out


def label(kind: Kind, body: JsonObject, fallback: str) -> str:
    name = body.get("name")
    return f"{kind} {json.dumps(name, ensure_ascii=False)}" if isinstance(name, str) and name else f"{kind} {fallback}"
