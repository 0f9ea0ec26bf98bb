"""What a run needs from Secrets (and ConfigMaps), behind one protocol with two sources: the API (the operator)
and the environment (a Job pod, `coco-operator sync`; see `jobenv`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.api.enrichment import embedder_key_refs, webhook_token_refs
from coco_operator.confluence.auth import OAuthClient


@dataclass(frozen=True)
class Credentials:
    token: str | None  # Confluence API token, personal access token or password (None with OAuth)
    ca_pem: str | None = None  # extra CA certificates for the Confluence endpoint
    webhook_tokens: Mapping[int, str] = field(default_factory=dict)  # enrichment processor index -> bearer token
    embedder_keys: Mapping[str, str] = field(default_factory=dict)  # embedder name -> API key
    oauth: OAuthClient | None = None


class SecretResolver(Protocol):
    async def credentials(self, spec: DatasourceSpec) -> Credentials:
        """Everything `spec` references; raises SyncError (e.g. SecretNotFound) naming what is missing."""
        ...


class SecretReader(Protocol):
    async def read_secret_value(self, namespace: str, name: str, key: str, *, owner: str) -> str: ...
    async def read_configmap_value(self, namespace: str, name: str, key: str, *, owner: str) -> str: ...


class ApiSecrets:
    """Reads the Secrets and ConfigMaps a Datasource references, in its own namespace."""

    def __init__(self, kube: SecretReader, namespace: str, *, owner: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.owner = owner  # e.g. "Datasource docs/wiki", named in error messages

    async def _secret(self, name: str, key: str) -> str:
        return await self.kube.read_secret_value(self.namespace, name, key, owner=self.owner)

    async def credentials(self, spec: DatasourceSpec) -> Credentials:
        config = spec.connector.config
        token = oauth = None
        if config.tokenSecretRef:
            token = await self._secret(config.tokenSecretRef.name, config.tokenSecretRef.key)
        if config.oauthSecretRef:
            ref = config.oauthSecretRef
            oauth = OAuthClient(
                await self._secret(ref.name, ref.clientIdKey), await self._secret(ref.name, ref.clientSecretKey)
            )
        ca_pem = None
        if config.caBundleSecretRef:
            ca_pem = await self._secret(config.caBundleSecretRef.name, config.caBundleSecretRef.key)
        if config.caBundleConfigMapRef:
            cm = config.caBundleConfigMapRef
            more = await self.kube.read_configmap_value(self.namespace, cm.name, cm.key, owner=self.owner)
            ca_pem = f"{ca_pem}\n{more}" if ca_pem else more
        hooks = {i: await self._secret(r.name, r.key) for i, r in webhook_token_refs(spec.enrichment).items()}
        keys = {n: await self._secret(r.name, r.key) for n, r in embedder_key_refs(spec.embedders).items()}
        return Credentials(token=token, ca_pem=ca_pem, webhook_tokens=hooks, embedder_keys=keys, oauth=oauth)
