"""What a run is asked to do, and what the last run left in status that this one may build on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
from coco_operator.confluence.auth import OAuthClient
from coco_operator.confluence.items import TREE_TYPES
from coco_operator.settings import Settings
from coco_operator.sync.plan import Listing

Progress = Callable[[str, int], None]  # phase, items processed so far
# How the run authenticates changes nothing it indexes: a new credential (or way of using it) keeps the watermark.
CREDENTIAL_FIELDS = {
    "tokenSecretRef",
    "token",
    "username",
    "auth_type",
    "oauthSecretRef",
    "cloud_id",
    "site_url",
}


@dataclass(frozen=True)
class SyncRequest:
    datasource_id: str  # namespace/name
    spec: DatasourceSpec
    token: str | None  # API token, personal access token or password; None with OAuth (`oauth`)
    index: str
    watermark: datetime | None = None  # start of the last successful run with the same config
    listing: Listing = field(default_factory=Listing)  # the last complete listing and count, same config
    ca_pem: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the Datasource's metadata.labels
    enrichment_tokens: Mapping[int, str] = field(default_factory=dict)  # webhook processor index -> token
    embedder_keys: Mapping[str, str] = field(default_factory=dict)  # embedder name -> API key
    oauth: OAuthClient | None = None  # a Cloud service account's client credentials (oauthSecretRef)
    # Meilisearch `embedders` for the index, from the administrator's profiles (`tenancy.embedder_settings`).
    embedders: Mapping[str, Any] | None = None
    previous_index: str | None = None  # the index the last successful run wrote into, if another one


def index_for(spec: DatasourceSpec, settings: Settings) -> str:
    return spec.index or settings.meili_index


def content_types(spec: DatasourceSpec) -> list[str]:
    """Types the index phase fetches: pages, and blog posts and Cloud's tree items when enabled (the source leaves
    tree items out on Data Center, which has none)."""
    config = spec.connector.config
    types = ["page", "blogpost"] if config.enable_blogposts else ["page"]
    if config.enable_tree_items:
        types += TREE_TYPES
    return types


def window_types(spec: DatasourceSpec) -> list[str]:
    """Types of the changed window: what the index phase fetches, and comments when enabled."""
    return [*content_types(spec), *(["comment"] if spec.connector.config.enable_comments else [])]


def counted_types(spec: DatasourceSpec) -> list[str]:
    """What a run counts in the scope (and its complete listings must account for): the changed window's types, and
    attachments when they are indexed."""
    return window_types(spec) + (["attachment"] if spec.connector.config.enable_attachments else [])


def config_fingerprint(spec: DatasourceSpec, index: str) -> str:
    """What makes a watermark valid: a change of space, scope or index needs a full run."""
    cfg = spec.connector.config.model_dump(mode="json", exclude=CREDENTIAL_FIELDS)
    # Who may read documents is part of them: a change of permissions.mode rewrites every one (a full run).
    payload: dict[str, Any] = {"config": cfg, "index": index, "permissions": spec.permissions.mode}
    # Only when set, so that watermarks of Datasources without a pipeline stay valid.
    if spec.enrichment:
        payload["enrichment"] = [p.model_dump(mode="json", exclude_none=True) for p in spec.enrichment]
    raw = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _same_config(status: DatasourceStatus, spec: DatasourceSpec, index: str) -> bool:
    """Whether what the last run left in status (watermark, listing) was written for this config."""
    return status.watermarkConfig == config_fingerprint(spec, index)


def prior_watermark(status: DatasourceStatus, spec: DatasourceSpec, index: str) -> datetime | None:
    """The watermark in status, if it was written for this config; else None (the next run is a full one)."""
    return status.watermark if _same_config(status, spec, index) else None


def prior_listing(status: DatasourceStatus, spec: DatasourceSpec, index: str) -> Listing:
    """The last complete listing and count in status, if written for this config (as the watermark)."""
    if not _same_config(status, spec, index):
        return Listing()
    return Listing(last_prune=status.lastPruneTime, total=status.sourceItems)
