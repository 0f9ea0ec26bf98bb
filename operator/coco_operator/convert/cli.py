"""The `convert` subcommand: arguments, reading files, printing. Imports the conversion only when it runs, so that
building the main parser stays cheap."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coco_operator.convert.names import DEFAULT_NAMESPACE, SECRET_SUFFIX, is_label, is_subdomain

if TYPE_CHECKING:
    from coco_operator.convert.report import Finding

HELP = "convert Coco connector/datasource JSON into Connector, Secret and Datasource manifests"
DESCRIPTION = """\
Convert Coco's JSON definitions -- the bodies of `PUT /connector/<id>` and `POST /datasource/` -- into
Kubernetes manifests (YAML on stdout): a cluster-scoped Connector, and for each datasource a Secret with its
token and a Datasource whose connector.config.tokenSecretRef points at that Secret.

Each input holds one JSON object, a JSON array of objects, or several objects one after another (Coco GET
responses with _source are unwrapped). Fields that are not carried over are reported on stderr with the reason.
The token is never written to stderr. Exit code: 0 when everything was converted (warnings allowed), 1 when
an input could not be converted (the others are still printed), 2 on a usage error."""
EPILOG = """\
examples:
  coco-operator convert connector.json datasource.json --namespace docs | kubectl apply -f -
  cat *.json | coco-operator convert --no-secrets > manifests.yaml
  coco-operator convert datasource.json --name eng-wiki --secret-name eng-wiki-token"""


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="JSON file with Coco definitions ('-' or none: read stdin)"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help="namespace of the Datasources and Secrets (default: %(default)s)",
    )
    parser.add_argument("--name", help="metadata.name of the Datasource (only with exactly one datasource)")
    parser.add_argument(
        "--no-secrets",
        action="store_true",
        help="leave the Secrets out (the token is never printed); a comment says how to create them",
    )
    parser.add_argument("--secret-name", help=f"name of the token Secret (default: <datasource-name>{SECRET_SUFFIX})")
    parser.add_argument(
        "--connector-id",
        help="name of the Connector, also used as the datasources' connector.id (default: the connector's id, "
        "else confluence for the confluence processor, else a slug of its name)",
    )
    parser.add_argument("--strict", action="store_true", help="a dropped field is an error, not a warning")
    parser.set_defaults(func=cmd_convert)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `convert` subcommand on the main parser's subparsers."""
    parser = sub.add_parser(
        "convert",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(parser)


def _usage_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if not is_label(args.namespace):
        problems.append(f"--namespace {args.namespace!r} is not a valid namespace name (DNS-1123 label)")
    if args.name is not None and not is_label(args.name):
        problems.append(f"--name {args.name!r} must be lowercase letters, digits and '-', at most 63 characters")
    if args.secret_name is not None and not is_subdomain(args.secret_name):
        problems.append(f"--secret-name {args.secret_name!r} must be lowercase letters, digits, '-' and '.'")
    if args.connector_id is not None and not is_subdomain(args.connector_id):
        problems.append(f"--connector-id {args.connector_id!r} must be lowercase letters, digits, '-' and '.'")
    return problems


def _read_inputs(files: Sequence[str]) -> tuple[list[tuple[str, str]], list[Finding]]:
    from coco_operator.convert.report import Finding

    inputs: list[tuple[str, str]] = []
    findings: list[Finding] = []
    stdin_read = False
    for file in files or ["-"]:
        if file == "-":
            if stdin_read:
                continue
            stdin_read = True
            if sys.stdin.isatty():
                print("reading Coco JSON from stdin (end with Ctrl-D)...", file=sys.stderr)
            inputs.append(("<stdin>", sys.stdin.read()))
            continue
        try:
            inputs.append((file, Path(file).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            findings.append(Finding("error", file, f"cannot read: {reason}"))
    return inputs, findings


def cmd_convert(args: argparse.Namespace) -> int:
    from coco_operator.convert.coco import convert
    from coco_operator.convert.report import ConvertOptions

    problems = _usage_problems(args)
    inputs, read_findings = _read_inputs(args.files) if not problems else ([], [])
    problems += _more_than_named(args, inputs)
    for msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    if problems:
        return 2
    options = ConvertOptions(
        namespace=args.namespace,
        name=args.name,
        no_secrets=args.no_secrets,
        secret_name=args.secret_name,
        connector_id=args.connector_id,
        strict=args.strict,
    )
    result = convert(inputs, options)
    result.findings[:0] = read_findings
    sys.stdout.write(result.render_yaml())
    sys.stdout.flush()
    sys.stderr.write(result.render_report())
    return 1 if result.failed else 0


def _more_than_named(args: argparse.Namespace, inputs: list[tuple[str, str]]) -> list[str]:
    """--name and --connector-id name one object each: refuse inputs with more."""
    from coco_operator.convert.read import detect_kind, read_objects

    if not (args.name or args.connector_id):
        return []
    counts = {"datasource": 0, "connector": 0}
    for file, text in inputs:
        for src in read_objects(text, file)[0]:
            kind = detect_kind(src.body)
            if kind:
                counts[kind] += 1
    if args.name and counts["datasource"] > 1:
        return [
            f"--name names one Datasource, but the input has {counts['datasource']} datasources; "
            "convert them one at a time or leave --name out"
        ]
    if args.connector_id and counts["connector"] > 1:
        return [f"--connector-id names one Connector, but the input has {counts['connector']}"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m coco_operator.convert ...`: the subcommand on its own."""
    parser = argparse.ArgumentParser(
        prog="coco-operator convert",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(parser)
    args = parser.parse_args(argv)
    return cmd_convert(args)
