"""Operator settings, read from the environment (the Helm chart sets them from values).

Dispatcher settings keep Coco's `connector_dispatcher` names and defaults:
`max_running_timeout_in_seconds` (1200) and `retry_delay_in_ms` (10000).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COCO_", extra="ignore", populate_by_name=True)

    # Meilisearch (the sink)
    meili_url: str = Field(
        default="http://127.0.0.1:7700",
        description="Meilisearch base URL.",
        validation_alias=AliasChoices("COCO_MEILI_URL", "MEILI_URL"),
    )
    meili_api_key: str | None = Field(
        default=None,
        description="Meilisearch API key (master or an admin key); the chart reads it from a Secret.",
        validation_alias=AliasChoices("COCO_MEILI_API_KEY", "MEILI_MASTER_KEY"),
    )
    meili_index: str = Field(default="coco_documents", description="Default index for documents.")
    # Query side (README "Permissions"): tenant tokens are signed with a search-only key, never the master key.
    meili_search_key: str | None = Field(
        default=None,
        description="A Meilisearch API key whose only action is search: signs tenant tokens (coco-operator "
        "search-token). Unset: the command uses (or creates once) the key named 'coco-operator search'.",
    )
    meili_search_key_uid: str | None = Field(
        default=None, description="The uid of meili_search_key (looked up with the operator's key when unset)."
    )
    meili_batch_size: int = Field(default=500, ge=1, description="Documents per Meilisearch write.")
    meili_batch_bytes: int = Field(
        default=20_000_000, ge=1_000, description="Max JSON bytes per write (Meilisearch refuses > 100 MB)."
    )
    meili_task_timeout_seconds: float = Field(default=300, gt=0, description="Max wait for one task.")

    # Dispatcher (Coco's connector_dispatcher)
    max_running_timeout_in_seconds: int = Field(default=1200, ge=10, description="Cancel a run after this long.")
    retry_delay_in_ms: int = Field(default=10_000, ge=100, description="First retry delay after a failed run.")
    retry_max_delay_seconds: int = Field(default=600, ge=1, description="Cap of the exponential retry backoff.")
    max_concurrent_runs: int = Field(default=4, ge=1, description="Runs in progress at once, across Datasources.")
    jitter_ratio: float = Field(
        default=0.05, ge=0, le=0.5, description="Random spread of the interval so restarts don't stampede."
    )

    progress_interval_seconds: float = Field(
        default=5, ge=0.5, description="How often a running sync writes its progress into status."
    )

    builtin_connector: bool = Field(
        default=False,
        description="Create the builtin `confluence` Connector at startup when it is missing (the Helm chart's "
        "builtinConnector). Never updated or deleted afterwards.",
    )

    # Job mode (scale-out): each run as a batch/v1 Job running the same image
    run_mode: Literal["InProcess", "Job"] = Field(default="InProcess", description="Where runs execute.")
    job_image: str = Field(default="ghcr.io/coco-operator/coco-operator:0.1.0", description="Image of sync Jobs.")
    job_service_account: str = Field(
        default="coco-operator-sync",
        description="ServiceAccount of sync Jobs, in each Datasource's namespace: get datasources, patch "
        "datasources/status.",
    )
    job_shared_index: Literal["InProcess", "Refuse"] = Field(
        default="InProcess",
        description="Job mode and an index the namespace does not own (a shared or granted one), which the "
        "namespace's own Meilisearch key cannot reach: run in the operator's process, or refuse with "
        "JobModeNeedsOwnIndex.",
    )
    job_meili_key_secret_name: str = Field(
        default="coco-operator-meili-key",
        description="Name of the operator-managed Secret that holds a namespace's own Meilisearch key (Job mode).",
    )
    manage_index_settings: bool = Field(
        default=True,
        description="Create the index and bring its settings and embedders up to date before writing. Sync Jobs "
        "run with false: the operator prepared the index, their key may only write documents.",
    )
    job_ttl_seconds: int = Field(default=3600, ge=0, description="Finished Jobs are removed after this long.")
    job_cpu_request: str = Field(default="100m", description="CPU request of sync Jobs.")
    job_memory_limit: str = Field(default="512Mi", description="Memory request and limit of sync Jobs.")
    job_poll_seconds: float = Field(default=2, gt=0, description="How often the operator checks a running Job.")

    # Confluence (the source)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Confluence hosts Datasources may point at (globs like *.atlassian.net; comma-separated in "
        "the environment). Empty allows any host. The defence against server-side request forgery: without it a "
        "namespace user can make the operator fetch from internal addresses.",
    )
    allow_http: bool = Field(
        default=False, description="Allow plain http:// Confluence endpoints (tokens would travel unencrypted)."
    )
    # Egress policy (docs/security.md, point 1): what the operator may reach for a Datasource.
    allow_private_networks: bool = Field(
        default=False,
        description="Let Confluence endpoints, their links and webhooks reach loopback, private (RFC 1918, IPv6 ULA), "
        "link-local and CGNAT addresses. Cloud metadata, multicast and unspecified addresses stay refused.",
    )
    allowed_cidrs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks the operator may reach whatever their kind, e.g. the Service CIDR for in-cluster "
        "webhooks and Data Center sites (comma-separated in the environment).",
    )
    link_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["api.media.atlassian.com"],
        description="Hosts besides the endpoint's own that attachment downloads and their redirects may reach "
        "(globs; Confluence Cloud redirects downloads to api.media.atlassian.com); never sent credentials.",
    )
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts enrichment webhooks may call (globs, comma-separated in the environment). Empty allows "
        "any host that passes the address rules.",
    )
    http_request_deadline_seconds: float = Field(
        default=120,
        gt=0,
        description="Total time one Confluence or webhook request may take, however slowly the server answers "
        "(the per-read timeout is http_timeout_seconds).",
    )
    confluence_max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024 * 1024,
        description="Largest Confluence JSON answer, decoded; a larger one fails the request (a batch of bodies is "
        "split and fetched again).",
    )
    confluence_gateway_url: str = Field(
        default="https://api.atlassian.com",
        description="Atlassian's API gateway: scoped API tokens and OAuth 2.0 reach Confluence Cloud only through "
        "{this}/ex/confluence/{cloudId}/wiki. An operator setting (never a tenant's), so the endpoint host list does "
        "not apply to it; the address rules do.",
        pattern=r"^https?://[^\s/?#]+$",
    )
    confluence_auth_url: str = Field(
        default="https://auth.atlassian.com",
        description="Atlassian's OAuth 2.0 authorization server; access tokens come from {this}/oauth/token.",
        pattern=r"^https?://[^\s/?#]+$",
    )
    http_timeout_seconds: float = Field(default=30, gt=0, description="Timeout of one Confluence request.")
    confluence_concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Concurrent Confluence requests per run (429 answers slow a run down by their Retry-After).",
    )
    confluence_max_retry_seconds: float = Field(
        default=300, gt=0, description="Give up after retrying one request for this long."
    )
    incremental_overlap_seconds: int = Field(
        default=12 * 3600 + 300,
        ge=60,
        description="How far before the watermark an incremental run looks: CQL dates are minute-granular and in "
        "the site's time zone (up to 12h behind UTC), so the window is widened; versions filter the extra hits.",
    )
    prune_interval_seconds: int = Field(
        default=3600,
        ge=0,
        description="An incremental run lists every id to find deletions at least this often (0: every run); "
        "in between a count of the scope tells whether anything left.",
    )
    text_workers: int = Field(
        default=2,
        ge=0,
        le=16,
        description="Processes per large run (500+ pages to fetch) that turn pages into text while the run keeps "
        "downloading; 0: convert in the run's own process.",
    )
    extraction_timeout_seconds: float = Field(
        default=30, gt=0, description="Max time (wall clock and CPU) to extract one attachment; then it is skipped."
    )
    extraction_workers: int = Field(
        default=2, ge=1, le=16, description="Processes that extract attachment text, shared by all runs."
    )
    extraction_memory_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=128 * 1024 * 1024,
        description="Address-space limit of each extraction process; an attachment that needs more is skipped.",
    )
    text_worker_memory_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=64 * 1024 * 1024,
        description="Address-space limit of each text conversion process; a page that needs more is indexed by "
        "title and metadata only.",
    )
    text_conversion_timeout_seconds: float = Field(
        default=90, gt=0, description="Max time (wall clock; CPU: two thirds of it) to convert one batch of pages."
    )
    attachment_max_bytes: int = Field(default=10_000_000, ge=0, description="Larger attachments: metadata only.")

    # Tenancy (docs/security.md, points 2 and 5): which indexes a namespace may write, embedders, deletions.
    shared_indexes: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Indexes every namespace may write documents into (comma-separated in the environment); "
        "default: the operator's default index (meili_index). Their settings come from the operator only.",
    )
    index_grants: dict[str, list[str]] = Field(
        default_factory=dict,
        description="More indexes per namespace: namespace -> index names or prefix* patterns (JSON in the "
        'environment, e.g. {"team-a": ["handbook", "archive_*"]}).',
    )
    embedder_profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Embedders Datasources may name in spec.embedders: profile name -> Meilisearch embedder "
        "settings (JSON in the environment). An `apiKeyEnv` entry names an environment variable of the operator "
        "holding the key (the chart sets it from the operator's own Secret).",
    )
    max_deletions_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="A run deletes at most this fraction of the Datasource's indexed documents (or "
        "max_deletions_min, whichever is larger); more needs spec.sync.allowMassDeletion.",
    )
    max_deletions_min: int = Field(
        default=50, ge=0, description="Deletions a run may always make, whatever the fraction allows."
    )

    # Operator
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch (comma-separated in the environment; globs like team-* allowed); "
        "empty means all (cluster-wide).",
    )
    metrics_port: int = Field(default=8000, ge=0, description="Prometheus metrics port (0 disables).")
    health_port: int = Field(default=8080, ge=0, description="Liveness endpoint port (0 disables).")
    log_format: Literal["text", "json"] = Field(default="text", description="Log line format.")
    log_level: str = Field(default="INFO", description="Log level.")

    @field_validator(
        "namespaces",
        "allowed_hosts",
        "allowed_cidrs",
        "link_allowed_hosts",
        "webhook_allowed_hosts",
        "shared_indexes",
        mode="before",
    )
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("index_grants", "embedder_profiles", mode="before")
    @classmethod
    def _json_objects(cls, value: object) -> object:
        """JSON text as the environment gives it (and as a Job's forwarded settings carry it)."""
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"allowed_cidrs: {cidr!r} is not a network like 10.96.0.0/12 ({exc})") from None
        return value

    @property
    def shared_index_names(self) -> list[str]:
        """The shared indexes; unset: the operator's default index."""
        return [self.meili_index] if self.shared_indexes is None else list(self.shared_indexes)

    @property
    def retry_delay_seconds(self) -> float:
        return self.retry_delay_in_ms / 1000


def load_settings() -> Settings:
    return Settings()
