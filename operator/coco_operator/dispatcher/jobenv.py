"""The environment of a sync Job's pod: written into the Job by the operator, read back in the pod. One contract,
one module, so the two sides cannot drift.

Credentials come from the Datasource's own Secrets through `valueFrom` (the pod's ServiceAccount needs no Secret
access); operator settings the run depends on are forwarded as the `COCO_*` variables `Settings` reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.api.enrichment import webhook_token_refs
from coco_operator.confluence.auth import OAuthClient
from coco_operator.dispatcher.secrets import Credentials
from coco_operator.errors import SecretError
from coco_operator.secret_values import clean_secret_value
from coco_operator.settings import Settings

TOKEN = "CONFLUENCE_TOKEN"
CA_BUNDLE = "COCO_CA_BUNDLE"  # from caBundleSecretRef
CA_BUNDLE_EXTRA = "COCO_CA_BUNDLE_EXTRA"  # from caBundleConfigMapRef
WEBHOOK_TOKEN = "COCO_WEBHOOK_TOKEN_"  # + the processor's index in spec.enrichment
OAUTH_CLIENT_ID = "CONFLUENCE_OAUTH_CLIENT_ID"  # from oauthSecretRef
OAUTH_CLIENT_SECRET = "CONFLUENCE_OAUTH_CLIENT_SECRET"
MEILI_KEY = "COCO_MEILI_API_KEY"  # from the namespace's own key, in the operator-managed Secret (`jobkeys`)
MEILI_KEY_SECRET_KEY = "key"
# Settings the pod needs to behave like the operator would in-process: every setting a run reads. `NOT_FORWARDED`
# lists the others, and a test fails when a new setting is in neither list.
FORWARDED = (
    "meili_url",
    "meili_index",
    "meili_batch_size",
    "meili_batch_bytes",
    "meili_task_timeout_seconds",
    "max_running_timeout_in_seconds",
    "retry_delay_in_ms",
    "retry_max_delay_seconds",
    "jitter_ratio",
    "progress_interval_seconds",
    "http_timeout_seconds",
    "http_request_deadline_seconds",
    "confluence_max_response_bytes",
    "confluence_gateway_url",
    "confluence_auth_url",
    "confluence_concurrency",
    "confluence_max_retry_seconds",
    "incremental_overlap_seconds",
    "prune_interval_seconds",
    "text_workers",
    "text_worker_memory_bytes",
    "text_conversion_timeout_seconds",
    "extraction_timeout_seconds",
    "extraction_workers",
    "extraction_memory_bytes",
    "attachment_max_bytes",
    "allowed_hosts",
    "allow_http",
    "allow_private_networks",
    "allowed_cidrs",
    "link_allowed_hosts",
    "webhook_allowed_hosts",
    "shared_indexes",
    "index_grants",
    "max_deletions_fraction",
    "max_deletions_min",
    "log_format",
    "log_level",
)
NOT_FORWARDED = {
    "meili_api_key": "the pod gets its namespace's own key instead (MEILI_KEY)",
    "meili_search_key": "signs tenant tokens for searchers (search-token); a run never searches",
    "meili_search_key_uid": "goes with meili_search_key; a run never searches",
    "manage_index_settings": "false in the pod: the operator prepared the index",
    "embedder_profiles": "the operator applies profiles before the Job; their keys stay with the operator",
    "max_concurrent_runs": "the operator's limit, applied before the Job starts",
    "run_mode": "the pod runs its one run itself",
    "job_image": "the operator's, for creating Jobs",
    "job_service_account": "the operator's, for creating Jobs",
    "job_ttl_seconds": "the operator's, for creating Jobs",
    "job_cpu_request": "the operator's, for creating Jobs",
    "job_memory_limit": "the operator's, for creating Jobs",
    "job_poll_seconds": "the operator's, for waiting on Jobs",
    "job_shared_index": "the operator decides where a run goes",
    "job_meili_key_secret_name": "the operator names the Secret in the pod's environment",
    "namespaces": "the operator's watch",
    "builtin_connector": "the operator registers the builtin Connector at its start",
    "metrics_port": "the operator's server",
    "health_port": "the operator's server",
}

EnvVar = dict[str, Any]


def _secret(name: str, ref_name: str, key: str) -> EnvVar:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref_name, "key": key}}}


def setting_variable(field: str) -> str:
    """The variable `Settings` reads a field from."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _setting_value(value: object) -> str:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def forwarded_settings(settings: Settings) -> list[EnvVar]:
    """The operator's settings a run depends on, as the pod's `Settings` reads them (unset ones stay unset)."""
    env = [
        {"name": setting_variable(f), "value": _setting_value(getattr(settings, f))}
        for f in FORWARDED
        if getattr(settings, f) is not None
    ]
    env.append({"name": setting_variable("manage_index_settings"), "value": "false"})
    return env


def job_env(spec: DatasourceSpec, settings: Settings) -> list[EnvVar]:
    """The operator's side: the pod's environment for a run of `spec`. No operator key: the namespace's own."""
    config = spec.connector.config
    env: list[EnvVar] = []
    if config.tokenSecretRef:
        env.append(_secret(TOKEN, config.tokenSecretRef.name, config.tokenSecretRef.key))
    if config.oauthSecretRef:
        oauth = config.oauthSecretRef
        env += [
            _secret(OAUTH_CLIENT_ID, oauth.name, oauth.clientIdKey),
            _secret(OAUTH_CLIENT_SECRET, oauth.name, oauth.clientSecretKey),
        ]
    if config.caBundleSecretRef:
        env.append(_secret(CA_BUNDLE, config.caBundleSecretRef.name, config.caBundleSecretRef.key))
    if config.caBundleConfigMapRef:
        cm = config.caBundleConfigMapRef
        env.append({"name": CA_BUNDLE_EXTRA, "valueFrom": {"configMapKeyRef": {"name": cm.name, "key": cm.key}}})
    for i, ref in webhook_token_refs(spec.enrichment).items():
        env.append(_secret(f"{WEBHOOK_TOKEN}{i}", ref.name, ref.key))
    env += forwarded_settings(settings)
    env.append(_secret(MEILI_KEY, settings.job_meili_key_secret_name, MEILI_KEY_SECRET_KEY))
    return env


class EnvSecrets:
    """The pod's side (and `coco-operator sync`'s): credentials from the environment `job_env` describes, each
    cleaned as a Secret read through the API would be."""

    def __init__(self, environ: Mapping[str, str], *, token: str | None = None, hint: str = "") -> None:
        self.environ = dict(environ)
        self.token = token or self.environ.get(TOKEN)
        self.hint = hint  # how to provide the token, for the error message

    async def credentials(self, spec: DatasourceSpec) -> Credentials:
        config = spec.connector.config
        token: str | None = None
        oauth = None
        if config.oauthSecretRef:
            ref = config.oauthSecretRef
            client_id, client_secret = self.environ.get(OAUTH_CLIENT_ID), self.environ.get(OAUTH_CLIENT_SECRET)
            if not client_id or not client_secret:
                raise SecretError(
                    f"no OAuth client credentials in the environment ({OAUTH_CLIENT_ID}, {OAUTH_CLIENT_SECRET})"
                    f"{self.hint}"
                )
            oauth = OAuthClient(
                clean_secret_value(client_id, secret=f"{ref.name} (as {OAUTH_CLIENT_ID})", key=ref.clientIdKey),
                clean_secret_value(
                    client_secret, secret=f"{ref.name} (as {OAUTH_CLIENT_SECRET})", key=ref.clientSecretKey
                ),
            )
        elif not self.token:
            raise SecretError(f"no Confluence token in the environment ({TOKEN}){self.hint}")
        else:
            key = config.tokenSecretRef.key if config.tokenSecretRef else None
            name = config.tokenSecretRef.name if config.tokenSecretRef else "the token"
            token = clean_secret_value(self.token, secret=f"{name} (as {TOKEN})", key=key)
        ca = "\n".join(filter(None, (self.environ.get(CA_BUNDLE), self.environ.get(CA_BUNDLE_EXTRA))))
        hooks = {
            int(k.removeprefix(WEBHOOK_TOKEN)): clean_secret_value(v, secret=f"in {k}", key=None)
            for k, v in self.environ.items()
            if k.startswith(WEBHOOK_TOKEN) and k.removeprefix(WEBHOOK_TOKEN).isdigit()
        }
        values = (token, *((oauth.client_secret,) if oauth else ()), *hooks.values())
        return Credentials(
            token=token,
            ca_pem=ca or None,
            webhook_tokens=hooks,
            oauth=oauth,
            secrets=tuple(v for v in values if v),
        )
