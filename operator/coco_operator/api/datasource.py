"""`Datasource` (namespaced): one Confluence space synced into Meilisearch, as in Coco's `POST /datasource/`.

Field names inside `connector.config` are Coco's own (snake_case) so that a Coco definition converts 1:1.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from coco_operator.api.common import ApiModel, Condition, ConfigMapKeyRef, SecretKeyRef, Timestamp, cel
from coco_operator.api.confluence_auth import (
    CLOUD_ID_PATTERN,
    RULES,
    URL_PATTERN,
    AuthType,
    OAuthSecretRef,
    auth_problems,
    effective_auth_type,
)
from coco_operator.api.enrichment import Embedders, Enrichment, refuse_free_text_embedders
from coco_operator.times import parse_duration

# Go's time.ParseDuration syntax (what CEL's duration() accepts), e.g. 30s, 5m, 1h30m, 1.5h.
GO_DURATION_PATTERN = r"^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$"
MIN_INTERVAL = "10s"
# A global space key is letters and digits; a personal space key is `~` followed by a username or account id.
SPACE_KEY_PATTERN = r"^([A-Za-z0-9]+|~[A-Za-z0-9._@:-]+)$"
# Confluence labels have no white space (the editor splits on it) and no commas; everything else is quoted in CQL.
LABEL_PATTERN = r"^[^\s,]+$"
MAX_EXCLUDE_LABELS = 50
INDEX_UID_PATTERN = r"^[A-Za-z0-9_-]+$"

CQL_ORDER_BY = "connector.config.cql must not contain ORDER BY; the operator orders results itself"
INTERVAL_TOO_SHORT = f"sync.interval must be at least {MIN_INTERVAL}"
MAX_TIMEOUT = "24h"
TIMEOUT_TOO_LONG = (
    f"sync.timeout must be at most {MAX_TIMEOUT}; the operator caps it further at its max_running_timeout_in_seconds"
)

TOKEN_REFUSED = (
    "an inline token is not allowed: store the token in a Secret in the Datasource's namespace "
    "(kubectl create secret generic confluence-token --from-literal=token=...) and reference it with "
    "connector.config.tokenSecretRef: {name: confluence-token, key: token}"
)


def cql_filter_problem(cql: str) -> str | None:
    """Why a user's CQL filter could escape its parentheses, or None. Quotes and parentheses must balance."""
    depth, quote, escaped = 0, "", False
    for ch in cql:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return "connector.config.cql closes a parenthesis it did not open"
    if quote:
        return "connector.config.cql has an unterminated quoted value"
    if depth:
        return "connector.config.cql has an unclosed parenthesis"
    return None


class ConfluenceConfig(ApiModel):
    """Settings of the builtin `confluence` connector (Coco's field names)."""

    model_config = ConfigDict(
        **ApiModel.model_config,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("!has(self.token)", TOKEN_REFUSED, "FieldValueForbidden", ".token"),
                *(rule.schema() for rule in RULES),
            ]
        },
    )

    endpoint: str = Field(
        description=(
            "Base URL of the Confluence site: https://SITE.atlassian.net/wiki for Cloud, "
            "https://HOST[/context] for Data Center and Server."
        ),
        max_length=2048,
        pattern=URL_PATTERN,
    )
    auth_type: AuthType | None = Field(
        default=None,
        description="How to authenticate: api_token (Cloud classic API token: Basic against the site), "
        "scoped_api_token (Cloud scoped API token: Basic through Atlassian's API gateway), "
        "oauth2_client_credentials (Cloud service account: OAuth 2.0 through the gateway), personal_access_token "
        "(Data Center: Bearer), basic (Data Center: user name and password). Default: oauth2_client_credentials "
        "with oauthSecretRef, HTTP Basic with username, else personal_access_token.",
    )
    username: str | None = Field(
        default=None,
        description="HTTP Basic user: on Cloud the email of the account (or service account) that owns the API "
        "token; on Data Center the user name. Data Center: omit to use the token as a personal access token "
        "(Bearer).",
        max_length=256,
    )
    tokenSecretRef: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the Cloud API token (classic or scoped), the Data Center personal access "
        "token or the Data Center password. Not with OAuth 2.0 (oauthSecretRef).",
    )
    oauthSecretRef: OAuthSecretRef | None = Field(
        default=None,
        description="OAuth 2.0 client credentials of a Cloud service account: a Secret with keys client_id and "
        "client_secret. The operator gets access tokens from Atlassian's token endpoint and renews them.",
    )
    cloud_id: str | None = Field(
        default=None,
        description="The Cloud site's id for Atlassian's API gateway (scoped_api_token, oauth2_client_credentials). "
        "Default: read from the site's unauthenticated /_edge/tenant_info.",
        max_length=64,
        pattern=CLOUD_ID_PATTERN,
    )
    site_url: str | None = Field(
        default=None,
        description="Only when endpoint is the API gateway (https://api.atlassian.com/ex/confluence/ID/wiki): the "
        "site, https://SITE.atlassian.net/wiki, which links in documents open.",
        max_length=2048,
        pattern=URL_PATTERN,
    )
    token: str | None = Field(
        default=None, description="Not allowed: use tokenSecretRef. Listed only to refuse it with a clear message."
    )
    space: str = Field(
        description="Key of the Confluence space to index, e.g. DOCS (personal spaces: ~username).",
        min_length=1,
        max_length=255,
        pattern=SPACE_KEY_PATTERN,
    )
    enable_blogposts: bool = Field(default=False, description="Also index the space's blog posts.")
    enable_attachments: bool = Field(default=False, description="Also index the space's attachments.")
    enable_comments: bool = Field(
        default=False,
        description="Also index footer and inline comments (replies included) of the indexed pages and blog posts, "
        "each as its own document of type comment that links to the comment.",
    )
    enable_tree_items: bool = Field(
        default=False,
        description="Confluence Cloud: also index folders, whiteboards, databases and smart links as documents "
        "(title and type; they have no text). Pages below them have their titles in categories either way.",
    )
    exclude_labels: list[str] = Field(
        default_factory=list,
        description="Labels that keep an item out of the index: content with any of them is not indexed, and an "
        "item that gains one is removed on a later run. Comments and attachments follow their page.",
        max_length=MAX_EXCLUDE_LABELS,
        json_schema_extra={"items": {"type": "string", "pattern": LABEL_PATTERN, "maxLength": 255, "minLength": 1}},
    )
    spaces: list[str] = Field(
        default_factory=list,
        description="More space keys to index with the same settings (in addition to space).",
        max_length=100,
        json_schema_extra={"items": {"type": "string", "pattern": SPACE_KEY_PATTERN, "maxLength": 255}},
    )
    cql: str | None = Field(
        default=None,
        description="Extra CQL that narrows what is indexed, ANDed with the space and type, e.g. "
        "'label != \"no-index\"'. Balanced quotes and parentheses; no ORDER BY.",
        max_length=2000,
        json_schema_extra={"x-kubernetes-validations": [cel("!self.lowerAscii().contains('order by')", CQL_ORDER_BY)]},
    )
    caBundleSecretRef: SecretKeyRef | None = Field(
        default=None,
        description="Secret key with a PEM CA bundle for a Confluence with a private CA (added to the system "
        "trust store; TLS verification stays on).",
    )

    caBundleConfigMapRef: ConfigMapKeyRef | None = Field(
        default=None,
        description="ConfigMap key with a PEM CA bundle (e.g. one distributed by trust-manager); like "
        "caBundleSecretRef, added to the system trust store.",
    )

    def all_spaces(self) -> list[str]:
        return list(dict.fromkeys([self.space, *self.spaces]))

    @field_validator("exclude_labels")
    @classmethod
    def _plain_labels(cls, value: list[str]) -> list[str]:
        # Confluence stores labels in lower case; the items of the schema above, for what is validated without an
        # API server.
        out: list[str] = []
        for label in value:
            if not label or len(label) > 255 or not re.match(LABEL_PATTERN, label):
                raise ValueError(
                    f"connector.config.exclude_labels: {label!r} is not a Confluence label (no spaces or commas, "
                    "1 to 255 characters)"
                )
            if label.lower() not in out:
                out.append(label.lower())
        return out

    @field_validator("cql")
    @classmethod
    def _balanced_cql(cls, value: str | None) -> str | None:
        if value is not None:
            problem = cql_filter_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    # The CEL rules above, for what is validated without an API server (convert, `sync FILE`): same rule, same
    # message.
    @field_validator("cql")
    @classmethod
    def _no_order_by(cls, value: str | None) -> str | None:
        if value is not None and "order by" in value.lower():
            raise ValueError(CQL_ORDER_BY)
        return value

    @model_validator(mode="after")
    def _auth_rules(self) -> ConfluenceConfig:
        problems = auth_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def auth_mode(self) -> AuthType:
        """`auth_type`, or the mode what is set means (see `confluence_auth`)."""
        return effective_auth_type(self)


class ConnectorRef(ApiModel):
    id: str = Field(
        description="Name of the cluster-scoped Connector, e.g. confluence.",
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    config: ConfluenceConfig = Field(description="Connector settings.")


class SyncSpec(ApiModel):
    enabled: bool = Field(default=True, description="false suspends scheduled syncs; the index is kept.")
    interval: str = Field(
        default="5m",
        description="Time between the end of one run and the start of the next, as a Go duration "
        "(30s, 5m, 1h). At least 10s.",
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"!self.matches('{GO_DURATION_PATTERN}') || duration(self) >= duration('{MIN_INTERVAL}')",
                    INTERVAL_TOO_SHORT,
                )
            ]
        },
        pattern=GO_DURATION_PATTERN,
    )
    timeout: str | None = Field(
        default=None,
        description="Cancel a run that takes longer than this Go duration (default and upper bound: the operator's "
        f"max_running_timeout_in_seconds, 1200s). At most {MAX_TIMEOUT}.",
        max_length=64,
        pattern=GO_DURATION_PATTERN,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"!self.matches('{GO_DURATION_PATTERN}') || duration(self) <= duration('{MAX_TIMEOUT}')",
                    TIMEOUT_TOO_LONG,
                )
            ]
        },
    )
    allowMassDeletion: bool | None = Field(
        default=None,
        description="Let a run delete more documents than the operator's per-run cap (a fraction of the indexed "
        "documents), or all of them when Confluence lists nothing. Set it once you checked that the content "
        "really went away; leave it unset (false) otherwise.",
    )

    @field_validator("timeout")
    @classmethod
    def _at_most_max_timeout(cls, value: str | None) -> str | None:
        if value is not None and re.match(GO_DURATION_PATTERN, value):
            try:
                too_long = parse_duration(value) > parse_duration(MAX_TIMEOUT)
            except ValueError:  # too long for a timedelta
                too_long = True
            if too_long:
                raise ValueError(TIMEOUT_TOO_LONG)
        return value

    @field_validator("interval")
    @classmethod
    def _at_least_min_interval(cls, value: str) -> str:
        # As the CEL rule: only a value in Go syntax is compared (the pattern refuses the others).
        if re.match(GO_DURATION_PATTERN, value) and parse_duration(value) < parse_duration(MIN_INTERVAL):
            raise ValueError(INTERVAL_TOO_SHORT)
        return value


PermissionsMode = Literal["sync", "skipRestricted", "none"]


class PermissionsSpec(ApiModel):
    """Who may find a document: Confluence's read permissions, carried into the index (README, Permissions)."""

    mode: PermissionsMode = Field(
        default="sync",
        description="sync (default): every document carries who may read it in Confluence (the space's view "
        "permission and the read restrictions on the item and its ancestors); a search with a tenant token "
        "(coco-operator search-token) finds only what that person may read. skipRestricted: items with any read "
        "restriction (on them or an ancestor) are not indexed and count as skipped; the rest carry the space's "
        "readers. none: every document is found by everyone who may search the index.",
    )


class DatasourceSpec(ApiModel):
    name: str = Field(description="Display name, e.g. 'My Confluence Wiki'.", min_length=1, max_length=256)
    type: Literal["connector"] = Field(default="connector", description="Datasource type (Coco: connector).")
    enabled: bool = Field(default=True, description="false disables the Datasource: no syncs run.")
    connector: ConnectorRef = Field(description="The Connector this Datasource uses and its settings.")
    sync: SyncSpec = Field(default_factory=SyncSpec, description="When to sync.")
    index: str | None = Field(
        default=None,
        description="Meilisearch index for this Datasource's documents (default: the operator's index).",
        min_length=1,
        max_length=400,
        pattern=INDEX_UID_PATTERN,
    )
    enrichment: Enrichment = None
    embedders: Embedders = None
    permissions: PermissionsSpec = Field(
        default_factory=PermissionsSpec,
        description="Which Confluence read permissions the index keeps, and so who finds each document.",
    )

    @field_validator("embedders", mode="before")
    @classmethod
    def _profiles_only(cls, value: object) -> object:
        return refuse_free_text_embedders(value)


class SyncCounts(ApiModel):
    pages: int = Field(default=0, description="Pages indexed.")
    blogposts: int = Field(default=0, description="Blog posts indexed.")
    attachments: int = Field(default=0, description="Attachments indexed.")
    comments: int = Field(default=0, description="Comments indexed (enable_comments).")
    treeItems: int = Field(
        default=0, description="Folders, whiteboards, databases and smart links indexed (enable_tree_items)."
    )
    deleted: int = Field(default=0, description="Documents removed from the index.")
    skipped: int = Field(default=0, description="Items skipped (e.g. attachments too large).")
    restricted: int = Field(
        default=0,
        description="Items with a read restriction on them or an ancestor (permissions.mode sync: indexed for "
        "the people it names; skipRestricted: not indexed, also counted as skipped).",
    )
    dropped: int = Field(default=0, description="Documents left out by spec.enrichment (exclude or a webhook).")
    enriched: int = Field(default=0, description="Documents changed by spec.enrichment (set or a webhook).")
    chunked: int = Field(default=0, description="Documents split into more than one chunk by spec.enrichment.")


class SyncProgress(ApiModel):
    phase: str = Field(description="Connecting, Listing, Indexing or Pruning.")
    items: int = Field(default=0, description="Items processed so far in this run.")
    updated: Timestamp | None = Field(default=None, description="When this progress was written.")


class RunRecord(ApiModel):
    startTime: Timestamp = Field(description="Start of the run.")
    duration: str = Field(description="How long it took.")
    result: Literal["Succeeded", "Failed"] = Field(description="Outcome.")
    reason: str = Field(description="Reason of the outcome (e.g. Succeeded, AuthenticationFailed).")
    counts: SyncCounts | None = Field(default=None, description="What the run indexed and deleted.")


class DatasourceStatus(ApiModel):
    observedGeneration: int | None = Field(default=None, description="Generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready always; Reconciling and Stalled while true (kstatus)."
    )
    lastSyncStartTime: Timestamp | None = Field(default=None, description="Start of the last run.")
    lastSyncTime: Timestamp | None = Field(default=None, description="End of the last run, successful or not.")
    lastSuccessfulSyncTime: Timestamp | None = Field(default=None, description="End of the last successful run.")
    nextSyncTime: Timestamp | None = Field(default=None, description="When the next run is due.")
    lastSyncDuration: str | None = Field(default=None, description="How long the last run took.")
    lastSyncResult: Literal["Succeeded", "Failed"] | None = Field(default=None, description="Last run's outcome.")
    documents: int | None = Field(default=None, description="Documents of this Datasource in the index.")
    lastSync: SyncCounts | None = Field(default=None, description="What the last run indexed and deleted.")
    lastError: str | None = Field(default=None, description="The last run's error, in plain words.")
    consecutiveFailures: int | None = Field(default=None, description="Failed runs since the last success.")
    index: str | None = Field(default=None, description="Meilisearch index the documents are in.")
    watermark: Timestamp | None = Field(
        default=None, description="Start of the last successful run; the next run fetches what changed since."
    )
    watermarkConfig: str | None = Field(default=None, description="Fingerprint of the config the watermark is for.")
    lastPruneTime: Timestamp | None = Field(
        default=None,
        description="Start of the last run that listed every item and removed what Confluence no longer has.",
    )
    sourceItems: int | None = Field(
        default=None,
        description="Items in scope at the last run, as Confluence counts them; a change between runs that new "
        "items do not explain makes the next run list every item to find deletions.",
    )
    lastSyncRunId: str | None = Field(default=None, description="Id of the last run a sync Job reported (Job mode).")
    lastHandledSyncRequest: str | None = Field(
        default=None, description="Value of the coco.rs/sync-requested-at annotation last handled."
    )
    skippedItems: list[str] | None = Field(
        default=None,
        description="Items the last run could not read (e.g. a broken or too large attachment), with why; at most 20.",
        max_length=20,
    )
    enrichmentWarnings: list[str] | None = Field(
        default=None,
        description="Processors that failed with onFailure: Skip in the last run (documents indexed unenriched).",
        max_length=20,
    )
    progress: SyncProgress | None = Field(default=None, description="Progress of the run in progress.")
    history: list[RunRecord] | None = Field(default=None, description="The last 5 runs, newest first.", max_length=5)


class Datasource(ApiModel):
    """Kind `Datasource`."""

    spec: DatasourceSpec
    status: DatasourceStatus | None = None
