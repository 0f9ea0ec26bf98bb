"""`coco-operator convert`: turn Coco's JSON definitions into Kubernetes manifests.

Input is what Coco's docs send with curl: the body of `PUT /connector/<id>` (a connector) and of
`POST /datasource/` (a datasource), one JSON object per input, a JSON array of them, or several objects
concatenated. Output is YAML for `kubectl apply -f -`: a `Connector`, and per datasource a `Secret` holding the token
plus a `Datasource` that references it. Every field that is not carried over is reported on stderr with the reason;
the produced specs are validated with the API models, so nothing the API server would refuse is printed.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ValidationError

from coco_operator.api.common import GROUP, VERSION
from coco_operator.api.connector import KNOWN_PROCESSORS, ConnectorSpec
from coco_operator.api.datasource import MIN_INTERVAL, DatasourceSpec
from coco_operator.dispatcher.schedule import parse_duration

JsonObject = dict[str, Any]
Kind = Literal["connector", "datasource"]
Level = Literal["info", "warning", "error"]

API_VERSION = f"{GROUP}/{VERSION}"
DEFAULT_NAMESPACE = "default"
SECRET_KEY = "token"
SECRET_SUFFIX = "-confluence-token"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
CONNECTOR_MARKERS = ("processor", "assets", "category")

# Fields Coco's server sets or uses internally: not part of the specs, dropped without a warning.
CONNECTOR_INFO = {
    "builtin": "Coco's marker for connectors bundled with the server, not part of the Connector spec (this "
    "operator's connectors are always built in); dropped intentionally",
    "created": "set by Coco's server, not part of the spec; dropped intentionally",
    "updated": "set by Coco's server, not part of the spec; dropped intentionally",
}
DATASOURCE_INFO = {
    "created": CONNECTOR_INFO["created"],
    "updated": CONNECTOR_INFO["updated"],
}

# How to fix an invalid field, by its path in the spec (list indices left out).
FIXES = {
    "name": "give it a display name (a non-empty string)",
    "type": 'only datasources of type "connector" can be converted',
    "enabled": "use true or false",
    "connector.id": "use the name of the Connector, e.g. confluence (lowercase letters, digits, '-', '.'), "
    "or pass --connector-id",
    "connector.config": 'give the connector settings as an object: {"endpoint": ..., "space": ..., "token": ...}',
    "connector.config.endpoint": "use the site's URL: https://SITE.atlassian.net/wiki (Cloud) or "
    "https://HOST[/context] (Data Center and Server)",
    "connector.config.username": "use the Atlassian account's email (Cloud); leave it out for a Data Center "
    "personal access token",
    "connector.config.space": "use the space key, e.g. DOCS (personal spaces: ~username)",
    "connector.config.enable_blogposts": "use true or false",
    "connector.config.enable_attachments": "use true or false",
    "connector.config.tokenSecretRef.name": "pass --secret-name with a lowercase DNS-1123 name, e.g. wiki-token",
    "sync": 'give the sync settings as an object: {"enabled": true, "interval": "5m"}',
    "sync.enabled": "use true or false",
    "sync.interval": f"use a Go duration of at least {MIN_INTERVAL}, e.g. 30s, 5m or 1h",
    "sync.timeout": "use a Go duration, e.g. 20m",
    "index": "use a Meilisearch index uid: letters, digits, '-' and '_'",
    "processor": 'give the processor as an object: {"enabled": true, "name": "confluence"}',
    "processor.name": 'use the processor that implements the connector: "confluence"',
    "processor.enabled": "use true or false",
    "tags": "use a list of strings",
    "assets.icons": 'use an object of icon paths by variant, e.g. {"default": "/assets/icon.png"}',
}


# --- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One line of the report: something not carried over, or why an input could not be converted."""

    level: Level
    where: str
    message: str
    dropped: bool = False

    def render(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass(frozen=True)
class ConvertOptions:
    namespace: str = DEFAULT_NAMESPACE
    name: str | None = None
    no_secrets: bool = False
    secret_name: str | None = None
    connector_id: str | None = None
    strict: bool = False


@dataclass
class Conversion:
    """What `convert` produced: the manifests, the Secrets the user must create, and the report."""

    documents: list[JsonObject] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    setup_commands: list[str] = field(default_factory=list)
    secrets_redacted: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.level == "error" for f in self.findings)

    def kinds(self, kind: str) -> list[JsonObject]:
        return [d for d in self.documents if d.get("kind") == kind]

    def render_yaml(self) -> str:
        if not self.documents:
            return ""
        head = "# Generated by `coco-operator convert` from Coco connector/datasource definitions.\n"
        if self.setup_commands:
            head += "# The token Secrets are not in this output: create them before applying:\n"
            head += "".join(f"#   {cmd}\n" for cmd in self.setup_commands)
        body = yaml.safe_dump_all(
            self.documents, sort_keys=False, explicit_start=True, allow_unicode=True, default_flow_style=False
        )
        return head + body

    def render_report(self) -> str:
        lines = [self._redact(f.render()) for f in self.findings]
        connectors, datasources, secrets = (len(self.kinds(k)) for k in ("Connector", "Datasource", "Secret"))
        dropped = sum(1 for f in self.findings if f.dropped)
        errors = sum(1 for f in self.findings if f.level == "error")
        lines.append(
            f"converted {_count(connectors, 'connector')}, {_count(datasources, 'datasource')}, "
            f"{_count(secrets, 'secret')}; {_count(dropped, 'field')} dropped; {_count(errors, 'error')}"
        )
        return "".join(line + "\n" for line in lines)

    def _redact(self, text: str) -> str:
        # Defence in depth: no message embeds a token, but never let one through to stderr.
        for token in self.secrets_redacted:
            if len(token) >= 4:
                text = text.replace(token, "<redacted>")
        return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- reading -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One JSON object of an input, with where it came from (for messages)."""

    file: str
    line: int
    body: JsonObject
    item: int | None = None  # position in a JSON array

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" + (f" [item {self.item}]" if self.item is not None else "")


def read_objects(text: str, file: str) -> tuple[list[Source], list[Finding]]:
    """Split an input into JSON objects: one object, an array of objects, or objects one after another."""
    decoder = json.JSONDecoder()
    sources: list[Source] = []
    findings: list[Finding] = []
    pos = 1 if text.startswith("\ufeff") else 0
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos >= len(text):
            break
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            hint = ""
            if text[pos:].lstrip().startswith("curl"):
                hint = "; this looks like a curl command: pass only its JSON body (the text between -d ' and ')"
            elif text[pos] in "'\"" and text[pos + 1 : pos + 2] in ("{", "["):
                hint = "; remove the shell quote around the JSON"
            findings.append(
                Finding(
                    "error",
                    f"{file}:{exc.lineno}:{exc.colno}",
                    f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}",
                )
            )
            break
        sources_here, problems = _objects_in(value, file, line)
        sources += sources_here
        findings += problems
    if not sources and not findings:
        findings.append(Finding("error", file, "no JSON object found: expected a Coco connector or datasource"))
    return sources, findings


def _objects_in(value: Any, file: str, line: int) -> tuple[list[Source], list[Finding]]:
    items = value if isinstance(value, list) else [value]
    sources: list[Source] = []
    findings: list[Finding] = []
    for i, item in enumerate(items, 1):
        item_no = i if isinstance(value, list) else None
        at = f"{file}:{line}" + (f" [item {i}]" if item_no is not None else "")
        if not isinstance(item, dict):
            findings.append(Finding("error", at, f"expected a JSON object, got {type(item).__name__}"))
            continue
        hits = (item.get("hits") or {}).get("hits") if isinstance(item.get("hits"), dict) else None
        if isinstance(hits, list):  # a Coco search response: convert every hit
            more, problems = _objects_in(hits, file, line)
            sources += more
            findings += problems
        elif isinstance(item.get("_source"), dict):  # a Coco GET response: {"_id": ..., "_source": {...}}
            body = dict(item["_source"])
            if isinstance(item.get("_id"), str):
                body.setdefault("id", item["_id"])
            sources.append(Source(file, line, body, item_no))
        else:
            sources.append(Source(file, line, item, item_no))
    return sources, findings


def detect_kind(body: JsonObject) -> Kind | None:
    """A datasource references a connector (`connector: {id, config}`) or has `type: connector`; a connector
    has a processor, assets or a category and references none."""
    if isinstance(body.get("connector"), dict) or body.get("type") == "connector":
        return "datasource"
    if "connector" not in body and any(k in body for k in CONNECTOR_MARKERS):
        return "connector"
    return None


# --- helpers -----------------------------------------------------------------------------------------------


def slugify(text: str, max_length: int = 63) -> str:
    """A DNS-1123 label from a display name: 'My Confluence Wiki' -> 'my-confluence-wiki'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:max_length].rstrip("-")


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def split_known(model: type[BaseModel], data: JsonObject, prefix: str = "") -> tuple[JsonObject, list[str]]:
    """Keep the keys the model (and its nested models) define; return the paths of the others."""
    kept: JsonObject = {}
    dropped: list[str] = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            dropped.append(f"{prefix}{key}")
            continue
        sub = _submodel(info.annotation)
        if sub is not None and isinstance(value, dict):
            kept[key], more = split_known(sub, value, f"{prefix}{key}.")
            dropped += more
        else:
            kept[key] = value
    return kept, dropped


def _description(model: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    current: type[BaseModel] | None = model
    desc = None
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None or part not in current.model_fields:
            return None
        info = current.model_fields[part]
        desc = info.description
        current = _submodel(info.annotation)
    return desc


def _value_at(data: Any, loc: Sequence[str | int]) -> Any:
    for part in loc:
        in_dict = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return None
        data = data[part]
    return data


def _validation_messages(exc: ValidationError, model: type[BaseModel], data: JsonObject) -> list[str]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        path = ".".join(str(p) for p in loc) or "(spec)"
        key = ".".join(p for p in loc if isinstance(p, str))
        value = _value_at(data, loc)
        got = (
            f"; got {json.dumps(value)}" if isinstance(value, str | int | float | bool) and len(str(value)) < 80 else ""
        )
        fix = FIXES.get(key)
        if fix is None:
            desc = _description(model, loc)
            fix = f"expected: {desc}" if desc else "check the value"
        out.append(f"{path}: {err['msg']}{got}. Fix: {fix}")
    return out


def _label(kind: Kind, body: JsonObject, fallback: str) -> str:
    name = body.get("name")
    return f"{kind} {json.dumps(name, ensure_ascii=False)}" if isinstance(name, str) and name else f"{kind} {fallback}"


# --- conversion --------------------------------------------------------------------------------------------


class _Converter:
    def __init__(self, options: ConvertOptions) -> None:
        self.opts = options
        self.result = Conversion()
        self.connector_names: dict[str, str] = {}  # Coco connector id -> Connector name
        self.datasource_names: set[str] = set()
        self.secret_tokens: dict[str, tuple[str, str]] = {}  # Secret name -> (token, datasource label)

    def note(self, level: Level, where: str, message: str, dropped: bool = False) -> None:
        self.result.findings.append(Finding(level, where, message, dropped))

    def report_dropped(self, where: str, paths: Iterable[str], reason_for: Callable[[str], str]) -> bool:
        """Report fields not carried over; in strict mode they are errors. True if the object may be output."""
        ok = True
        for path in paths:
            level: Level = "error" if self.opts.strict else "warning"
            suffix = " (--strict: not converted)" if self.opts.strict else ""
            self.note(level, where, f"{path} {reason_for(path)}; dropped{suffix}", dropped=True)
            ok = ok and not self.opts.strict
        return ok

    # connectors

    def connector(self, src: Source) -> None:
        body = copy.deepcopy(src.body)
        label = _label("connector", body, "(no name)")
        where = f"{src.where}: {label}"
        coco_id = body.pop("id", None)
        for key, why in CONNECTOR_INFO.items():
            if key in body:
                body.pop(key)
                self.note("info", where, f"{key} is {why}")
        spec, dropped = split_known(ConnectorSpec, body)
        ok = self.report_dropped(where, dropped, lambda _p: "is not a field of the Connector spec")
        try:
            model = ConnectorSpec.model_validate(spec)
        except ValidationError as exc:
            for msg in _validation_messages(exc, ConnectorSpec, spec):
                self.note("error", where, f"cannot convert: {msg}")
            return
        if self.opts.connector_id:
            name = self.opts.connector_id
        elif isinstance(coco_id, str) and coco_id:
            name = coco_id
        elif model.processor.name == "confluence":
            name = "confluence"
        else:
            name = slugify(model.name, 253)
        if not (DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
            self.note(
                "error",
                where,
                f"cannot convert: id {json.dumps(name)} is not a valid Kubernetes name. "
                "Fix: pass --connector-id with lowercase letters, digits, '-' and '.', e.g. confluence",
            )
            return
        if model.processor.name not in KNOWN_PROCESSORS:
            self.note(
                "warning",
                where,
                f"processor.name {json.dumps(model.processor.name)} is not run by this operator (known: "
                f"{', '.join(sorted(KNOWN_PROCESSORS))}); the Connector will not be Ready",
            )
        if not ok:
            return
        if isinstance(coco_id, str) and coco_id:
            self.connector_names[coco_id] = name
        self.connector_names.setdefault(name, name)
        self.result.documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Connector",
                "metadata": {"name": name},
                "spec": model.model_dump(mode="json", exclude_unset=True, exclude_none=True),
            }
        )

    # datasources

    def _metadata_name(self, body: JsonObject, where: str) -> str:
        if self.opts.name:
            return self.opts.name
        coco_name = body.get("name")
        base = slugify(coco_name) if isinstance(coco_name, str) else ""
        if not base:
            base = "datasource"
            self.note("info", where, f"no usable name to derive metadata.name from; named {base!r} (or pass --name)")
        name, n = base, 1
        while name in self.datasource_names:
            n += 1
            name = f"{base[: 63 - len(str(n)) - 1].rstrip('-')}-{n}"
        if name != base:
            self.note("info", where, f"metadata.name {base!r} is taken by another datasource here; named {name!r}")
        return name

    def datasource(self, src: Source) -> None:
        body = copy.deepcopy(src.body)
        label = _label("datasource", body, "(no name)")
        where = f"{src.where}: {label}"
        for key, why in DATASOURCE_INFO.items():
            if key in body:
                body.pop(key)
                self.note("info", where, f"{key} is {why}")
        name = self._metadata_name(body, where)
        if "id" in body:
            body.pop("id")
            self.note("info", where, f"id is assigned by Coco's server; the Datasource is named {name!r} instead")

        connector = body.get("connector")
        config = connector.get("config") if isinstance(connector, dict) else None
        token: str | None = None
        secret_name = self.opts.secret_name or f"{name}{SECRET_SUFFIX}"
        secret_key = SECRET_KEY
        if isinstance(config, dict):
            raw = config.pop("token", None)
            if isinstance(raw, str) and raw.strip():
                token = raw.strip()
                self.result.secrets_redacted.append(token)
            elif raw not in (None, ""):
                self.note(
                    "error",
                    where,
                    "cannot convert: connector.config.token must be a string. Fix: give the API token "
                    "(Cloud) or personal access token (Data Center) as a JSON string",
                )
                return
            if config.get("username") == "":
                config.pop("username")
                self.note(
                    "info",
                    where,
                    "connector.config.username is empty; left out (Data Center: the token is "
                    "used as a personal access token)",
                )
            ref = config.get("tokenSecretRef")
            if isinstance(ref, dict) and not self.opts.secret_name:
                secret_name = ref.get("name", secret_name)
                secret_key = ref.get("key", secret_key)
            config["tokenSecretRef"] = {"name": secret_name, "key": secret_key}
            if isinstance(connector, dict):
                self._map_connector_id(connector, where)

        spec, dropped = split_known(DatasourceSpec, body)

        def reason(path: str) -> str:
            if path.startswith("connector.config."):
                return "is not a field of the confluence connector"
            if path.startswith("connector."):
                return "is not a field of a datasource's connector reference (id, config)"
            if path.startswith("sync."):
                return "is not a sync setting of the Datasource (enabled, interval, timeout)"
            return "is not a field of the Datasource spec"

        ok = self.report_dropped(where, dropped, reason)
        try:
            model = DatasourceSpec.model_validate(spec)
        except ValidationError as exc:
            for msg in _validation_messages(exc, DatasourceSpec, spec):
                self.note("error", where, f"cannot convert: {msg}")
            return
        problems = self._semantic_problems(model)
        for msg in problems:
            self.note("error", where, f"cannot convert: {msg}")
        if problems or not ok:
            return

        secret_doc: JsonObject | None = None
        create_cmd = (
            f"kubectl -n {self.opts.namespace} create secret generic {secret_name} --from-literal={secret_key}=..."
        )
        if token is None:
            self.note("warning", where, f"has no connector.config.token; create the Secret yourself: {create_cmd}")
            if create_cmd not in self.result.setup_commands:
                self.result.setup_commands.append(create_cmd)
        elif self.opts.no_secrets:
            self.note("info", where, f"token not printed (--no-secrets); create the Secret: {create_cmd}")
            if create_cmd not in self.result.setup_commands:
                self.result.setup_commands.append(create_cmd)
        else:
            seen = self.secret_tokens.get(secret_name)
            if seen and seen[0] != token:
                self.note(
                    "error",
                    where,
                    f"cannot convert: Secret {secret_name!r} already holds a different token (for {seen[1]}). "
                    "Fix: convert these datasources separately, or drop --secret-name",
                )
                return
            if seen is None:
                self.secret_tokens[secret_name] = (token, label)
                secret_doc = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret_name, "namespace": self.opts.namespace},
                    "type": "Opaque",
                    "stringData": {secret_key: token},
                }
        self.datasource_names.add(name)
        if secret_doc:
            self.result.documents.append(secret_doc)
        self.result.documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Datasource",
                "metadata": {"name": name, "namespace": self.opts.namespace},
                "spec": model.model_dump(mode="json", exclude_unset=True, exclude_none=True),
            }
        )

    def _map_connector_id(self, connector: JsonObject, where: str) -> None:
        coco_id = connector.get("id")
        target = self.opts.connector_id or (self.connector_names.get(coco_id) if isinstance(coco_id, str) else None)
        if target and target != coco_id:
            connector["id"] = target
            self.note("info", where, f"connector.id {json.dumps(coco_id)} -> {json.dumps(target)}")

    @staticmethod
    def _semantic_problems(spec: DatasourceSpec) -> list[str]:
        """What the API server's CEL rules refuse and the pydantic models do not check."""
        problems = []
        interval = parse_duration(spec.sync.interval)
        if interval < parse_duration(MIN_INTERVAL):
            problems.append(
                f"sync.interval {json.dumps(spec.sync.interval)} is shorter than the minimum {MIN_INTERVAL}. "
                f"Fix: {FIXES['sync.interval']}"
            )
        if spec.sync.timeout is not None and parse_duration(spec.sync.timeout).total_seconds() <= 0:
            problems.append(f"sync.timeout must be longer than 0. Fix: {FIXES['sync.timeout']}")
        config = spec.connector.config
        if ".atlassian.net" in config.endpoint and not config.username:
            problems.append(
                "Confluence Cloud (*.atlassian.net) needs connector.config.username. Fix: add the email of the "
                "Atlassian account that owns the API token"
            )
        return problems


def convert(inputs: Sequence[tuple[str, str]], options: ConvertOptions | None = None) -> Conversion:
    """Convert (display name, text) inputs. Never raises for bad input: problems are findings in the result."""
    opts = options or ConvertOptions()
    conv = _Converter(opts)
    connectors: list[Source] = []
    datasources: list[Source] = []
    for file, text in inputs:
        sources, findings = read_objects(text, file)
        conv.result.findings += findings
        for src in sources:
            if "apiVersion" in src.body and "kind" in src.body:
                conv.note(
                    "error",
                    src.where,
                    f"already a Kubernetes manifest (kind {src.body['kind']}); apply it as it is",
                )
                continue
            kind = detect_kind(src.body)
            if kind == "connector":
                connectors.append(src)
            elif kind == "datasource":
                datasources.append(src)
            else:
                fields = ", ".join(sorted(map(str, src.body))) or "none"
                name = src.body.get("name")
                conv.note(
                    "error",
                    f"{src.where}: object {json.dumps(name, ensure_ascii=False)}"
                    if isinstance(name, str)
                    else src.where,
                    "cannot tell what this is: a connector has processor/assets/category, a datasource has "
                    f'connector: {{"id": ..., "config": {{...}}}} or type "connector" (fields: {fields})',
                )
    for src in connectors:
        conv.connector(src)
    for src in datasources:
        conv.datasource(src)
    return conv.result


# --- command line ------------------------------------------------------------------------------------------

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
    if not (DNS1123_LABEL.match(args.namespace) and len(args.namespace) <= 63):
        problems.append(f"--namespace {args.namespace!r} is not a valid namespace name (DNS-1123 label)")
    if args.name is not None and not (DNS1123_LABEL.match(args.name) and len(args.name) <= 63):
        problems.append(f"--name {args.name!r} must be lowercase letters, digits and '-', at most 63 characters")
    if args.secret_name is not None and not (
        DNS1123_SUBDOMAIN.match(args.secret_name) and len(args.secret_name) <= 253
    ):
        problems.append(f"--secret-name {args.secret_name!r} must be lowercase letters, digits, '-' and '.'")
    if args.connector_id is not None and not (
        DNS1123_SUBDOMAIN.match(args.connector_id) and len(args.connector_id) <= 253
    ):
        problems.append(f"--connector-id {args.connector_id!r} must be lowercase letters, digits, '-' and '.'")
    return problems


def _read_inputs(files: Sequence[str]) -> tuple[list[tuple[str, str]], list[Finding]]:
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
    problems = _usage_problems(args)
    for msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    if problems:
        return 2
    inputs, read_findings = _read_inputs(args.files)
    if args.name or args.connector_id:
        counts = {"datasource": 0, "connector": 0}
        for file, text in inputs:
            for src in read_objects(text, file)[0]:
                kind = detect_kind(src.body)
                if kind:
                    counts[kind] += 1
        if args.name and counts["datasource"] > 1:
            print(
                f"error: --name names one Datasource, but the input has {counts['datasource']} datasources; "
                "convert them one at a time or leave --name out",
                file=sys.stderr,
            )
            return 2
        if args.connector_id and counts["connector"] > 1:
            print(
                f"error: --connector-id names one Connector, but the input has {counts['connector']}", file=sys.stderr
            )
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


if __name__ == "__main__":
    sys.exit(main())
