"""One sync run, as named phases over one run state: plan -> index -> attachments -> prune -> result (`run.py`)."""

from coco_operator.sync.endpoint import endpoint_problem
from coco_operator.sync.moved import leave_previous_index, moved_from
from coco_operator.sync.plan import Listing
from coco_operator.sync.request import (
    Progress,
    SyncRequest,
    config_fingerprint,
    index_for,
    prior_listing,
    prior_watermark,
)
from coco_operator.sync.result import SyncResult
from coco_operator.sync.run import PHASES, run_sync

__all__ = [
    "PHASES",
    "Listing",
    "Progress",
    "SyncRequest",
    "SyncResult",
    "config_fingerprint",
    "endpoint_problem",
    "index_for",
    "leave_previous_index",
    "moved_from",
    "prior_listing",
    "prior_watermark",
    "run_sync",
]
