"""`coco-operator sync`: one run of a Datasource outside the operator, through the same `host.run_datasource`.

sync FILE [--state PATH]            a Datasource from YAML; status kept in a JSON file between runs, so a re-run
                                    is incremental like the operator's
sync --datasource NS/NAME --run-id  a Job-mode pod: the Datasource from the API, status written back to it
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from coco_operator import status as st
from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
from coco_operator.commands.operator import settings_with
from coco_operator.dispatcher.host import Target, run_datasource
from coco_operator.dispatcher.jobenv import TOKEN, EnvSecrets
from coco_operator.dispatcher.writers import FileStatusWriter, MemoryStatusWriter, StatusWriter
from coco_operator.errors import SecretError
from coco_operator.secret_values import clean_secret_value
from coco_operator.settings import Settings
from coco_operator.sync import Progress, SyncRequest, SyncResult, run_sync
from coco_operator.times import format_duration, iso


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


def _sync(request: SyncRequest, settings: Settings, progress: Progress) -> Awaitable[SyncResult]:
    return run_sync(request, settings, progress=progress)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_sync(args: argparse.Namespace) -> int:
    if args.datasource:
        if not args.run_id:
            print("error: --datasource needs --run-id (set by the operator in Job mode)", file=sys.stderr)
            return 2
        if args.state:
            print("error: --state is for a Datasource FILE; in a cluster the status is the state", file=sys.stderr)
            return 2
        # In a Job's pod this process is PID 1, for which the kernel drops a signal without a handler: without
        # one, a stopped Job (deadline, deletion) would wait out the grace period and end in SIGKILL.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        progress = ProgressLine(sys.stderr)
        target, result = asyncio.run(_sync_in_cluster(args, progress))
        progress.done()
        return _print_result(args, target, result)
    if not args.file:
        print("error: give a Datasource YAML FILE, or --datasource NAMESPACE/NAME in a cluster", file=sys.stderr)
        return 2
    key, body, spec = _load_datasource(args.file)
    token = _token(args)
    if not token and not spec.connector.config.oauthSecretRef:
        print(f"error: no Confluence token: pass --token-file PATH or set {TOKEN}", file=sys.stderr)
        return 2
    settings = _settings(args)
    target = Target.of(body, spec, settings, key=args.datasource_id or key)
    writer: StatusWriter = _state(args.state) if args.state else MemoryStatusWriter()
    progress = ProgressLine(sys.stderr)
    finished = asyncio.run(
        run_datasource(
            target,
            secrets=EnvSecrets(os.environ, token=token),
            writer=writer,
            settings=settings,
            sync=_sync,
            observe=None if args.quiet else progress,
        )
    )
    progress.done()
    return _print_result(args, target, finished.result)


def _settings(args: argparse.Namespace) -> Settings:
    return settings_with(meili_url=args.meili_url, meili_api_key=args.meili_key, meili_index=args.index)


def _state(path: str) -> FileStatusWriter:
    try:
        return FileStatusWriter.load(Path(path))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read the state file {path}: {exc}") from exc


async def _sync_in_cluster(args: argparse.Namespace, progress: ProgressLine) -> tuple[Target, SyncResult]:
    """Job mode: the Datasource comes from the API server and the outcome goes into its status."""
    from coco_operator.controller.kube import KubeApi, load_config
    from coco_operator.dispatcher.writers import ApiStatusWriter

    namespace, _, name = args.datasource.partition("/")
    if not namespace or not name:
        raise SystemExit("error: --datasource must be NAMESPACE/NAME")
    load_config()
    kube = KubeApi()
    obj = await kube.get_datasource(namespace, name)
    if obj is None:
        raise SystemExit(f"error: Datasource {namespace}/{name} not found")
    try:
        spec = DatasourceSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        raise SystemExit(f"error: Datasource {namespace}/{name} is invalid:\n{exc}") from exc
    settings = _settings(args)
    target = Target.of(obj, spec, settings)
    status = st.parse(DatasourceStatus, obj.get("status"), what=f"Datasource {target.key}")
    finished = await run_datasource(
        target,
        secrets=EnvSecrets(os.environ, token=_token(args), hint=": the Job sets it from the Datasource's Secret"),
        writer=ApiStatusWriter(kube, namespace, name, status),
        settings=settings,
        sync=_sync,
        observe=progress,
        run_id=args.run_id,
    )
    return target, finished.result


def _load_datasource(path: str) -> tuple[str, dict[str, Any], DatasourceSpec]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Datasource"]
    if len(found) != 1:
        raise SystemExit(f"error: {path} must contain exactly one Datasource (found {len(found)})")
    body = found[0]
    meta = body.get("metadata") or {}
    key = f"{meta.get('namespace', 'default')}/{meta.get('name', 'datasource')}"
    try:
        spec = DatasourceSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise SystemExit(f"error: Datasource {key} in {path} is invalid:\n{exc}") from exc
    if spec.connector.config.token:
        raise SystemExit(f"error: Datasource {key} has an inline token; pass it with --token-file or {TOKEN} instead")
    return key, body, spec


def _token(args: argparse.Namespace) -> str | None:
    """The token from --token-file or the environment, cleaned like a Secret's value (a trailing newline goes, a
    control character is refused naming where it came from, never the value)."""
    if args.token_file:
        raw, where = Path(args.token_file).read_text(), f"in file {args.token_file}"
    else:
        raw, where = os.environ.get(TOKEN) or "", f"in environment variable {TOKEN}"
    if not raw.strip():
        return None
    try:
        return clean_secret_value(raw, secret=where, key=None)
    except SecretError as exc:
        raise SystemExit(f"error: {exc.message}") from None


def summary(target: Target, result: SyncResult) -> dict[str, Any]:
    return {
        "datasource": target.key,
        "index": target.index,
        "result": "Succeeded" if result.succeeded else "Failed",
        "reason": result.error.reason if result.error else None,
        "error": result.error.message if result.error else None,
        "duration_seconds": round(result.duration_s, 3),
        "counts": result.counts.model_dump(),
        "documents": result.documents,
        "requests": result.requests,
        "skipped": result.skipped_items,
        "incremental": result.incremental,
        "watermark": iso(result.watermark),
        # Why the run listed every id to find deletions (null: a count of the scope showed nothing left).
        "pruneReason": result.prune_reason,
        "lastPruneTime": iso(result.listing.last_prune),
        "sourceItems": result.listing.total,
    }


def _print_result(args: argparse.Namespace, target: Target, result: SyncResult) -> int:
    if args.json:
        print(json.dumps(summary(target, result), indent=2))
        return 0 if result.succeeded else 1
    c = result.counts
    state = "succeeded" if result.succeeded else f"FAILED ({result.error.reason if result.error else None})"
    print(f"sync of {target.key} {state} in {format_duration(result.duration_s)}")
    print(
        f"  pages {c.pages}, blog posts {c.blogposts}, attachments {c.attachments}, comments {c.comments}, "
        f"tree items {c.treeItems}, deleted {c.deleted}, skipped {c.skipped}"
    )
    print(
        f"  {result.documents if result.documents is not None else '?'} documents in index {target.index}; "
        f"{result.requests} Confluence requests{' (incremental)' if result.incremental else ''}"
    )
    for item in result.skipped_items:
        print(f"  skipped: {item}")
    if result.error:
        print(f"  error: {result.error.message}")
    return 0 if result.succeeded else 1
