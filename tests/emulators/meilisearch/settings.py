"""Index settings: the emulated subset, its synchronous validation, updates, and the embedder rules.

Emulated: searchableAttributes, filterableAttributes (attribute names), sortableAttributes, rankingRules and
embedders. The other Meilisearch settings are refused as not emulated. Embedders are stored and checked, but the
emulator cannot embed: only `userProvided` embedders have an effect (documents must carry `_vectors.<name>`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import (
    JSON,
    MeiliError,
    camel_to_snake,
    expect_object,
    expect_str_list,
    expect_uint,
    not_emulated,
    reject_unknown_fields,
    ticks,
    type_error,
)

# Meilisearch 1.50: `attribute` was split into `attributeRank` and `wordPosition`.
DEFAULT_RANKING_RULES = ["words", "typo", "proximity", "attributeRank", "sort", "wordPosition", "exactness"]
EMBEDDER_SOURCES = ("openAi", "huggingFace", "ollama", "userProvided", "rest", "composite")
EMULATED = ("searchableAttributes", "filterableAttributes", "sortableAttributes", "rankingRules", "embedders")
ALL_SETTINGS = (
    "displayedAttributes",
    "searchableAttributes",
    "filterableAttributes",
    "sortableAttributes",
    "rankingRules",
    "stopWords",
    "nonSeparatorTokens",
    "separatorTokens",
    "dictionary",
    "synonyms",
    "distinctAttribute",
    "proximityPrecision",
    "typoTolerance",
    "faceting",
    "pagination",
    "embedders",
    "searchCutoffMs",
    "localizedAttributes",
    "facetSearch",
    "prefixSearch",
    "chat",
    "vectorStore",
)
_RULE_RE = re.compile(r"(words|typo|proximity|attribute|attributeRank|wordPosition|sort|exactness)|(.+):(asc|desc)")


def default_settings() -> JSON:
    return {
        "searchableAttributes": ["*"],
        "filterableAttributes": [],
        "sortableAttributes": [],
        "rankingRules": list(DEFAULT_RANKING_RULES),
        "embedders": {},
    }


def validate_patch(body: Any) -> JSON:
    """The checks Meilisearch makes before enqueuing a settings update (a refused one is a synchronous 400)."""
    patch = expect_object(body)
    reject_unknown_fields(patch, ALL_SETTINGS)
    for name, value in patch.items():
        if name not in EMULATED:
            raise not_emulated(f"The `{name}` setting")
        if value is not None:
            _validate(name, value, f"invalid_settings_{camel_to_snake(name)}", f".{name}")
    return patch


def _validate(name: str, value: Any, code: str, path: str) -> None:
    if name == "embedders":
        for embedder, conf in expect_object(value, code, path).items():
            if conf is not None:
                _validate_embedder(expect_object(conf, code, f"{path}.{embedder}"), code, f"{path}.{embedder}")
        return
    if name == "filterableAttributes" and isinstance(value, list) and any(isinstance(v, dict) for v in value):
        raise not_emulated("A filterable attributes rule with `attributePatterns`")
    items = expect_str_list(value, code, path)
    for i, rule in enumerate(items if name == "rankingRules" else []):
        if not _RULE_RE.fullmatch(rule):
            raise MeiliError(
                code,
                f"Invalid value at `{path}[{i}]`: `{rule}` ranking rule is invalid. Valid ranking rules are "
                "words, typo, sort, proximity, attribute, exactness and custom ranking rules.",
            )


def _validate_embedder(conf: JSON, code: str, path: str) -> None:
    source = conf.get("source")
    if source is not None and source not in EMBEDDER_SOURCES:
        if not isinstance(source, str):
            raise type_error(code, f"{path}.source", "a string", source)
        raise MeiliError(
            code, f"Unknown value `{source}` at `{path}.source`: expected one of {ticks(EMBEDDER_SOURCES)}"
        )
    if conf.get("dimensions") is not None:
        expect_uint(conf["dimensions"], code, f"{path}.dimensions")


def apply_patch(current: JSON, patch: JSON) -> JSON:
    """The settings after an update task; null resets a setting, embedders are updated one by one."""
    settings = copy.deepcopy(current)
    defaults = default_settings()
    for name, value in patch.items():
        if value is None:
            settings[name] = defaults[name]
        elif name == "embedders":
            settings[name] = _apply_embedders(settings[name], value)
        elif name == "searchableAttributes" and "*" in value:
            settings[name] = ["*"]
        else:
            settings[name] = copy.deepcopy(value)
    return settings


def _apply_embedders(current: JSON, patch: JSON) -> JSON:
    embedders = copy.deepcopy(current)
    for name, conf in patch.items():
        if conf is None:
            embedders.pop(name, None)
            continue
        old = embedders.get(name, {})
        # A new source starts from scratch; the same source keeps the fields the update leaves out.
        merged = dict(old) if conf.get("source", old.get("source")) == old.get("source") else {}
        merged.update({k: v for k, v in conf.items() if v is not None})
        merged.setdefault("source", "openAi")
        if merged["source"] == "userProvided":
            if "dimensions" not in merged:
                raise MeiliError(
                    "invalid_settings_embedders",
                    f"`.embedders.{name}`: Missing field `dimensions` (note: this field is mandatory for source "
                    "`userProvided`)",
                )
            if merged["dimensions"] == 0:
                raise MeiliError(
                    "invalid_settings_embedders", f"`.embedders.{name}.dimensions`: `dimensions` cannot be zero"
                )
        embedders[name] = merged
    return embedders


def user_provided(settings: JSON) -> dict[str, int]:
    """Embedder name -> dimensions, for the `userProvided` embedders every document must feed."""
    return {n: int(c["dimensions"]) for n, c in settings["embedders"].items() if c.get("source") == "userProvided"}


def shown(settings: JSON) -> JSON:
    """Settings as Meilisearch reports them: embedder API keys redacted."""
    out = copy.deepcopy(settings)
    for conf in out.get("embedders", {}).values():
        if isinstance(conf.get("apiKey"), str):
            conf["apiKey"] = hide_secret(conf["apiKey"])
    return out


def hide_secret(secret: str) -> str:
    n = len(secret)
    if n < 10:
        return "XXX..."
    if n < 20:
        return secret[:2] + "XXXX..."
    if n < 30:
        return secret[:3] + "XXXXX..."
    return secret[:5] + "XXXXXX..."
