"""Job mode: each run is a `batch/v1` Job running the same image (`coco-operator sync --datasource NS/NAME`).

The Job is built here as a plain manifest (pure, tested directly). The pod reads its Datasource through the API,
gets the Confluence token as an environment variable from the Datasource's own Secret (so its ServiceAccount
needs no Secret access), runs the sync and writes progress and the result into the Datasource's status.
"""

from __future__ import annotations

import re
from typing import Any

from coco_operator.api.common import GROUP, VERSION
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.api.enrichment import embedder_key_refs, webhook_token_refs
from coco_operator.settings import Settings

RUN_ID_ANNOTATION = f"{GROUP}/run-id"
DATASOURCE_LABEL = f"{GROUP}/datasource"
# Settings the pod needs to behave like the operator would in-process.
_FORWARDED = (
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
)


def job_name(datasource: str, run_id: str) -> str:
    base = re.sub(r"[^a-z0-9-]", "-", f"coco-sync-{datasource}".lower())[: 63 - len(run_id) - 1].rstrip("-")
    return f"{base}-{run_id}"


def sync_job(
    body: dict[str, Any], spec: DatasourceSpec, *, run_id: str, timeout_s: int, settings: Settings
) -> dict[str, Any]:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    ref = spec.connector.config.tokenSecretRef
    env: list[dict[str, Any]] = [
        {"name": "CONFLUENCE_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}},
    ]
    ca = spec.connector.config.caBundleSecretRef
    if ca:
        env.append({"name": "COCO_CA_BUNDLE", "valueFrom": {"secretKeyRef": {"name": ca.name, "key": ca.key}}})
    cm = spec.connector.config.caBundleConfigMapRef
    if cm:
        env.append({"name": "COCO_CA_BUNDLE_EXTRA", "valueFrom": {"configMapKeyRef": {"name": cm.name, "key": cm.key}}})
    # Webhook tokens and embedder keys reach the pod the same way as the Confluence token.
    for i, r in webhook_token_refs(spec.enrichment).items():
        env.append({"name": f"COCO_WEBHOOK_TOKEN_{i}", "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}})
    for n, (emb, r) in enumerate(embedder_key_refs(spec.embedders).items()):
        env.append({"name": f"COCO_EMBEDDER_NAME_{n}", "value": emb})
        env.append({"name": f"COCO_EMBEDDER_KEY_{n}", "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}})
    for field in _FORWARDED:
        value = getattr(settings, field)
        text = (
            ",".join(value)
            if isinstance(value, list)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        env.append({"name": f"COCO_{field.upper()}", "value": text})
    if settings.job_meili_key_secret:
        secret_name, _, secret_key = settings.job_meili_key_secret.partition("/")
        env.append(
            {
                "name": "COCO_MEILI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": secret_name, "key": secret_key or "key"}},
            }
        )
    labels = {
        "app.kubernetes.io/name": "coco-operator",
        "app.kubernetes.io/component": "sync",
        DATASOURCE_LABEL: name,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, run_id),
            "namespace": namespace,
            "labels": labels,
            "annotations": {RUN_ID_ANNOTATION: run_id},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Datasource",
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "activeDeadlineSeconds": timeout_s,
            # A failed run is retried by the dispatcher with its own backoff, not by the Job controller.
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.job_service_account,
                    "automountServiceAccountToken": True,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "sync",
                            "image": settings.job_image,
                            "args": ["sync", "--datasource", f"{namespace}/{name}", "--run-id", run_id],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": settings.job_cpu_request, "memory": settings.job_memory_limit},
                                "limits": {"memory": settings.job_memory_limit},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def job_failure(job: dict[str, Any]) -> str | None:
    """Why a Job failed, or None while it has not."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return f"{cond.get('reason', 'Failed')}: {cond.get('message', 'the Job failed')}"
    return None


def secrets_from_env(environ: dict[str, str]) -> tuple[dict[int, str], dict[str, str]]:
    """The pod's side of the above: webhook tokens by processor index, embedder keys by name."""
    tokens = {
        int(k.removeprefix("COCO_WEBHOOK_TOKEN_")): v
        for k, v in environ.items()
        if k.startswith("COCO_WEBHOOK_TOKEN_") and k.removeprefix("COCO_WEBHOOK_TOKEN_").isdigit()
    }
    keys = {}
    for k, name in environ.items():
        if k.startswith("COCO_EMBEDDER_NAME_"):
            n = k.removeprefix("COCO_EMBEDDER_NAME_")
            if f"COCO_EMBEDDER_KEY_{n}" in environ:
                keys[name] = environ[f"COCO_EMBEDDER_KEY_{n}"]
    return tokens, keys
