"""Types shared by the pipeline and its processors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from coco_operator.egress import EgressPolicy
from coco_operator.egress_http import ACCEPT_ENCODING, GuardedTransport

Document = dict[str, Any]


# Without the operator's settings (EnrichContext.egress unset) addresses are not checked; the URL rules still apply.
UNCHECKED_ADDRESSES = EgressPolicy("the webhook", addresses=None, link_hosts=(), allow_http=True)


def default_client(policy: EgressPolicy) -> httpx.AsyncClient:
    """A client whose connections go only to addresses `policy` allows (checked when connecting).

    No redirects: a webhook that moved should be pointed at its new address, and the token stays where it was sent.
    """
    return httpx.AsyncClient(
        follow_redirects=False,
        headers={"User-Agent": "coco-operator", "Accept-Encoding": ACCEPT_ENCODING},
        transport=GuardedTransport(policy),
    )


@dataclass(frozen=True)
class EnrichContext:
    """What processors need besides the documents; built by the caller once per run."""

    datasource_id: str = ""  # namespace/name
    datasource_name: str = ""  # spec.name
    labels: Mapping[str, str] = field(default_factory=dict)  # the Datasource's metadata.labels
    tokens: Mapping[int, str] = field(default_factory=dict)  # processor index -> resolved webhook bearer token
    egress: EgressPolicy | None = None  # the operator's webhook policy (egress.webhook_policy)
    client_factory: Callable[[EgressPolicy], httpx.AsyncClient] = default_client
    backoff_base_s: float = 0.5  # first webhook retry delay; doubles per attempt
    backoff_max_s: float = 10.0
    max_response_bytes: int = 64 * 1024 * 1024


class ProcessorError(Exception):
    """A processor could not do its work. `cause` and `hint` never contain a secret."""

    def __init__(self, cause: str, *, hint: str = "", retryable: bool = True) -> None:
        super().__init__(cause)
        self.cause = cause
        self.hint = hint
        self.retryable = retryable


@dataclass
class StepResult:
    """What one processor did to a batch."""

    documents: list[Document]
    dropped_ids: list[str] = field(default_factory=list)
    enriched_ids: set[str] = field(default_factory=set)
    chunked_ids: set[str] = field(default_factory=set)


def doc_id(doc: Mapping[str, Any]) -> str:
    return str(doc.get("id", ""))


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text
