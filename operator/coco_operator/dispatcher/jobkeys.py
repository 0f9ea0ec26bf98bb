"""Job mode's Meilisearch keys: no operator key in a tenant namespace (docs/security.md, point 4).

Before a sync Job starts, the namespace has its own key, limited to the indexes it owns (`<ns>`, `<ns>_*`) and to
what a Job's run does (`search.keys.JOB_ACTIONS`), in an operator-managed Secret the Job's environment references.
A key whose Secret is gone or names another key is replaced; other keys of the namespace's name are deleted, so
deleting the Secret rotates the key. When the namespace's last Datasource goes, its keys and the Secret go too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from coco_operator.search.keys import JOB_ACTIONS, KeyAdmin, MintedKey, key_name
from coco_operator.settings import Settings
from coco_operator.tenancy import owned_patterns

log = logging.getLogger(__name__)

MANAGED_LABELS = {"app.kubernetes.io/managed-by": "coco-operator", "app.kubernetes.io/component": "sync-key"}


class ManagedSecrets(Protocol):
    """The operator's own Secrets in tenant namespaces (`controller.kube.KubeApi`; fakes in tests)."""

    async def read_managed_secret(self, namespace: str, name: str) -> Mapping[str, str] | None: ...
    async def write_managed_secret(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str]
    ) -> None: ...
    async def delete_managed_secret(self, namespace: str, name: str) -> None: ...


class NamespaceKeys:
    def __init__(self, admin: KeyAdmin, kube: ManagedSecrets, settings: Settings) -> None:
        self.admin = admin
        self.kube = kube
        self.secret_name = settings.job_meili_key_secret_name
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    async def ensure(self, namespace: str) -> MintedKey:
        """The namespace's key, created (and its Secret written) unless the Secret already names a fitting one."""
        async with self._lock(namespace):
            name = key_name(namespace)
            keys = await self.admin.keys_named(name)
            stored = await self.kube.read_managed_secret(namespace, self.secret_name) or {}
            indexes = set(owned_patterns(namespace))
            current = next(
                (
                    k
                    for k in keys
                    if k.uid == stored.get("uid")
                    and k.key == stored.get("key")
                    and set(k.indexes) == indexes
                    and set(k.actions) == set(JOB_ACTIONS)
                ),
                None,
            )
            if current is None:
                current = await self.admin.create(
                    name,
                    f"sync Jobs of namespace {namespace}: its own indexes only (managed by coco-operator)",
                    sorted(indexes),
                    JOB_ACTIONS,
                )
                await self.kube.write_managed_secret(
                    namespace, self.secret_name, {"key": current.key, "uid": current.uid}, MANAGED_LABELS
                )
                log.info("minted a Meilisearch key for the sync Jobs of namespace %s", namespace)
            for stale in keys:
                if stale.uid != current.uid:
                    await self.admin.delete(stale.uid)
            return current

    async def remove(self, namespace: str) -> None:
        """Delete the namespace's keys and their Secret (its last Datasource is gone)."""
        async with self._lock(namespace):
            for key in await self.admin.keys_named(key_name(namespace)):
                await self.admin.delete(key.uid)
            await self.kube.delete_managed_secret(namespace, self.secret_name)
        self._locks.pop(namespace, None)
