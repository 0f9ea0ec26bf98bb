"""kopf handlers: translate watch events into dispatcher calls. They decide nothing themselves."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from coco_operator import metrics
from coco_operator import status as st
from coco_operator.api.common import GROUP, VERSION
from coco_operator.api.connector import BUILTIN_CONNECTORS, KNOWN_PROCESSORS, ConnectorStatus
from coco_operator.controller.kube import COMPONENT, KubeApi, load_config
from coco_operator.dispatcher.runner import Dispatcher, datasource_id
from coco_operator.errors import SyncError
from coco_operator.search.sink import MeiliSink
from coco_operator.settings import Settings, load_settings
from coco_operator.tenancy import index_access

log = logging.getLogger(__name__)

FINALIZER = "coco.rs/cleanup"


class Runtime:
    """What the handlers share; built at startup."""

    settings: Settings
    kube: KubeApi
    dispatcher: Dispatcher


RT = Runtime()


def configure(settings: Settings) -> None:
    RT.settings = settings


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own annotation prefix and finalizer; kopf keeps its bookkeeping out of status (we own status).
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    # Events the dispatcher posts (kopf.event) say they come from the operator, as `kubectl describe` shows.
    settings.posting.reporting_component = COMPONENT
    settings.posting.reporting_instance = COMPONENT
    settings.posting.event_name_prefix = f"{COMPONENT}-"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    if not hasattr(RT, "settings"):
        RT.settings = load_settings()
    load_config()
    RT.kube = KubeApi()
    RT.dispatcher = Dispatcher(RT.settings, RT.kube)
    metrics.serve(RT.settings.metrics_port)
    if RT.settings.builtin_connector:
        await register_builtin_connectors()


async def register_builtin_connectors() -> None:
    """The builtin Connectors exist once the operator runs (as Coco registers its own at startup). The operator,
    not Helm, creates them: a chart cannot hold an object of a kind its own CRDs define without racing the API
    server's discovery of that kind on a first install."""
    labels = {"app.kubernetes.io/managed-by": "coco-operator"}
    for name, spec in BUILTIN_CONNECTORS.items():
        if await RT.kube.create_connector_if_missing(name, spec, labels):
            log.info("registered the builtin Connector %s", name)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    await RT.dispatcher.shutdown()


@kopf.on.event(GROUP, VERSION, "datasources")
async def datasource_event(body: kopf.Body, type: str | None, **_: Any) -> None:
    if type == "DELETED":
        return
    raw = dict(body)
    before = RT.dispatcher.workers.get((body.metadata.namespace or "", body.metadata.name or ""))
    connector_before = before.connector_id if before else None
    RT.dispatcher.observe(raw)
    connector_now = (raw.get("spec", {}).get("connector") or {}).get("id")
    if connector_before != connector_now:
        for name in {connector_before, connector_now} - {None}:
            await refresh_connector(str(name))


@kopf.on.delete(GROUP, VERSION, "datasources")
async def datasource_deleted(spec: kopf.Spec, status: kopf.Status, namespace: str | None, name: str, **_: Any) -> None:
    """Remove the Datasource's documents (from its index, and from the one it last filled if that differs), then let
    the object go (the finalizer waits for this). The namespace's last Datasource takes its Job key along."""
    namespace = namespace or "default"
    await RT.dispatcher.forget((namespace, name))
    ds_id = datasource_id((namespace, name))
    indexes = {spec.get("index") or RT.settings.meili_index, status.get("index")}
    for index in sorted(i for i in indexes if i and index_access(namespace, i, RT.settings) is not None):
        sink = MeiliSink(RT.settings.meili_url, RT.settings.meili_api_key, index)
        try:
            await sink.delete_datasource(ds_id)
        except SyncError as exc:
            raise kopf.TemporaryError(
                f"cannot remove the documents of {ds_id} from index {index} yet: {exc.message}",
                delay=RT.settings.retry_delay_seconds,
            ) from exc
    try:
        await RT.dispatcher.namespace_left(namespace)
    except SyncError as exc:
        raise kopf.TemporaryError(
            f"cannot remove the Meilisearch key of namespace {namespace} yet: {exc.message}",
            delay=RT.settings.retry_delay_seconds,
        ) from exc
    connector = (spec.get("connector") or {}).get("id")
    if connector:
        await refresh_connector(str(connector))


_refreshing: dict[str, asyncio.Task[None]] = {}
REFRESH_DELAY_S = 1.0


async def refresh_connector(name: str) -> None:
    """Recount a Connector's Datasources soon; bursts (an operator start with many Datasources) coalesce."""
    if name in _refreshing and not _refreshing[name].done():
        return

    async def later() -> None:
        await asyncio.sleep(REFRESH_DELAY_S)
        try:
            obj = await RT.kube.get_connector(name)
            if obj is not None:
                await _write_connector_status(obj)
        except Exception:
            log.exception("could not update the status of Connector %s", name)

    _refreshing[name] = asyncio.create_task(later())


def _listable_namespaces() -> list[str] | None:
    """Explicit namespaces can be listed one by one (namespaced RBAC); globs need a cluster-wide list."""
    namespaces = RT.settings.namespaces
    if not namespaces or any(ch in ns for ns in namespaces for ch in "*?["):
        return None
    return namespaces


async def _write_connector_status(obj: dict[str, Any]) -> None:
    meta, spec = obj.get("metadata", {}), obj.get("spec", {})
    processor = spec.get("processor") or {}
    old = st.parse(ConnectorStatus, obj.get("status"), what=f"Connector {meta.get('name')}")
    # Counted from the API, not from memory, so every operator instance computes the same number.
    using = await RT.kube.datasource_connectors(_listable_namespaces())
    new = st.connector_status(
        old,
        generation=meta.get("generation"),
        processor=str(processor.get("name", "")),
        enabled=bool(processor.get("enabled", True)),
        known=processor.get("name") in KNOWN_PROCESSORS,
        datasources=sum(1 for c in using if c == meta["name"]),
        now=datetime.now(UTC),
    )
    patch = st.patch(old, new)
    if patch:
        await RT.kube.patch_connector_status(meta["name"], patch)


@kopf.on.event(GROUP, VERSION, "connectors")
async def connector_event(body: kopf.Body, type: str | None, name: str, **_: Any) -> None:
    RT.dispatcher.connector_changed(name)
    if type == "DELETED":
        return
    await _write_connector_status(dict(body))


@kopf.on.probe(id="datasources")
def probe_datasources(**_: Any) -> int:
    return len(RT.dispatcher.workers) if hasattr(RT, "dispatcher") else 0
