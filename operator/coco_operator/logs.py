"""Logging: kopf's text or JSON format, with the Datasource a line is about in every line logged for it."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

# Set by each Datasource worker; inherited by its tasks and by `asyncio.to_thread` calls.
CURRENT_OBJECT: ContextVar[dict[str, Any] | None] = ContextVar("coco_current_object", default=None)


class ObjectContextFilter(logging.Filter):
    """Attach the current object reference, the way kopf's own per-object loggers do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "k8s_ref"):
            ref = CURRENT_OBJECT.get()
            if ref is not None:
                record.k8s_ref = ref
        return True


def datasource_ref(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "coco.rs/v1alpha1", "kind": "Datasource", "namespace": namespace, "name": name}


def setup(log_format: str, verbose: bool) -> None:
    import kopf  # only the operator configures logging through kopf; the CLI and Job pods need not load it

    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=True,
        log_refkey="object",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(ObjectContextFilter())
    # Request logs of the HTTP clients are noise at INFO and could carry URLs with query strings.
    for name in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
