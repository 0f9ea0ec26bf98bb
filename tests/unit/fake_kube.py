"""An in-memory Kubernetes API behind the dispatcher's `Kube` protocol, for tests of the control loop.

It keeps Datasources, Connectors, Secrets (with their labels), ConfigMaps and Jobs as plain objects, applies status
merge patches the way the API server does (RFC 7386), and records every write and Event so tests can assert on them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coco_operator.api.common import SECRET_OPT_IN_LABEL as OPT_IN_LABEL
from coco_operator.dispatcher.secrets import SecretValue
from coco_operator.errors import SecretError
from coco_operator.reasons import Reason

Key = tuple[str, str]


def apply_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = apply_merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class FakeKube:
    datasources: dict[Key, dict[str, Any]] = field(default_factory=dict)
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[Key, dict[str, str]] = field(default_factory=dict)
    secret_labels: dict[Key, dict[str, str]] = field(default_factory=dict)
    configmaps: dict[Key, dict[str, str]] = field(default_factory=dict)
    jobs: dict[Key, dict[str, Any]] = field(default_factory=dict)
    created_jobs: list[dict[str, Any]] = field(default_factory=list)
    deleted_jobs: list[Key] = field(default_factory=list)
    patches: list[tuple[Key, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # type, reason, message

    # --- setup -----------------------------------------------------------------------------------------------

    def add_datasource(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        self.datasources[(meta["namespace"], meta["name"])] = copy.deepcopy(body)
        return body

    def add_secret(self, namespace: str, name: str, data: dict[str, str], *, opted_in: bool = True) -> None:
        """A Secret; `opted_in` gives it the label that lets Datasources use it."""
        self.secrets[(namespace, name)] = dict(data)
        self.secret_labels[(namespace, name)] = {OPT_IN_LABEL: "true"} if opted_in else {}

    def add_connector(self, name: str = "confluence", *, enabled: bool = True, processor: str = "confluence") -> None:
        self.connectors[name] = {
            "apiVersion": "coco.rs/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": name, "generation": 1},
            "spec": {"name": name, "processor": {"name": processor, "enabled": enabled}},
        }

    def status(self, ns: str, name: str) -> dict[str, Any]:
        return dict(self.datasources[(ns, name)].get("status") or {})

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]

    # --- the Kube protocol -----------------------------------------------------------------------------------

    async def read_secret(self, namespace: str, name: str, key: str, *, owner: str) -> SecretValue:
        data = self.secrets.get((namespace, name))
        if data is None:
            raise SecretError(f"Secret {namespace}/{name} does not exist; fix tokenSecretRef of {owner}")
        if key not in data:
            raise SecretError(f"Secret {namespace}/{name} has no key {key!r}", reason=Reason.SECRET_KEY_NOT_FOUND)
        return SecretValue(data[key], dict(self.secret_labels.get((namespace, name), {})))

    async def read_managed_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        found = self.secrets.get((namespace, name))
        return dict(found) if found is not None else None

    async def write_managed_secret(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        self.secrets[(namespace, name)] = dict(data)
        self.secret_labels[(namespace, name)] = dict(labels)

    async def delete_managed_secret(self, namespace: str, name: str) -> None:
        self.secrets.pop((namespace, name), None)
        self.secret_labels.pop((namespace, name), None)

    async def read_configmap_value(self, namespace: str, name: str, key: str, *, owner: str) -> str:
        data = self.configmaps.get((namespace, name))
        if data is None or key not in data:
            raise SecretError(f"ConfigMap {namespace}/{name} key {key!r} missing", reason=Reason.CONFIG_MAP_NOT_FOUND)
        return data[key]

    async def get_datasource(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.datasources.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def patch_datasource_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(((namespace, name), copy.deepcopy(patch)))
        obj = self.datasources.get((namespace, name))
        if obj is not None:
            obj["status"] = apply_merge_patch(obj.get("status") or {}, patch)

    async def get_connector(self, name: str) -> dict[str, Any] | None:
        found = self.connectors.get(name)
        return copy.deepcopy(found) if found is not None else None

    async def create_job(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        self.jobs[(meta["namespace"], meta["name"])] = copy.deepcopy(manifest)
        self.created_jobs.append(copy.deepcopy(manifest))

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.jobs.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def delete_job(self, namespace: str, name: str) -> None:
        self.deleted_jobs.append((namespace, name))
        self.jobs.pop((namespace, name), None)

    async def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, str(reason), message))


def datasource_body(
    ns: str = "docs",
    name: str = "wiki",
    *,
    generation: int = 1,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "coco.rs/v1alpha1",
        "kind": "Datasource",
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": f"uid-{ns}-{name}",
            "generation": generation,
            "annotations": dict(annotations or {}),
            "labels": {"team": "docs"},
        },
        "spec": {
            "name": "Wiki",
            "connector": {
                "id": "confluence",
                "config": {
                    "endpoint": "https://wiki.example.com",
                    "tokenSecretRef": {"name": "confluence-token"},
                    "space": "DOCS",
                },
            },
            "sync": {"interval": "5m"},
            **spec,
        },
    }
    if status is not None:
        body["status"] = status
    return body


@dataclass
class FakeConnectorKube(FakeKube):
    """What the kopf handlers use on top: Connector status writes and a count of Datasources per Connector."""

    connector_patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def datasource_connectors(self, namespaces: list[str] | None) -> list[str]:
        return [
            str(body["spec"]["connector"]["id"])
            for (ns, _), body in self.datasources.items()
            if namespaces is None or ns in namespaces
        ]

    async def patch_connector_status(self, name: str, patch: dict[str, Any]) -> None:
        self.connector_patches.append((name, copy.deepcopy(patch)))
        obj = self.connectors.get(name)
        if obj is not None:
            obj["status"] = apply_merge_patch(obj.get("status") or {}, patch)
