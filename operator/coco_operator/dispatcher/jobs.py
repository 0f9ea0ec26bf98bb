"""Job mode: each run is a `batch/v1` Job running the same image (`coco-operator sync --datasource NS/NAME`).

The Job is built here as a plain manifest (pure, tested directly); its environment is `jobenv`'s contract. The pod
reads its Datasource through the API, gets its credentials as environment variables from the Datasource's own
Secrets and its namespace's own Meilisearch key (`jobkeys`; its ServiceAccount needs no Secret access), and runs
`host.run_datasource` like the operator does, writing progress and the result into the Datasource's status.
"""

from __future__ import annotations

import re
from typing import Any

from coco_operator.api.common import GROUP, VERSION
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.dispatcher.jobenv import job_env
from coco_operator.settings import Settings

RUN_ID_ANNOTATION = f"{GROUP}/run-id"
DATASOURCE_LABEL = f"{GROUP}/datasource"


def job_name(datasource: str, run_id: str) -> str:
    base = re.sub(r"[^a-z0-9-]", "-", f"coco-sync-{datasource}".lower())[: 63 - len(run_id) - 1].rstrip("-")
    return f"{base}-{run_id}"


def sync_job(
    body: dict[str, Any], spec: DatasourceSpec, *, run_id: str, timeout_s: int, settings: Settings
) -> dict[str, Any]:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
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
                "spec": _pod_spec(f"{namespace}/{name}", run_id, job_env(spec, settings), settings),
            },
        },
    }


def _pod_spec(datasource: str, run_id: str, env: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "serviceAccountName": settings.job_service_account,
        "automountServiceAccountToken": True,
        # No <SERVICE>_PORT variables: a Service named coco-* would otherwise inject COCO_* settings into the run.
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "sync",
                "image": settings.job_image,
                "args": ["sync", "--datasource", datasource, "--run-id", run_id],
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
    }


def job_failure(job: dict[str, Any]) -> str | None:
    """Why a Job failed, or None while it has not."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return f"{cond.get('reason', 'Failed')}: {cond.get('message', 'the Job failed')}"
    return None
