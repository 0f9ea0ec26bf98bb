"""`spec.enrichment` (an ordered list of processors applied to every batch of documents before it is written) and
`spec.embedders` (names of the administrator's embedder profiles for the Datasource's index).

Structural schemas cannot express unions, so a processor is one object with a `type` and an optional sub-object per
type; CEL rules (and the same checks in pydantic, for the CLI path) require exactly the sub-object of its type.

Title patterns are RE2 regular expressions (the operator matches them with RE2, in linear time), checked to compile
at parse time; lookarounds, backreferences, atomic groups and conditionals are refused at admission too.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from coco_operator.api.common import ApiModel, SecretKeyRef, cel
from coco_operator.patterns import pattern_problem

PROCESSOR_TYPES = ("exclude", "set", "chunk", "webhook")
MAX_PROCESSORS = 20
MAX_EMBEDDERS = 10

# Top-level document fields the operator fills from Confluence (or relies on): `set` may not overwrite them.
RESERVED_FIELDS = (
    "id",
    "source",
    "type",
    "title",
    "content",
    "url",
    "categories",
    "tags",
    "owner",
    "last_updated_by",
    "created",
    "updated",
    "size",
    "metadata",
    "document_chunk",
    "permissions",  # who may read the document (spec.permissions): never set by a pipeline
)
FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A Kubernetes label key: optional DNS-subdomain prefix and a name of at most 63 characters.
LABEL_KEY_PATTERN = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
WEBHOOK_URL_PATTERN = r"^https?://[^\s/?#@]+([/?][^\s#]*)?$"
# Python-only regex syntax (RE2 lacks it), refused at admission: lookarounds, atomic groups, conditionals,
# backreferences. CEL's matches() is RE2 itself, so the rule reads as the runtime does.
NOT_RE2_CEL = r"\\(\\?(=|!|<=|<!|>|\\(|P=)|\\\\[1-9]"

CHUNK_OVERLAP_MESSAGE = (
    "chunk.overlap must be at most half of chunk.size (each chunk must move the text on), e.g. {size: 2000, "
    "overlap: 200}"
)
RESERVED_MESSAGE = (
    "set.fields and set.fromLabels may not write {fields}: the operator fills them from Confluence (use set.tags "
    "for tags); pick another field name, e.g. team or visibility"
)
FIELD_NAME_MESSAGE = "set field names must be top-level field names: letters, digits and _, not starting with a digit"


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _field_name_rules(what: str) -> list[Any]:
    return [
        cel(
            f"self.all(k, !(k in {_cel_list(RESERVED_FIELDS)}))",
            RESERVED_MESSAGE.format(fields=", ".join(RESERVED_FIELDS)),
        ),
        cel(f"self.all(k, k.matches('{FIELD_NAME_PATTERN}'))", f"{what}: {FIELD_NAME_MESSAGE}"),
    ]


def title_pattern_problem(pattern: str) -> str | None:
    """Why a title pattern is refused, or None (RE2 compiles it, with no Python-only constructs)."""
    return pattern_problem(pattern)


def _check_field_names(names: list[str], what: str) -> None:
    reserved = sorted(set(names) & set(RESERVED_FIELDS))
    if reserved:
        raise ValueError(f"{what} names {', '.join(reserved)}: " + RESERVED_MESSAGE.format(fields=", ".join(reserved)))
    bad = [n for n in names if not re.fullmatch(FIELD_NAME_PATTERN, n)]
    if bad:
        raise ValueError(f"{what} names {', '.join(map(repr, bad))}: {FIELD_NAME_MESSAGE}")


class ExcludeSpec(ApiModel):
    """Drop documents (and remove them from the index if they were indexed before). A document matching any one of
    the criteria is dropped."""

    model_config = ConfigDict(
        **ApiModel.model_config,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.labels) && size(self.labels) > 0) || (has(self.titlePatterns) && "
                    "size(self.titlePatterns) > 0) || (has(self.ancestors) && size(self.ancestors) > 0) || "
                    "(has(self.types) && size(self.types) > 0) || has(self.maxSize)",
                    "exclude needs at least one of labels, titlePatterns, ancestors, types or maxSize, "
                    "e.g. exclude: {labels: [no-index]}",
                )
            ]
        },
    )

    labels: list[str] = Field(
        default_factory=list,
        description="Drop documents carrying any of these Confluence labels (case-insensitive), e.g. no-index.",
        max_length=50,
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 255}},
    )
    titlePatterns: list[str] = Field(
        default_factory=list,
        description="Drop documents whose title matches any of these regular expressions (searched anywhere in "
        "the title; anchor with ^ and $; (?i) for case-insensitive). RE2-compatible syntax only: no lookarounds "
        "or backreferences.",
        max_length=50,
        json_schema_extra={
            "items": {"type": "string", "minLength": 1, "maxLength": 1000},
            "x-kubernetes-validations": [
                cel(
                    f"self.all(p, !p.matches('{NOT_RE2_CEL}'))",
                    "exclude.titlePatterns are RE2 regular expressions: no lookarounds, backreferences, atomic groups "
                    "or conditionals (e.g. '^Archive/' or '(?i)deprecated')",
                )
            ],
        },
    )
    ancestors: list[str] = Field(
        default_factory=list,
        description="Drop these pages and everything below them (their child pages and attachments), given as "
        "page titles or page ids, e.g. Archive.",
        max_length=50,
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 255}},
    )
    types: list[Literal["page", "blogpost", "attachment"]] = Field(
        default_factory=list, description="Drop documents of these types.", max_length=3
    )
    maxSize: int | None = Field(
        default=None,
        description="Drop documents larger than this many bytes (text size of pages and blog posts, file size "
        "of attachments).",
        ge=1,
    )

    @field_validator("titlePatterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            problem = title_pattern_problem(pattern)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> ExcludeSpec:
        if not (self.labels or self.titlePatterns or self.ancestors or self.types or self.maxSize is not None):
            raise ValueError(
                "exclude needs at least one of labels, titlePatterns, ancestors, types or maxSize, "
                "e.g. exclude: {labels: [no-index]}"
            )
        return self


class SetSpec(ApiModel):
    """Add fixed fields and tags to every document."""

    model_config = ConfigDict(
        **ApiModel.model_config,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.fields) && size(self.fields) > 0) || (has(self.tags) && size(self.tags) > 0) || "
                    "(has(self.fromLabels) && size(self.fromLabels) > 0)",
                    "set needs at least one of fields, tags or fromLabels, e.g. set: {fields: {team: platform}}",
                )
            ]
        },
    )

    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Top-level fields to add to every document, e.g. {team: platform, visibility: internal}. "
        "Fields the operator fills from Confluence (id, source, type, title, content, tags, metadata, ...) "
        "cannot be set.",
        max_length=50,
        json_schema_extra={
            "additionalProperties": {"type": "string", "maxLength": 1000},
            "x-kubernetes-validations": _field_name_rules("set.fields"),
        },
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Tags to add to every document (kept once, after the document's own labels).",
        max_length=50,
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 255}},
    )
    fromLabels: dict[str, str] = Field(
        default_factory=dict,
        description="Fields whose value comes from a label of this Datasource: document field -> label key, e.g. "
        "{environment: app.kubernetes.io/environment}. A field whose label is missing is left out.",
        max_length=50,
        json_schema_extra={
            "additionalProperties": {"type": "string", "maxLength": 317, "pattern": LABEL_KEY_PATTERN},
            "x-kubernetes-validations": _field_name_rules("set.fromLabels"),
        },
    )

    @field_validator("fields", "fromLabels")
    @classmethod
    def _field_names(cls, value: dict[str, str]) -> dict[str, str]:
        _check_field_names(list(value), "set")
        return value

    @field_validator("fromLabels")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [v for v in value.values() if len(v) > 317 or not re.fullmatch(LABEL_KEY_PATTERN, v)]
        if bad:
            raise ValueError(f"set.fromLabels values must be label keys (e.g. app.kubernetes.io/part-of): {bad}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> SetSpec:
        if not (self.fields or self.tags or self.fromLabels):
            raise ValueError("set needs at least one of fields, tags or fromLabels, e.g. set: {fields: {team: x}}")
        return self


class ChunkSpec(ApiModel):
    """Split long content into overlapping chunks stored with the document (Coco's `document_chunk`)."""

    model_config = ConfigDict(
        **ApiModel.model_config,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.overlap * 2 <= self.size",
                    CHUNK_OVERLAP_MESSAGE,
                    "FieldValueInvalid",
                    ".overlap",
                )
            ]
        },
    )

    size: int = Field(default=2000, description="Largest chunk, in characters (200 to 100000).", ge=200, le=100000)
    overlap: int = Field(
        default=200, description="Characters shared by consecutive chunks (at most half of size).", ge=0, le=50000
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkSpec:
        if self.overlap * 2 > self.size:
            raise ValueError(CHUNK_OVERLAP_MESSAGE)
        return self


class WebhookSpec(ApiModel):
    """POST every batch as JSON to an HTTP service and index the documents it returns.

    Request: {"datasource": {"id", "name"}, "processor": {"index", "name"}, "documents": [...]}. Answer:
    {"documents": [...]} (or a bare list). The service may change and add fields and may leave documents out
    (they are dropped), but must keep each document's id, source, type and metadata.content_id/version."""

    url: str = Field(
        description="Where to POST, e.g. http://enricher.search.svc:8080/enrich. No credentials in the URL: use "
        "tokenSecretRef.",
        max_length=2048,
        pattern=WEBHOOK_URL_PATTERN,
    )
    timeoutSeconds: int = Field(default=30, description="Time allowed for one attempt, in seconds.", ge=1, le=300)
    retries: int = Field(
        default=2,
        description="Further attempts after a timeout, a connection error, 429 or a 5xx answer (with backoff).",
        ge=0,
        le=10,
    )
    tokenSecretRef: SecretKeyRef | None = Field(
        default=None, description="Secret key with a token sent as `Authorization: Bearer <token>`."
    )
    onFailure: Literal["Fail", "Skip"] = Field(
        default="Fail",
        description="Fail: the run fails and names this processor. Skip: the batch is indexed without this "
        "processor's changes and the Datasource's status says so.",
    )


def _type_rules() -> list[Any]:
    examples = {
        "exclude": "exclude: {labels: [no-index]}",
        "set": "set: {fields: {team: platform}}",
        "chunk": "chunk: {size: 2000, overlap: 200}",
        "webhook": "webhook: {url: http://enricher.ns.svc/enrich}",
    }
    rules: list[Any] = []
    for t in PROCESSOR_TYPES:
        rules.append(
            cel(
                f"self.type != '{t}' || has(self.{t})",
                f"a processor with type: {t} needs its options under `{t}:`, e.g. {examples[t]}",
                "FieldValueRequired",
                f".{t}",
            )
        )
        rules.append(
            cel(
                f"self.type == '{t}' || !has(self.{t})",
                f"`{t}:` options belong to a processor with type: {t}; give them their own list entry "
                f"(one processor per type)",
                "FieldValueForbidden",
                f".{t}",
            )
        )
    return rules


class Processor(ApiModel):
    """One enrichment step. Exactly the options object named by `type` is set."""

    model_config = ConfigDict(**ApiModel.model_config, json_schema_extra={"x-kubernetes-validations": _type_rules()})

    type: Literal["exclude", "set", "chunk", "webhook"] = Field(
        description="exclude, set, chunk or webhook; the options go in the field of the same name."
    )
    name: str | None = Field(
        default=None, description="Display name used in status and errors.", min_length=1, max_length=63
    )
    exclude: ExcludeSpec | None = Field(default=None, description="Options of type: exclude.")
    set: SetSpec | None = Field(default=None, description="Options of type: set.")
    chunk: ChunkSpec | None = Field(default=None, description="Options of type: chunk.")
    webhook: WebhookSpec | None = Field(default=None, description="Options of type: webhook.")

    @model_validator(mode="after")
    def _options_match_type(self) -> Processor:
        for t in PROCESSOR_TYPES:
            present = getattr(self, t) is not None
            if t == self.type and not present:
                raise ValueError(f"a processor with type: {t} needs its options under `{t}:`")
            if t != self.type and present:
                raise ValueError(
                    f"`{t}:` options belong to a processor with type: {t}, not {self.type}; give them their own "
                    "list entry"
                )
        return self

    def label(self, index: int) -> str:
        """How messages name this processor, e.g. `processor #2 (webhook "pii" http://x/enrich)`."""
        parts: list[str] = [self.type]
        if self.name:
            parts.append(f'"{self.name}"')
        if self.webhook is not None:
            parts.append(display_url(self.webhook.url))
        return f"processor #{index + 1} ({' '.join(parts)})"


def display_url(url: str) -> str:
    """A URL without query or fragment, safe for messages."""
    return re.split(r"[?#]", url, maxsplit=1)[0]


Enrichment = Annotated[
    list[Processor] | None,
    Field(
        description="Processors applied in order to every batch of documents before it is written: exclude, set, "
        "chunk, webhook.",
        max_length=MAX_PROCESSORS,
    ),
]
EMBEDDER_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"  # a Meilisearch embedder name
EMBEDDERS_FREE_TEXT = (
    "spec.embedders names embedder profiles the operator's administrator defined, e.g. embedders: [default]; "
    "embedder settings (source, url, model, request, ...) are no longer accepted from a Datasource: ask the "
    "administrator for a profile (chart value embedderProfiles)"
)
EmbedderName = Annotated[str, Field(min_length=1, max_length=64, pattern=EMBEDDER_NAME_PATTERN)]
Embedders = Annotated[
    list[EmbedderName] | None,
    Field(
        description="Embedder profiles for this Datasource's index, by name (defined by the operator's administrator "
        "in embedderProfiles); the Meilisearch embedder is named like the profile. Only for an index the "
        "namespace owns.",
        max_length=MAX_EMBEDDERS,
    ),
]


def refuse_free_text_embedders(value: Any) -> Any:
    """The old form (a map of Meilisearch settings) fails with a message that says what replaced it."""
    if isinstance(value, dict):
        raise ValueError(EMBEDDERS_FREE_TEXT)
    return value


def webhook_token_refs(pipeline: list[Processor] | None) -> dict[int, SecretKeyRef]:
    """Processor index -> Secret key of its bearer token: what the caller resolves for EnrichContext.tokens."""
    return {
        i: p.webhook.tokenSecretRef
        for i, p in enumerate(pipeline or [])
        if p.webhook is not None and p.webhook.tokenSecretRef is not None
    }
