"""Prometheus metrics. One registry for the process; the operator serves it on `metrics_port`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RUNS = Counter(
    "coco_sync_runs_total",
    "Sync runs finished, by result and reason.",
    ["namespace", "datasource", "result", "reason"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "coco_sync_run_duration_seconds",
    "Duration of sync runs.",
    ["namespace", "datasource"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600),
    registry=REGISTRY,
)
DOCUMENTS_INDEXED = Counter(
    "coco_documents_indexed_total",
    "Documents written to Meilisearch.",
    ["namespace", "datasource", "type"],
    registry=REGISTRY,
)
DOCUMENTS_DELETED = Counter(
    "coco_documents_deleted_total",
    "Documents removed from Meilisearch.",
    ["namespace", "datasource"],
    registry=REGISTRY,
)
CONFLUENCE_REQUESTS = Counter(
    "coco_confluence_requests_total",
    "Requests sent to Confluence, by HTTP status (0: no answer).",
    ["code"],
    registry=REGISTRY,
)
THROTTLE_WAITS = Counter(
    "coco_confluence_throttle_wait_seconds_total",
    "Seconds spent waiting on Confluence rate limits and retries.",
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("coco_sync_queue_depth", "Runs due but waiting for a free slot.", registry=REGISTRY)
RUNS_IN_PROGRESS = Gauge("coco_sync_runs_in_progress", "Runs in progress.", registry=REGISTRY)


def observe_confluence_response(method: str, code: int) -> None:
    CONFLUENCE_REQUESTS.labels(code=str(code)).inc()


def serve(port: int) -> None:
    if port:
        start_http_server(port, registry=REGISTRY)
