"""Generate CustomResourceDefinitions from the pydantic models (the single source of truth).

Pydantic emits JSON Schema; Kubernetes wants a structural OpenAPI v3 schema: no $ref, no anyOf-with-null,
no titles, no null defaults, and no `additionalProperties: false` (unknown fields are pruned or refused by
the API server's field validation instead).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from coco_operator.api.common import CATEGORY, GROUP, VERSION
from coco_operator.api.connector import Connector
from coco_operator.api.datasource import Datasource

_DROP_KEYS = {"title", "additionalProperties_false"}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline $ref, collapse Optional, and clean one schema node recursively."""
    node = copy.deepcopy(schema)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = _resolve(target, defs)
        # Field-level keys (description, validations) win over the referenced model's.
        for key, value in node.items():
            if key == "x-kubernetes-validations":
                merged[key] = merged.get(key, []) + value
            else:
                merged[key] = value
        node = merged
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node.pop("allOf")[0], defs)
        inner.update({k: v for k, v in node.items() if k != "default"})
        node = inner
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union in a structural schema: {node['anyOf']}")
        inner = _resolve(options[0], defs)
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        inner.update(rest)
        node = inner
    node.pop("title", None)
    if node.get("default", "") is None:
        node.pop("default")
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("type") == "object" and "properties" in node:
        node["properties"] = {k: _resolve(v, defs) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _resolve(node["additionalProperties"], defs)
    if node.get("type") == "array" and "items" in node:
        node["items"] = _resolve(node["items"], defs)
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    return node


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    defs = raw.pop("$defs", {})
    schema = _resolve(raw, defs)
    schema.pop("description", None)
    props = schema["properties"]
    props["apiVersion"] = {"type": "string", "description": "APIVersion of this object."}
    props["kind"] = {"type": "string", "description": "Kind of this object."}
    props["metadata"] = {"type": "object"}
    # Conditions are a map keyed by type, so server-side apply and strategic merges treat them per type.
    status = props.get("status", {})
    conditions = status.get("properties", {}).get("conditions")
    if conditions:
        conditions["x-kubernetes-list-type"] = "map"
        conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


_READY_STATUS = '.status.conditions[?(@.type=="Ready")].status'
_READY_MESSAGE = '.status.conditions[?(@.type=="Ready")].message'


def _crd(
    kind: str,
    plural: str,
    short: str,
    scope: str,
    model: type[BaseModel],
    columns: list[dict[str, Any]],
    description: str,
) -> dict[str, Any]:
    schema = openapi_schema(model)
    schema["description"] = description
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": [CATEGORY],
            },
            "scope": scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def connector_crd() -> dict[str, Any]:
    return _crd(
        "Connector",
        "connectors",
        "cococonn",
        "Cluster",
        Connector,
        [
            {"name": "Processor", "type": "string", "jsonPath": ".spec.processor.name"},
            {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.processor.enabled"},
            {"name": "Ready", "type": "string", "jsonPath": _READY_STATUS},
            {"name": "Datasources", "type": "integer", "jsonPath": ".status.datasources"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "Connector registers a Coco connector (cluster-scoped); `confluence` is the builtin one.",
    )


def datasource_crd() -> dict[str, Any]:
    return _crd(
        "Datasource",
        "datasources",
        "cocods",
        "Namespaced",
        Datasource,
        [
            {"name": "Connector", "type": "string", "jsonPath": ".spec.connector.id"},
            {"name": "Space", "type": "string", "jsonPath": ".spec.connector.config.space"},
            {"name": "Ready", "type": "string", "jsonPath": _READY_STATUS},
            {"name": "Status", "type": "string", "jsonPath": _READY_MESSAGE},
            {"name": "Documents", "type": "integer", "jsonPath": ".status.documents"},
            {"name": "Last Sync", "type": "date", "jsonPath": ".status.lastSyncTime"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "Datasource syncs one Confluence space into Meilisearch on its own interval.",
    )


def all_crds() -> list[dict[str, Any]]:
    return [connector_crd(), datasource_crd()]


HEADER = "# Generated from the pydantic models by `coco-operator crds`. Do not edit by hand.\n"


def render(crd: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(crd, sort_keys=False, allow_unicode=True, width=110)


def render_all() -> str:
    return "---\n".join(render(c) for c in all_crds())


def crd_files() -> dict[str, str]:
    """File name in crds/ -> content."""
    return {f"{c['spec']['names']['plural']}.{GROUP}.yaml": render(c) for c in all_crds()}
