"""`coco-operator` command line: run the operator, print CRDs, run one sync outside the cluster, mint a search
token, convert Coco JSON.

Only the parser lives here, so `--help` starts fast: each subcommand imports what it needs when it runs
(`coco_operator.commands.*`, `coco_operator.convert.*`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from coco_operator import __version__
from coco_operator.convert import cli as convert_cli

Command = Callable[[argparse.Namespace], int]


def _lazy(module: str, name: str) -> Command:
    """The subcommand `module.name`, imported when it runs."""

    def command(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), name)(args))

    return command


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    run.set_defaults(func=_lazy("coco_operator.commands.operator", "cmd_run"))


def _add_crds(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    crds = sub.add_parser(
        "crds",
        help="print the CRDs generated from the API models",
        description="Print the CustomResourceDefinitions (YAML) generated from the models.",
    )
    group = crds.add_mutually_exclusive_group()
    group.add_argument("--output-dir", help="write one file per CRD into this directory")
    group.add_argument("--check", metavar="DIR", help="exit 1 if the CRDs in DIR differ from the models")
    crds.set_defaults(func=_lazy("coco_operator.commands.operator", "cmd_crds"))


def _add_sync(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = sub.add_parser(
        "sync",
        help="run one sync of a Datasource given as YAML, outside the cluster",
        description="Run one sync of the Datasource in FILE (YAML, '-' for stdin) and print a summary. "
        "With --state, the status the run leaves (watermark, counts, last full listing) is kept in a JSON file "
        "and the next run with the same file is incremental, as in the operator. "
        "Exit code 0 on success, 1 when the sync failed.",
    )
    sync.add_argument("file", nargs="?", help="YAML file with one Datasource ('-' reads stdin)")
    sync.add_argument(
        "--datasource",
        metavar="NAMESPACE/NAME",
        help="sync a Datasource of the cluster and write the outcome into its status (what a Job-mode pod runs)",
    )
    sync.add_argument("--run-id", help="run id the operator waits for (Job mode)")
    sync.add_argument(
        "--state", metavar="PATH", help="JSON file with the Datasource's status: read before the run, written after"
    )
    sync.add_argument("--token-file", help="file holding the Confluence token (else env CONFLUENCE_TOKEN)")
    sync.add_argument("--meili-url", help="Meilisearch URL (else env MEILI_URL / COCO_MEILI_URL)")
    sync.add_argument("--meili-key", help="Meilisearch API key (else env MEILI_MASTER_KEY / COCO_MEILI_API_KEY)")
    sync.add_argument("--index", help="index when the Datasource names none (default coco_documents)")
    sync.add_argument("--datasource-id", help="id the documents are filed under (default NAMESPACE/NAME)")
    sync.add_argument("--json", action="store_true", help="print the summary as JSON")
    sync.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sync.set_defaults(func=_lazy("coco_operator.commands.sync", "cmd_sync"))


def _add_sync_now(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    now.set_defaults(func=_lazy("coco_operator.commands.operator", "cmd_sync_now"))


def _add_search_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "search-token",
        help="print a Meilisearch tenant token that finds only what one person may read in Confluence",
        description="Mint a tenant token for one person: searches with it find only documents whose Confluence "
        "permissions that person satisfies (spec.permissions.mode sync). Signed with a search-only key "
        "(COCO_MEILI_SEARCH_KEY and COCO_MEILI_SEARCH_KEY_UID, or the key 'coco-operator search', created with the "
        "operator's key COCO_MEILI_API_KEY if missing). Prints the token (with --json: token, filter, expiry).",
    )
    cmd.add_argument(
        "--user",
        action="append",
        required=True,
        help="the person's Confluence identity: Cloud accountId; Data Center username or userKey (repeatable: "
        "give both on Data Center, or use --resolve-groups)",
    )
    cmd.add_argument(
        "--group", action="append", default=[], help="a group the person is in: Cloud group id, Data Center name"
    )
    cmd.add_argument("--index", action="append", required=True, help="index the token may search (repeatable)")
    cmd.add_argument("--expires", default="1h", help="lifetime as a Go duration (default 1h)")
    cmd.add_argument(
        "--resolve-groups",
        action="store_true",
        help="ask Confluence for the groups of the first --user (needs --endpoint and a token)",
    )
    cmd.add_argument("--endpoint", help="Confluence base URL, for --resolve-groups")
    cmd.add_argument("--username", help="Cloud: the email that owns the API token (for --resolve-groups)")
    cmd.add_argument("--token-file", help="file with the Confluence token (else env CONFLUENCE_TOKEN)")
    cmd.add_argument("--meili-url", help="Meilisearch URL (else env COCO_MEILI_URL / MEILI_URL)")
    cmd.add_argument("--json", action="store_true", help="print token, filter and expiry as JSON")
    cmd.set_defaults(func=_lazy("coco_operator.commands.search_token", "cmd_search_token"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coco-operator",
        description="Kubernetes operator that syncs Confluence spaces into Meilisearch (Coco-style connectors).",
    )
    parser.add_argument("--version", action="version", version=f"coco-operator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_crds, _add_sync, _add_sync_now, _add_search_token, convert_cli.add_parser):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.func
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
