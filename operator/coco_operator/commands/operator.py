"""`coco-operator run`, `crds` and `sync-now`."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coco_operator.settings import Settings


def settings_with(**overrides: Any) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def cmd_run(args: argparse.Namespace) -> int:
    import kopf

    from coco_operator import logs
    from coco_operator.controller import handlers

    settings = settings_with(
        meili_url=args.meili_url,
        meili_index=args.meili_index,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_format=args.log_format,
    )
    if args.namespace:
        settings.namespaces = list(args.namespace)
    handlers.configure(settings)
    logs.setup(settings.log_format, args.verbose)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness,
    )
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    from coco_operator.api.crd import crd_files, render_all

    if args.check:
        out_dir = Path(args.check)
        drift = [
            str(out_dir / name)
            for name, content in crd_files().items()
            if not (out_dir / name).exists() or (out_dir / name).read_text() != content
        ]
        if drift:
            print(
                "CRDs differ from the models: " + ", ".join(drift) + "\nRegenerate with: coco-operator crds "
                f"--output-dir {out_dir}",
                file=sys.stderr,
            )
            return 1
        print(f"CRDs in {out_dir} match the models")
        return 0
    if args.output_dir:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in crd_files().items():
            (out_dir / name).write_text(content)
            print(f"wrote {out_dir / name}")
        return 0
    sys.stdout.write(render_all())
    return 0


def cmd_sync_now(args: argparse.Namespace) -> int:
    """Write the sync-request annotation and wait until the operator reports the run it triggered."""
    import kubernetes

    from coco_operator.api.common import GROUP, VERSION
    from coco_operator.dispatcher.runner import SYNC_REQUEST_ANNOTATION

    try:
        kubernetes.config.load_kube_config(context=args.context)
        context = kubernetes.config.list_kube_config_contexts()[1]["context"]
        namespace = args.namespace or context.get("namespace", "default")
    except kubernetes.config.ConfigException:
        kubernetes.config.load_incluster_config()
        namespace = args.namespace or "default"
    api = kubernetes.client.CustomObjectsApi()
    token = args.token or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"metadata": {"annotations": {SYNC_REQUEST_ANNOTATION: token}}}
    try:
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, "datasources", args.name, patch)
    except kubernetes.client.exceptions.ApiException as exc:
        print(f"error: cannot annotate Datasource {namespace}/{args.name}: {exc.status} {exc.reason}", file=sys.stderr)
        return 2
    print(f"requested a sync of {namespace}/{args.name} ({SYNC_REQUEST_ANNOTATION}={token})", file=sys.stderr)
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "datasources", args.name)
        verdict = _handled(obj, token)
        if verdict is not None:
            print(verdict[1])
            return verdict[0]
        time.sleep(1)
    print(f"error: no result within {args.timeout}s; see kubectl describe datasource {args.name}", file=sys.stderr)
    return 1


def _handled(obj: object, token: str) -> tuple[int, str] | None:
    """(exit code, Ready line) once the operator has finished the run `token` asked for, else None."""
    from coco_operator import status as st
    from coco_operator.api.datasource import DatasourceStatus
    from coco_operator.reasons import ConditionType, Reason

    raw = obj.get("status") if isinstance(obj, dict) else None
    status = st.parse(DatasourceStatus, raw, what="the Datasource")
    reconciling = st.get_condition(status, ConditionType.RECONCILING)
    retrying = reconciling is not None and reconciling.reason == Reason.PROGRESSING_WITH_RETRY
    if status.lastHandledSyncRequest != token or (reconciling is not None and not retrying):
        return None
    ready = st.get_condition(status, ConditionType.READY)
    if ready is None:
        return 1, "Unknown: the Datasource has no Ready condition"
    return (0 if ready.status == "True" else 1), f"{ready.status} {ready.reason}: {ready.message}"
