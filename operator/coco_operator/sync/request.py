"""What a run is asked to do, and what the last run left in status that this one may build on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
from coco_operator.settings import Settings
from coco_operator.sync.plan import Listing

Progress = Callable[[str, int], None]  # phase, items processed so far


@dataclass(frozen=True)
class SyncRequest:
    datasource_id: str  # namespace/name
    spec: DatasourceSpec
    token: str
    index: str
    watermark: datetime | None = None  # start of the last successful run with the same config
    listing: Listing = field(default_factory=Listing)  # the last complete listing and count, same config
    ca_pem: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the Datasource's metadata.labels
    enrichment_tokens: Mapping[int, str] = field(default_factory=dict)  # webhook processor index -> token
    embedder_keys: Mapping[str, str] = field(default_factory=dict)  # embedder name -> API key


def index_for(spec: DatasourceSpec, settings: Settings) -> str:
    return spec.index or settings.meili_index


def content_types(spec: DatasourceSpec) -> list[str]:
    return ["page", "blogpost"] if spec.connector.config.enable_blogposts else ["page"]


def config_fingerprint(spec: DatasourceSpec, index: str) -> str:
    """What makes a watermark valid: a change of space, scope or index needs a full run."""
    cfg = spec.connector.config.model_dump(mode="json", exclude={"tokenSecretRef", "token", "username"})
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
