"""Kubernetes API calls the operator makes, run off the event loop (the `kubernetes` client is blocking)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from datetime import UTC, datetime
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from coco_operator.api.common import GROUP, VERSION
from coco_operator.errors import SecretError

log = logging.getLogger(__name__)

COMPONENT = "coco-operator"
# Named in managedFields, so GitOps tools and `kubectl get --show-managed-fields` show who writes status.
FIELD_MANAGER = "coco-operator"


def load_config() -> None:
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]


class KubeApi:
    """The operator's reads and writes. Only this class and kopf talk to the API server."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self._client = api_client or kubernetes.client.ApiClient()
        self._core = kubernetes.client.CoreV1Api(self._client)
        self._custom = kubernetes.client.CustomObjectsApi(self._client)
        self._batch = kubernetes.client.BatchV1Api(self._client)

    async def read_secret_value(self, namespace: str, name: str, key: str, *, owner: str) -> str:
        try:
            secret = await asyncio.to_thread(self._core.read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise SecretError(
                    f"Secret {namespace}/{name} does not exist; create it with the Confluence token under key "
                    f"{key!r} (kubectl -n {namespace} create secret generic {name} --from-literal={key}=...) "
                    f"or fix tokenSecretRef of {owner}"
                ) from exc
            if exc.status == 403:
                raise SecretError(
                    f"the operator may not read Secret {namespace}/{name} (403); grant it get on secrets in "
                    f"namespace {namespace}",
                    reason="SecretForbidden",
                ) from exc
            raise
        data = secret.data or {}
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise SecretError(
                f"Secret {namespace}/{name} has no key {key!r} (keys: {keys}); add it or set "
                f"tokenSecretRef.key of {owner}",
                reason="SecretKeyNotFound",
            )
        try:
            value = base64.b64decode(data[key]).decode().strip()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise SecretError(f"Secret {namespace}/{name} key {key!r} is not valid UTF-8 text") from exc
        if not value:
            raise SecretError(f"Secret {namespace}/{name} key {key!r} is empty", reason="SecretKeyNotFound")
        return value

    async def read_configmap_value(self, namespace: str, name: str, key: str, *, owner: str) -> str:
        try:
            cm = await asyncio.to_thread(self._core.read_namespaced_config_map, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise SecretError(
                    f"ConfigMap {namespace}/{name} does not exist; create it with the CA bundle under key {key!r} "
                    f"or fix caBundleConfigMapRef of {owner}",
                    reason="ConfigMapNotFound",
                ) from exc
            raise
        value = (cm.data or {}).get(key)
        if not value:
            raise SecretError(
                f"ConfigMap {namespace}/{name} has no key {key!r}; add it or fix caBundleConfigMapRef.key of {owner}",
                reason="ConfigMapKeyNotFound",
            )
        return str(value)

    async def create_connector_if_missing(self, name: str, spec: dict[str, Any], labels: dict[str, str]) -> bool:
        """Create a Connector unless one of that name exists (left as it is); True when created."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Connector",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }
        try:
            await asyncio.to_thread(self._custom.create_cluster_custom_object, GROUP, VERSION, "connectors", body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def get_connector(self, name: str) -> dict[str, Any] | None:
        try:
            obj = await asyncio.to_thread(self._custom.get_cluster_custom_object, GROUP, VERSION, "connectors", name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = obj  # type: ignore[assignment]
        return result

    async def datasource_connectors(self, namespaces: list[str] | None) -> list[str]:
        """The connector id of every Datasource: cluster-wide, or in the given namespaces."""

        def items(ns: str | None) -> list[dict[str, Any]]:
            res: dict[str, Any]
            if ns is None:
                res = self._custom.list_cluster_custom_object(GROUP, VERSION, "datasources")  # type: ignore[assignment]
            else:
                res = self._custom.list_namespaced_custom_object(GROUP, VERSION, ns, "datasources")  # type: ignore[assignment]
            return list(res.get("items") or [])

        found: list[dict[str, Any]] = []
        targets: list[str | None] = list(namespaces) if namespaces else [None]
        for ns in targets:
            found += await asyncio.to_thread(items, ns)
        return [str(((o.get("spec") or {}).get("connector") or {}).get("id", "")) for o in found]

    async def get_datasource(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await asyncio.to_thread(
                self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, "datasources", name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = obj  # type: ignore[assignment]
        return result

    async def create_job(self, manifest: dict[str, Any]) -> None:
        ns = manifest["metadata"]["namespace"]
        await asyncio.to_thread(self._batch.create_namespaced_job, ns, manifest)  # type: ignore[arg-type]

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            job = await asyncio.to_thread(self._batch.read_namespaced_job, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = self._client.sanitize_for_serialization(job)  # type: ignore[no-untyped-call]
        return result

    async def delete_job(self, namespace: str, name: str) -> None:
        try:
            await asyncio.to_thread(self._batch.delete_namespaced_job, name, namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def patch_datasource_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(
                self._custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                "datasources",
                name,
                {"status": patch},
                field_manager=FIELD_MANAGER,
            )
        except ApiException as exc:
            if exc.status == 404:  # deleted meanwhile: nothing to report on
                return
            raise

    async def patch_connector_status(self, name: str, patch: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(
                self._custom.patch_cluster_custom_object_status,
                GROUP,
                VERSION,
                "connectors",
                name,
                {"status": patch},
                field_manager=FIELD_MANAGER,
            )
        except ApiException as exc:
            if exc.status == 404:
                return
            raise

    async def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on the object (what `kubectl describe` and `kubectl events` show)."""
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC)
        event = kubernetes.client.CoreV1Event(
            metadata=kubernetes.client.V1ObjectMeta(
                generate_name=f"{meta.get('name', 'object')}.", namespace=namespace
            ),
            involved_object=kubernetes.client.V1ObjectReference(
                api_version=obj.get("apiVersion", f"{GROUP}/{VERSION}"),
                kind=obj.get("kind"),
                name=meta.get("name"),
                namespace=meta.get("namespace"),
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            type=event_type,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=kubernetes.client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=COMPONENT,
        )
        try:
            await asyncio.to_thread(self._core.create_namespaced_event, namespace, event)
        except ApiException as exc:  # events are best effort; never fail a run over one
            log.warning("could not post event %s on %s: %s", reason, meta.get("name"), exc.reason)
