"""What a run needs from Secrets (and ConfigMaps), behind one protocol with two sources: the API (the operator)
and the environment (a Job pod, `coco-operator sync`; see `jobenv`).

Every value is cleaned where it is read (`secret_values.clean_secret_value`), and a Secret read through the API must
have opted in (label `coco.rs/usable-by-datasources: "true"`), so that whoever may create a Datasource cannot have
any Secret of the namespace sent to a URL of their choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from coco_operator.api.common import SECRET_OPT_IN_LABEL as OPT_IN_LABEL
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.api.enrichment import webhook_token_refs
from coco_operator.confluence.auth import OAuthClient
from coco_operator.errors import SecretError
from coco_operator.reasons import Reason
from coco_operator.secret_values import clean_secret_value


@dataclass(frozen=True)
class Credentials:
    token: str | None  # Confluence API token, personal access token or password (None with OAuth)
    ca_pem: str | None = None  # extra CA certificates for the Confluence endpoint
    webhook_tokens: Mapping[int, str] = field(default_factory=dict)  # enrichment processor index -> bearer token
    oauth: OAuthClient | None = None  # a Cloud service account's client credentials (oauthSecretRef)
    secrets: tuple[str, ...] = ()  # every value above that is secret, for redacting messages


@dataclass(frozen=True)
class SecretValue:
    """One key of a Secret as read from the API, raw, with the Secret's labels."""

    value: str
    labels: Mapping[str, str] = field(default_factory=dict)


class SecretResolver(Protocol):
    async def credentials(self, spec: DatasourceSpec) -> Credentials:
        """Everything `spec` references; raises SyncError (e.g. SecretNotFound) naming what is missing."""
        ...


class SecretReader(Protocol):
    async def read_secret(self, namespace: str, name: str, key: str, *, owner: str) -> SecretValue: ...
    async def read_configmap_value(self, namespace: str, name: str, key: str, *, owner: str) -> str: ...


def opt_in_problem(namespace: str, name: str, labels: Mapping[str, str], *, owner: str) -> SecretError | None:
    """Why a Datasource may not use this Secret (it has not opted in), or None."""
    if labels.get(OPT_IN_LABEL) == "true":
        return None
    return SecretError(
        f"Secret {namespace}/{name} is not labelled {OPT_IN_LABEL}=true, so {owner} may not use it (a Datasource "
        "may only use Secrets meant for Datasources). If this Secret is meant for it, label it: kubectl -n "
        f"{namespace} label secret {name} {OPT_IN_LABEL}=true",
        reason=Reason.SECRET_NOT_OPTED_IN,
    )


class ApiSecrets:
    """Reads the Secrets and ConfigMaps a Datasource references, in its own namespace."""

    def __init__(self, kube: SecretReader, namespace: str, *, owner: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.owner = owner  # e.g. "Datasource docs/wiki", named in error messages

    async def _raw(self, name: str, key: str) -> str:
        found = await self.kube.read_secret(self.namespace, name, key, owner=self.owner)
        problem = opt_in_problem(self.namespace, name, found.labels, owner=self.owner)
        if problem is not None:
            raise problem
        return found.value

    async def _secret(self, name: str, key: str) -> str:
        """A token or key: one line of text, a trailing newline stripped."""
        return clean_secret_value(await self._raw(name, key), secret=f"{self.namespace}/{name}", key=key)

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
        if config.caBundleSecretRef:  # PEM spans lines: opted in, not cleaned as a token
            ca_pem = await self._raw(config.caBundleSecretRef.name, config.caBundleSecretRef.key)
        if config.caBundleConfigMapRef:
            cm = config.caBundleConfigMapRef
            more = await self.kube.read_configmap_value(self.namespace, cm.name, cm.key, owner=self.owner)
            ca_pem = f"{ca_pem}\n{more}" if ca_pem else more
        hooks = {i: await self._secret(r.name, r.key) for i, r in webhook_token_refs(spec.enrichment).items()}
        secret = (token, *((oauth.client_secret,) if oauth else ()), *hooks.values())
        return Credentials(
            token=token,
            ca_pem=ca_pem,
            webhook_tokens=hooks,
            oauth=oauth,
            secrets=tuple(s for s in secret if s),
        )
