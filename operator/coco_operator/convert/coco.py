"""The conversion itself: Coco connector and datasource objects -> Connector, Secret and Datasource manifests.

Pure: inputs are (name, text) pairs, the output a `Conversion`. Whether a spec is valid is the API models' call
alone (`DatasourceSpec`, `ConnectorSpec`): they check what the CRDs' schemas and CEL rules check, so a converted
object is one the API server accepts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from coco_operator.api.common import GROUP, VERSION
from coco_operator.api.common import SECRET_OPT_IN_LABEL as OPT_IN_LABEL
from coco_operator.api.connector import KNOWN_PROCESSORS, ConnectorSpec
from coco_operator.api.datasource import DatasourceSpec
from coco_operator.convert.fields import FIXES, label, split_known, validation_messages
from coco_operator.convert.names import SECRET_KEY, SECRET_SUFFIX, is_subdomain, slugify
from coco_operator.convert.read import Source, detect_kind, read_objects
from coco_operator.convert.report import Conversion, ConvertOptions, Finding, JsonObject, Level
from coco_operator.times import parse_duration

API_VERSION = f"{GROUP}/{VERSION}"

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


@dataclass(frozen=True)
class _Token:
    value: str | None  # None: the datasource has none (the user creates the Secret)
    secret_name: str
    secret_key: str


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

    def drop_info(self, body: JsonObject, where: str, info: dict[str, str]) -> None:
        for key, why in info.items():
            if key in body:
                body.pop(key)
                self.note("info", where, f"{key} is {why}")

    def validated(self, model: type[BaseModel], spec: JsonObject, where: str) -> BaseModel | None:
        try:
            return model.model_validate(spec)
        except ValidationError as exc:
            for msg in validation_messages(exc, model, spec):
                self.note("error", where, f"cannot convert: {msg}")
            return None

    # connectors

    def connector(self, src: Source) -> None:
        body = copy.deepcopy(src.body)
        where = f"{src.where}: {label('connector', body, '(no name)')}"
        coco_id = body.pop("id", None)
        self.drop_info(body, where, CONNECTOR_INFO)
        spec, dropped = split_known(ConnectorSpec, body)
        ok = self.report_dropped(where, dropped, lambda _p: "is not a field of the Connector spec")
        model = self.validated(ConnectorSpec, spec, where)
        if not isinstance(model, ConnectorSpec):
            return
        name = self._connector_name(model, coco_id)
        if not is_subdomain(name):
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

    def _connector_name(self, model: ConnectorSpec, coco_id: object) -> str:
        if self.opts.connector_id:
            return self.opts.connector_id
        if isinstance(coco_id, str) and coco_id:
            return coco_id
        if model.processor.name == "confluence":
            return "confluence"
        return slugify(model.name, 253)

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
        what = label("datasource", body, "(no name)")
        where = f"{src.where}: {what}"
        self.drop_info(body, where, DATASOURCE_INFO)
        name = self._metadata_name(body, where)
        if "id" in body:
            body.pop("id")
            self.note("info", where, f"id is assigned by Coco's server; the Datasource is named {name!r} instead")
        token = self._take_token(body, name, where)
        if token is None:
            return
        spec, dropped = split_known(DatasourceSpec, body)
        ok = self.report_dropped(where, dropped, _datasource_drop_reason)
        model = self.validated(DatasourceSpec, spec, where)
        if not isinstance(model, DatasourceSpec):
            return
        problems = _beyond_admission(model)
        for msg in problems:
            self.note("error", where, f"cannot convert: {msg}")
        if problems or not ok:
            return
        unique, secret = self._secret(token, what, where)
        if not unique:
            return
        self.datasource_names.add(name)
        if secret:
            self.result.documents.append(secret)
        self.result.documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Datasource",
                "metadata": {"name": name, "namespace": self.opts.namespace},
                "spec": model.model_dump(mode="json", exclude_unset=True, exclude_none=True),
            }
        )

    def _take_token(self, body: JsonObject, name: str, where: str) -> _Token | None:
        """Move the inline token out of the config (into a Secret reference). None: the datasource is refused."""
        connector = body.get("connector")
        config = connector.get("config") if isinstance(connector, dict) else None
        token = _Token(None, self.opts.secret_name or f"{name}{SECRET_SUFFIX}", SECRET_KEY)
        if not isinstance(config, dict) or not isinstance(connector, dict):
            return token
        raw = config.pop("token", None)
        if isinstance(raw, str) and raw.strip():
            token = _Token(raw.strip(), token.secret_name, token.secret_key)
            self.result.secrets_redacted.append(raw.strip())
        elif raw not in (None, ""):
            self.note(
                "error",
                where,
                "cannot convert: connector.config.token must be a string. Fix: give the API token "
                "(Cloud) or personal access token (Data Center) as a JSON string",
            )
            return None
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
            token = _Token(token.value, ref.get("name", token.secret_name), ref.get("key", token.secret_key))
        config["tokenSecretRef"] = {"name": token.secret_name, "key": token.secret_key}
        self._map_connector_id(connector, where)
        return token

    def _secret(self, token: _Token, what: str, where: str) -> tuple[bool, JsonObject | None]:
        """(False if the token clashes with another Secret's; the Secret to print, or None: the user creates it)."""
        create = (
            f"kubectl -n {self.opts.namespace} create secret generic {token.secret_name} "
            f"--from-literal={token.secret_key}=..."
        )
        # Datasources may use only Secrets that opted in (docs/security.md).
        label = f"kubectl -n {self.opts.namespace} label secret {token.secret_name} {OPT_IN_LABEL}=true"
        if token.value is None or self.opts.no_secrets:
            if token.value is None:
                self.note("warning", where, f"has no connector.config.token; create the Secret yourself: {create}")
            else:
                self.note("info", where, f"token not printed (--no-secrets); create the Secret: {create}")
            for command in (create, label):
                if command not in self.result.setup_commands:
                    self.result.setup_commands.append(command)
            return True, None
        seen = self.secret_tokens.get(token.secret_name)
        if seen and seen[0] != token.value:
            self.note(
                "error",
                where,
                f"cannot convert: Secret {token.secret_name!r} already holds a different token (for {seen[1]}). "
                "Fix: convert these datasources separately, or drop --secret-name",
            )
            return False, None
        if seen is not None:
            return True, None
        self.secret_tokens[token.secret_name] = (token.value, what)
        return True, {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": token.secret_name,
                "namespace": self.opts.namespace,
                "labels": {OPT_IN_LABEL: "true"},  # Datasources may use only Secrets that opted in
            },
            "type": "Opaque",
            "stringData": {token.secret_key: token.value},
        }

    def _map_connector_id(self, connector: JsonObject, where: str) -> None:
        coco_id = connector.get("id")
        target = self.opts.connector_id or (self.connector_names.get(coco_id) if isinstance(coco_id, str) else None)
        if target and target != coco_id:
            connector["id"] = target
            self.note("info", where, f"connector.id {json.dumps(coco_id)} -> {json.dumps(target)}")


def _datasource_drop_reason(path: str) -> str:
    if path.startswith("connector.config."):
        return "is not a field of the confluence connector"
    if path.startswith("connector."):
        return "is not a field of a datasource's connector reference (id, config)"
    if path.startswith("sync."):
        return "is not a sync setting of the Datasource (enabled, interval, timeout)"
    return "is not a field of the Datasource spec"


def _beyond_admission(spec: DatasourceSpec) -> list[str]:
    """What the API server would accept but no run could use. (What admission refuses, the models refuse.)"""
    if spec.sync.timeout is not None and parse_duration(spec.sync.timeout).total_seconds() <= 0:
        return [
            f"sync.timeout must be longer than 0: every run would be cancelled at once. Fix: {FIXES['sync.timeout']}"
        ]
    return []


def convert(inputs: Sequence[tuple[str, str]], options: ConvertOptions | None = None) -> Conversion:
    """Convert (display name, text) inputs. Never raises for bad input: problems are findings in the result."""
    conv = _Converter(options or ConvertOptions())
    connectors: list[Source] = []
    datasources: list[Source] = []
    for file, text in inputs:
        sources, findings = read_objects(text, file)
        conv.result.findings += findings
        for src in sources:
            if "apiVersion" in src.body and "kind" in src.body:
                conv.note(
                    "error", src.where, f"already a Kubernetes manifest (kind {src.body['kind']}); apply it as it is"
                )
                continue
            kind = detect_kind(src.body)
            if kind == "connector":
                connectors.append(src)
            elif kind == "datasource":
                datasources.append(src)
            else:
                _unknown(conv, src)
    for src in connectors:
        conv.connector(src)
    for src in datasources:
        conv.datasource(src)
    return conv.result


def _unknown(conv: _Converter, src: Source) -> None:
    fields = ", ".join(sorted(map(str, src.body))) or "none"
    name = src.body.get("name")
    conv.note(
        "error",
        f"{src.where}: object {json.dumps(name, ensure_ascii=False)}" if isinstance(name, str) else src.where,
        "cannot tell what this is: a connector has processor/assets/category, a datasource has "
        f'connector: {{"id": ..., "config": {{...}}}} or type "connector" (fields: {fields})',
    )
