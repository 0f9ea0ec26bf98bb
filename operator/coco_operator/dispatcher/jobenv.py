"""The environment of a sync Job's pod: written into the Job by the operator, read back in the pod. One contract,
one module, so the two sides cannot drift.

Credentials come from the Datasource's own Secrets through `valueFrom` (the pod's ServiceAccount needs no Secret
access); operator settings the run depends on are forwarded as the `COCO_*` variables `Settings` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.api.enrichment import embedder_key_refs, webhook_token_refs
from coco_operator.confluence.auth import OAuthClient
from coco_operator.dispatcher.secrets import Credentials
from coco_operator.errors import SecretError
from coco_operator.settings import Settings

TOKEN = "CONFLUENCE_TOKEN"
OAUTH_CLIENT_ID = "CONFLUENCE_OAUTH_CLIENT_ID"  # from oauthSecretRef
OAUTH_CLIENT_SECRET = "CONFLUENCE_OAUTH_CLIENT_SECRET"
CA_BUNDLE = "COCO_CA_BUNDLE"  # from caBundleSecretRef
CA_BUNDLE_EXTRA = "COCO_CA_BUNDLE_EXTRA"  # from caBundleConfigMapRef
WEBHOOK_TOKEN = "COCO_WEBHOOK_TOKEN_"  # + the processor's index in spec.enrichment
EMBEDDER_NAME = "COCO_EMBEDDER_NAME_"  # + n; its key in EMBEDDER_KEY + n
EMBEDDER_KEY = "COCO_EMBEDDER_KEY_"
MEILI_KEY = "COCO_MEILI_API_KEY"
# Settings the pod needs to behave like the operator would in-process.
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
    "http_timeout_seconds",
    "confluence_concurrency",
    "confluence_max_retry_seconds",
    "incremental_overlap_seconds",
    "prune_interval_seconds",
    "text_workers",
    "extraction_timeout_seconds",
    "attachment_max_bytes",
    "progress_interval_seconds",
    "log_format",
    "allow_http",
    "allowed_hosts",
    # The egress policy and the Atlassian hosts a run reaches: a Job must refuse and allow what the operator would.
    "allow_private_networks",
    "allowed_cidrs",
    "link_allowed_hosts",
    "webhook_allowed_hosts",
    "http_request_deadline_seconds",
    "confluence_max_response_bytes",
    "confluence_gateway_url",
    "confluence_auth_url",
)

EnvVar = dict[str, Any]


def _secret(name: str, ref_name: str, key: str) -> EnvVar:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref_name, "key": key}}}


def setting_variable(field: str) -> str:
    """The variable `Settings` reads a field from."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _setting_value(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def job_env(spec: DatasourceSpec, settings: Settings) -> list[EnvVar]:
    """The operator's side: the pod's environment for a run of `spec`."""
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
    for n, (embedder, ref) in enumerate(embedder_key_refs(spec.embedders).items()):
        env.append({"name": f"{EMBEDDER_NAME}{n}", "value": embedder})
        env.append(_secret(f"{EMBEDDER_KEY}{n}", ref.name, ref.key))
    env += [{"name": setting_variable(f), "value": _setting_value(getattr(settings, f))} for f in FORWARDED]
    if settings.job_meili_key_secret:
        secret_name, _, secret_key = settings.job_meili_key_secret.partition("/")
        env.append(_secret(MEILI_KEY, secret_name, secret_key or "key"))
    return env


class EnvSecrets:
    """The pod's side (and `coco-operator sync`'s): credentials from the environment `job_env` describes."""

    def __init__(self, environ: Mapping[str, str], *, token: str | None = None, hint: str = "") -> None:
        self.environ = dict(environ)
        self.token = token or self.environ.get(TOKEN)
        self.hint = hint  # how to provide the token, for the error message

    async def credentials(self, spec: DatasourceSpec) -> Credentials:
        oauth = None
        if spec.connector.config.oauthSecretRef:
            client_id, secret = self.environ.get(OAUTH_CLIENT_ID), self.environ.get(OAUTH_CLIENT_SECRET)
            if not client_id or not secret:
                raise SecretError(
                    f"no OAuth client credentials in the environment ({OAUTH_CLIENT_ID}, {OAUTH_CLIENT_SECRET})"
                    f"{self.hint}"
                )
            oauth = OAuthClient(client_id, secret)
        elif not self.token:
            raise SecretError(f"no Confluence token in the environment ({TOKEN}){self.hint}")
        ca = "\n".join(filter(None, (self.environ.get(CA_BUNDLE), self.environ.get(CA_BUNDLE_EXTRA))))
        hooks = {
            int(k.removeprefix(WEBHOOK_TOKEN)): v
            for k, v in self.environ.items()
            if k.startswith(WEBHOOK_TOKEN) and k.removeprefix(WEBHOOK_TOKEN).isdigit()
        }
        keys = {
            name: self.environ[f"{EMBEDDER_KEY}{k.removeprefix(EMBEDDER_NAME)}"]
            for k, name in self.environ.items()
            if k.startswith(EMBEDDER_NAME) and f"{EMBEDDER_KEY}{k.removeprefix(EMBEDDER_NAME)}" in self.environ
        }
        return Credentials(
            token=None if oauth else self.token,
            ca_pem=ca or None,
            webhook_tokens=hooks,
            embedder_keys=keys,
            oauth=oauth,
        )
