"""`coco-operator` command line: run the operator, print CRDs, run one sync outside the cluster."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from coco_operator import __version__, logs
from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.dispatcher.schedule import format_duration
from coco_operator.settings import Settings
from coco_operator.sync import SyncRequest, SyncResult, index_for, prior_listing, prior_watermark, run_sync


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


# --- run ---------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    import kopf

    from coco_operator.controller import handlers

    namespaces: list[str] = args.namespace or []
    settings = _settings(
        meili_url=args.meili_url,
        meili_index=args.meili_index,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_format=args.log_format,
    )
    if namespaces:
        settings.namespaces = namespaces
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


# --- crds --------------------------------------------------------------------------------------------------


def cmd_crds(args: argparse.Namespace) -> int:
    from coco_operator.api.crd import crd_files, render_all

    if args.check:
        out_dir = Path(args.check)
        drift = []
        for name, content in crd_files().items():
            path = out_dir / name
            if not path.exists() or path.read_text() != content:
                drift.append(str(path))
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


# --- sync --------------------------------------------------------------------------------------------------


class ProgressLine:
    """Live progress on a terminal; phase changes only when output is not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.phase = ""
        self.last = 0.0

    def __call__(self, phase: str, items: int) -> None:
        now = time.monotonic()
        if self.tty:
            if phase != self.phase or now - self.last > 0.1:
                self.stream.write(f"\r\033[K{phase}: {items} items")
                self.stream.flush()
                self.last = now
        elif phase != self.phase:
            self.stream.write(f"{phase}...\n")
            self.stream.flush()
        self.phase = phase

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _load_datasource(path: str) -> tuple[str, DatasourceSpec]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Datasource"]
    if len(found) != 1:
        raise SystemExit(f"error: {path} must contain exactly one Datasource (found {len(found)})")
    body = found[0]
    meta = body.get("metadata") or {}
    ds_id = f"{meta.get('namespace', 'default')}/{meta.get('name', 'datasource')}"
    try:
        spec = DatasourceSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise SystemExit(f"error: Datasource {ds_id} in {path} is invalid:\n{exc}") from exc
    if spec.connector.config.token:
        raise SystemExit(
            f"error: Datasource {ds_id} has an inline token; pass it with --token-file or CONFLUENCE_TOKEN instead"
        )
    return ds_id, spec


def _summary(ds_id: str, index: str, result: SyncResult) -> dict[str, Any]:
    return {
        "datasource": ds_id,
        "index": index,
        "result": "Succeeded" if result.succeeded else "Failed",
        "reason": result.error.reason if result.error else None,
        "error": result.error.message if result.error else None,
        "duration_seconds": round(result.duration_s, 3),
        "counts": result.counts.model_dump(),
        "documents": result.documents,
        "requests": result.requests,
        "skipped": result.skipped_items,
        "incremental": result.incremental,
        "watermark": st.iso(result.watermark),
        # Why the run listed every id to find deletions (null: a count of the scope showed nothing left).
        "pruneReason": result.prune_reason,
        "lastPruneTime": st.iso(result.listing.last_prune),
        "sourceItems": result.listing.total,
    }


async def _sync_in_cluster(args: argparse.Namespace, progress: ProgressLine) -> tuple[str, str, SyncResult]:
    """Job mode: the Datasource comes from the API server and the outcome goes into its status."""
    from coco_operator.controller.kube import KubeApi, load_config
    from coco_operator.dispatcher.outcome import finished_status

    namespace, _, name = args.datasource.partition("/")
    if not namespace or not name:
        raise SystemExit("error: --datasource must be NAMESPACE/NAME")
    load_config()
    kube = KubeApi()
    obj = await kube.get_datasource(namespace, name)
    if obj is None:
        raise SystemExit(f"error: Datasource {namespace}/{name} not found")
    spec = DatasourceSpec.model_validate(obj.get("spec") or {})
    settings = _settings(meili_url=args.meili_url, meili_api_key=args.meili_key, meili_index=args.index)
    index = index_for(spec, settings)
    status: dict[str, Any] = dict(obj.get("status") or {})
    token = _token(args)
    if not token:
        raise SystemExit("error: no Confluence token: the Job sets CONFLUENCE_TOKEN from the Datasource's Secret")
    watermark = prior_watermark(status, spec, index)
    latest: dict[str, Any] = {}

    def report(phase: str, items: int) -> None:
        progress(phase, items)
        latest["progress"] = (phase, items)

    async def publish() -> None:
        written = None
        while True:
            await asyncio.sleep(settings.progress_interval_seconds)
            if latest.get("progress") and latest["progress"] != written:
                written = latest["progress"]
                phase, items = written
                await kube.patch_datasource_status(
                    namespace,
                    name,
                    {"progress": {"phase": phase, "items": items, "updated": st.iso(datetime.now(UTC))}},
                )

    publisher = asyncio.create_task(publish())
    try:
        from coco_operator.dispatcher.jobs import secrets_from_env

        hook_tokens, embedder_keys = secrets_from_env(dict(os.environ))
        request = SyncRequest(
            f"{namespace}/{name}",
            spec,
            token,
            index,
            watermark=watermark,
            listing=prior_listing(status, spec, index),
            ca_pem="\n".join(filter(None, (os.environ.get("COCO_CA_BUNDLE"), os.environ.get("COCO_CA_BUNDLE_EXTRA"))))
            or None,
            labels=dict(obj.get("metadata", {}).get("labels") or {}),
            enrichment_tokens=hook_tokens,
            embedder_keys=embedder_keys,
        )
        result = await run_sync(request, settings, progress=report)
    finally:
        publisher.cancel()
    new, _event = finished_status(
        status,
        key=f"{namespace}/{name}",
        spec=spec,
        result=result,
        generation=obj.get("metadata", {}).get("generation"),
        index=index,
        request_token=None,
        settings=settings,
    )
    new["lastSyncRunId"] = args.run_id
    patch = st.merge_patch(status, new)
    if patch:
        await kube.patch_datasource_status(namespace, name, patch)
    return f"{namespace}/{name}", index, result


def _token(args: argparse.Namespace) -> str | None:
    token = Path(args.token_file).read_text().strip() if args.token_file else None
    return token or os.environ.get("CONFLUENCE_TOKEN")


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_sync(args: argparse.Namespace) -> int:
    if args.datasource:
        if not args.run_id:
            print("error: --datasource needs --run-id (set by the operator in Job mode)", file=sys.stderr)
            return 2
        # In a Job's pod this process is PID 1, for which the kernel drops a signal without a handler: without
        # one, a stopped Job (deadline, deletion) would wait out the grace period and end in SIGKILL.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        progress = ProgressLine(sys.stderr)
        ds_id, index, result = asyncio.run(_sync_in_cluster(args, progress))
        progress.done()
        return _print_result(args, ds_id, index, result)
    if not args.file:
        print("error: give a Datasource YAML FILE, or --datasource NAMESPACE/NAME in a cluster", file=sys.stderr)
        return 2
    ds_id, spec = _load_datasource(args.file)
    if args.datasource_id:
        ds_id = args.datasource_id
    token = _token(args)
    if not token:
        print("error: no Confluence token: pass --token-file PATH or set CONFLUENCE_TOKEN", file=sys.stderr)
        return 2
    settings = _settings(meili_url=args.meili_url, meili_api_key=args.meili_key, meili_index=args.index)
    index = index_for(spec, settings)
    progress = ProgressLine(sys.stderr)
    result = asyncio.run(
        run_sync(SyncRequest(ds_id, spec, token, index), settings, progress=None if args.quiet else progress)
    )
    progress.done()
    return _print_result(args, ds_id, index, result)


def _print_result(args: argparse.Namespace, ds_id: str, index: str, result: SyncResult) -> int:
    summary = _summary(ds_id, index, result)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        c = result.counts
        state = "succeeded" if result.succeeded else f"FAILED ({summary['reason']})"
        print(f"sync of {ds_id} {state} in {format_duration(result.duration_s)}")
        print(
            f"  pages {c.pages}, blog posts {c.blogposts}, attachments {c.attachments}, deleted {c.deleted}, "
            f"skipped {c.skipped}"
        )
        print(
            f"  {result.documents if result.documents is not None else '?'} documents in index {index}; "
            f"{result.requests} Confluence requests"
        )
        for item in result.skipped_items:
            print(f"  skipped: {item}")
        if result.error:
            print(f"  error: {result.error.message}")
    return 0 if result.succeeded else 1


# --- sync-now ----------------------------------------------------------------------------------------------


def cmd_sync_now(args: argparse.Namespace) -> int:
    """Write the sync-request annotation and wait until the operator reports the run it triggered."""
    import kubernetes

    from coco_operator.api.common import GROUP, VERSION
    from coco_operator.dispatcher.runner import SYNC_REQUEST_ANNOTATION

    try:
        kubernetes.config.load_kube_config(context=args.context)  # type: ignore[no-untyped-call]
        namespace = args.namespace or kubernetes.config.list_kube_config_contexts()[1]["context"].get(  # type: ignore[no-untyped-call]
            "namespace", "default"
        )
    except kubernetes.config.ConfigException:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
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
        obj: dict[str, Any] = api.get_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, namespace, "datasources", args.name
        )
        status = obj.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        retrying = conditions.get("Reconciling", {}).get("reason") == "ProgressingWithRetry"
        if status.get("lastHandledSyncRequest") == token and ("Reconciling" not in conditions or retrying):
            ready = conditions.get("Ready", {})
            print(f"{ready.get('status')} {ready.get('reason')}: {ready.get('message')}")
            return 0 if ready.get("status") == "True" else 1
        time.sleep(1)
    print(f"error: no result within {args.timeout}s; see kubectl describe datasource {args.name}", file=sys.stderr)
    return 1


# --- parser ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coco-operator",
        description="Kubernetes operator that syncs Confluence spaces into Meilisearch (Coco-style connectors).",
    )
    parser.add_argument("--version", action="version", version=f"coco-operator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the operator against the current kubeconfig (or in-cluster config)",
        description="Run the operator. Settings come from COCO_* environment variables (see README); "
        "flags override them.",
    )
    run.add_argument(
        "-n", "--namespace", action="append", help="watch only this namespace (repeatable); default: all namespaces"
    )
    run.add_argument("--meili-url", help="Meilisearch URL (env COCO_MEILI_URL or MEILI_URL)")
    run.add_argument("--meili-index", help="default index (env COCO_MEILI_INDEX; default coco_documents)")
    run.add_argument("--metrics-port", type=int, help="Prometheus metrics port (env COCO_METRICS_PORT)")
    run.add_argument("--health-port", type=int, help="liveness endpoint port, 0 disables (env COCO_HEALTH_PORT)")
    run.add_argument("--log-format", choices=["text", "json"], help="log format (env COCO_LOG_FORMAT)")
    run.add_argument("-v", "--verbose", action="store_true", help="verbose logging")
    run.set_defaults(func=cmd_run)

    crds = sub.add_parser(
        "crds",
        help="print the CRDs generated from the API models",
        description="Print the CustomResourceDefinitions (YAML) generated from the models.",
    )
    group = crds.add_mutually_exclusive_group()
    group.add_argument("--output-dir", help="write one file per CRD into this directory")
    group.add_argument("--check", metavar="DIR", help="exit 1 if the CRDs in DIR differ from the models")
    crds.set_defaults(func=cmd_crds)

    sync = sub.add_parser(
        "sync",
        help="run one sync of a Datasource given as YAML, outside the cluster",
        description="Run one sync of the Datasource in FILE (YAML, '-' for stdin) and print a summary. "
        "Exit code 0 on success, 1 when the sync failed.",
    )
    sync.add_argument("file", nargs="?", help="YAML file with one Datasource ('-' reads stdin)")
    sync.add_argument(
        "--datasource",
        metavar="NAMESPACE/NAME",
        help="sync a Datasource of the cluster and write the outcome into its status (what a Job-mode pod runs)",
    )
    sync.add_argument("--run-id", help="run id the operator waits for (Job mode)")
    sync.add_argument("--token-file", help="file holding the Confluence token (else env CONFLUENCE_TOKEN)")
    sync.add_argument("--meili-url", help="Meilisearch URL (else env MEILI_URL / COCO_MEILI_URL)")
    sync.add_argument("--meili-key", help="Meilisearch API key (else env MEILI_MASTER_KEY / COCO_MEILI_API_KEY)")
    sync.add_argument("--index", help="index when the Datasource names none (default coco_documents)")
    sync.add_argument("--datasource-id", help="id the documents are filed under (default NAMESPACE/NAME)")
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")
    sync.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sync.set_defaults(func=cmd_sync)

    now = sub.add_parser(
        "sync-now",
        help="ask the operator to sync a Datasource now and wait for the result",
        description="Annotate the Datasource with coco.rs/sync-requested-at and wait until the operator has "
        "handled it. Exit code 0 when the run succeeded, 1 when it failed or timed out.",
    )
    now.add_argument("name", help="Datasource name")
    now.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    now.add_argument("--context", help="kubeconfig context")
    now.add_argument("--token", help="value for the annotation (default: the current time)")
    now.add_argument("--timeout", type=float, default=1260, help="seconds to wait for the result (default 1260)")
    now.add_argument("--no-wait", action="store_true", help="only write the annotation")
    now.set_defaults(func=cmd_sync_now)

    from coco_operator import convert

    convert.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
