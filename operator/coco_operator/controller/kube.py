"""Kubernetes API calls the operator makes, run off the event loop (the `kubernetes` client is blocking)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import kopf
import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from coco_operator.api.common import GROUP, VERSION
from coco_operator.api.common import SECRET_OPT_IN_LABEL as OPT_IN_LABEL
from coco_operator.dispatcher.secrets import SecretValue
from coco_operator.errors import SecretError, SyncError
from coco_operator.reasons import Reason
from coco_operator.secret_values import MAX_EVENT_CHARS, truncate

log = logging.getLogger(__name__)

COMPONENT = "coco-operator"
# Named in managedFields, so GitOps tools and `kubectl get --show-managed-fields` show who writes status.
FIELD_MANAGER = "coco-operator"
NOT_FOUND = 404
FORBIDDEN = 403
CONFLICT = 409
T = TypeVar("T")


def load_config() -> None:
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()


async def call(fn: Callable[[], T]) -> T:
    """One blocking client call, in a worker thread."""
    return await asyncio.to_thread(fn)


async def read_for_run(what: str, fn: Callable[[], T], *statuses: int) -> T | None:
    """A call a run depends on (a Secret, a ConfigMap): None for `statuses`, any other failure of the API server or
    of the connection to it a SyncError with a reason (retried with backoff), never an unhandled exception. The
    exception's text is not quoted (it may hold a header)."""
    try:
        return await call_unless(fn, *statuses)
    except ApiException as exc:
        if exc.status in (NOT_FOUND, FORBIDDEN):
            raise
        why = f"it answered HTTP {exc.status} {exc.reason or ''}".rstrip()
    except urllib3.exceptions.HTTPError as exc:
        why = f"the connection failed ({type(exc).__name__})"
    raise SyncError(
        f"the Kubernetes API could not be asked for {what}: {why}; the run will be retried",
        reason=Reason.KUBERNETES_UNAVAILABLE,
    )


async def call_unless(fn: Callable[[], T], *statuses: int) -> T | None:
    """One client call; None when the API answers one of `statuses` (e.g. not found, or already exists)."""
    try:
        return await call(fn)
    except ApiException as exc:
        if exc.status in statuses:
            return None
        raise


async def _managed(what: str, fn: Callable[[], T], *statuses: int) -> T | None:
    """A write of the operator's own Secret (Job mode's key): a refusal says which permission the chart grants."""
    try:
        return await read_for_run(what, fn, *statuses)
    except ApiException as exc:
        if exc.status == FORBIDDEN:
            raise SyncError(
                f"the operator may not create or change {what} (403), where Job mode keeps the namespace's own "
                "Meilisearch key; grant it create, and patch and delete of that Secret, on secrets in the namespace "
                "(the chart does so with runMode: Job)",
                reason=Reason.SECRET_FORBIDDEN,
            ) from None
        raise SyncError(
            f"the Kubernetes API refused to write {what} (HTTP {exc.status}); the run will be retried",
            reason=Reason.KUBERNETES_UNAVAILABLE,
        ) from None


def as_object(value: object) -> dict[str, Any]:
    """A custom object as the client returns it (a JSON object, typed `object` by the client)."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object from the API, got {type(value).__name__}")
    return value


class KubeApi:
    """The operator's reads and writes. Only this class and kopf talk to the API server."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self._client = api_client or kubernetes.client.ApiClient()
        self._core = kubernetes.client.CoreV1Api(self._client)
        self._custom = kubernetes.client.CustomObjectsApi(self._client)
        self._batch = kubernetes.client.BatchV1Api(self._client)

    async def read_secret(self, namespace: str, name: str, key: str, *, owner: str) -> SecretValue:
        """One key of a Secret, decoded but otherwise raw (the caller cleans it), with the Secret's labels."""
        try:
            secret = await read_for_run(
                f"Secret {namespace}/{name}", lambda: self._core.read_namespaced_secret(name, namespace)
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                raise SecretError(
                    f"Secret {namespace}/{name} does not exist; create it with the value under key {key!r} and the "
                    f"label {OPT_IN_LABEL}=true (kubectl -n {namespace} create secret generic {name} "
                    f"--from-literal={key}=... && kubectl -n {namespace} label secret {name} {OPT_IN_LABEL}=true) "
                    f"or fix the reference in {owner}"
                ) from None
            if exc.status == FORBIDDEN:
                raise SecretError(
                    f"the operator may not read Secret {namespace}/{name} (403); grant it get on secrets in "
                    f"namespace {namespace}",
                    reason=Reason.SECRET_FORBIDDEN,
                ) from None
            raise
        assert secret is not None  # no status is tolerated: a missing Secret raised above
        data = secret.data or {}
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise SecretError(
                f"Secret {namespace}/{name} has no key {key!r} (keys: {keys}); add it or fix tokenSecretRef.key (or "
                f"the key of the reference naming this Secret) of {owner}",
                reason=Reason.SECRET_KEY_NOT_FOUND,
            )
        try:
            value = base64.b64decode(data[key]).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise SecretError(f"Secret {namespace}/{name} key {key!r} is not valid UTF-8 text") from None
        if not value.strip():
            raise SecretError(f"Secret {namespace}/{name} key {key!r} is empty", reason=Reason.SECRET_KEY_NOT_FOUND)
        return SecretValue(value, dict((secret.metadata and secret.metadata.labels) or {}))

    async def read_managed_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """An operator-managed Secret's data, decoded; None if it does not exist."""
        secret = await read_for_run(
            f"Secret {namespace}/{name}", lambda: self._core.read_namespaced_secret(name, namespace), NOT_FOUND
        )
        if secret is None:
            return None
        out: dict[str, str] = {}
        for key, value in (secret.data or {}).items():
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                out[key] = base64.b64decode(value).decode()
        return out

    async def write_managed_secret(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        """Create the Secret, or replace its data and labels."""
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        body: Any = {"metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "data": encoded}
        what = f"Secret {namespace}/{name}"
        created = await _managed(what, lambda: self._core.create_namespaced_secret(namespace, body), CONFLICT)
        if created is None:
            await _managed(
                what, lambda: self._core.patch_namespaced_secret(name, namespace, body, field_manager=FIELD_MANAGER)
            )

    async def delete_managed_secret(self, namespace: str, name: str) -> None:
        await _managed(
            f"Secret {namespace}/{name}", lambda: self._core.delete_namespaced_secret(name, namespace), NOT_FOUND
        )

    async def read_configmap_value(self, namespace: str, name: str, key: str, *, owner: str) -> str:
        cm = await read_for_run(
            f"ConfigMap {namespace}/{name}", lambda: self._core.read_namespaced_config_map(name, namespace), NOT_FOUND
        )
        if cm is None:
            raise SecretError(
                f"ConfigMap {namespace}/{name} does not exist; create it with the CA bundle under key {key!r} "
                f"or fix caBundleConfigMapRef of {owner}",
                reason=Reason.CONFIG_MAP_NOT_FOUND,
            )
        value = (cm.data or {}).get(key)
        if not value:
            raise SecretError(
                f"ConfigMap {namespace}/{name} has no key {key!r}; add it or fix caBundleConfigMapRef.key of {owner}",
                reason=Reason.CONFIG_MAP_KEY_NOT_FOUND,
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
        obj = await call_unless(
            lambda: self._custom.get_cluster_custom_object(GROUP, VERSION, "connectors", name), NOT_FOUND
        )
        return None if obj is None else as_object(obj)

    async def datasource_connectors(self, namespaces: list[str] | None) -> list[str]:
        """The connector id of every Datasource: cluster-wide, or in the given namespaces."""

        def items(ns: str | None) -> list[dict[str, Any]]:
            if ns is None:
                res = self._custom.list_cluster_custom_object(GROUP, VERSION, "datasources")
            else:
                res = self._custom.list_namespaced_custom_object(GROUP, VERSION, ns, "datasources")
            return list(as_object(res).get("items") or [])

        found: list[dict[str, Any]] = []
        for ns in list(namespaces) if namespaces else [None]:
            found += await call(functools.partial(items, ns))
        return [str(((o.get("spec") or {}).get("connector") or {}).get("id", "")) for o in found]

    async def get_datasource(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = await call_unless(
            lambda: self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "datasources", name),
            NOT_FOUND,
        )
        return None if obj is None else as_object(obj)

    async def create_job(self, manifest: dict[str, Any]) -> None:
        # The client accepts a plain manifest where its signature names V1Job. Already there (409): a retried
        # create of the same run id, so it is ours.
        body: Any = manifest
        ns = manifest["metadata"]["namespace"]
        await call_unless(lambda: self._batch.create_namespaced_job(ns, body), CONFLICT)

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        job = await call_unless(lambda: self._batch.read_namespaced_job(name, namespace), NOT_FOUND)
        return None if job is None else as_object(self._client.sanitize_for_serialization(job))

    async def delete_job(self, namespace: str, name: str) -> None:
        await call_unless(
            lambda: self._batch.delete_namespaced_job(name, namespace, propagation_policy="Background"), NOT_FOUND
        )

    async def patch_datasource_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        # Not found: deleted meanwhile, nothing to report on.
        await call_unless(
            lambda: self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "datasources", name, {"status": patch}, field_manager=FIELD_MANAGER
            ),
            NOT_FOUND,
        )

    async def patch_connector_status(self, name: str, patch: dict[str, Any]) -> None:
        await call_unless(
            lambda: self._custom.patch_cluster_custom_object_status(
                GROUP, VERSION, "connectors", name, {"status": patch}, field_manager=FIELD_MANAGER
            ),
            NOT_FOUND,
        )

    async def post_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on the object (what `kubectl describe` and `kubectl events` show), posted by kopf's
        event poster in the background: best effort, never fails a run."""
        meta = obj.get("metadata") or {}
        regarding: kopf.RawBody = {
            "apiVersion": str(obj.get("apiVersion", f"{GROUP}/{VERSION}")),
            "kind": str(obj.get("kind", "Datasource")),
            "metadata": {"name": str(meta.get("name", "")), "namespace": str(meta.get("namespace", ""))},
        }
        if meta.get("uid"):
            regarding["metadata"]["uid"] = str(meta["uid"])
        try:
            kopf.event(kopf.Body(regarding), type=event_type, reason=reason, message=truncate(message, MAX_EVENT_CHARS))
        except LookupError:  # outside a running operator (kopf's posting context is not set): nowhere to post
            log.warning("could not post event %s on %s: no operator context", reason, meta.get("name"))
