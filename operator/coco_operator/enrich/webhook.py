"""`webhook`: POST a batch as JSON to an HTTP service and keep the documents it returns.

Request body: {"datasource": {"id", "name"}, "processor": {"index", "name"}, "documents": [...]}. The answer is
{"documents": [...]} or a bare list. The service may change and add fields and may leave documents out (they count
as dropped), but every document it returns must be one it was sent, with the same id, source, type and
metadata.content_id/version (the operator relies on those for deletions and incremental runs).

Timeouts, connection errors, 429 and 5xx answers are retried with exponential backoff (Retry-After is honoured up to
the backoff cap); other answers fail at once. The bearer token never appears in a message. Every call goes through the
egress policy (EnrichContext.egress): the URL and the addresses it connects to are checked, a refusal fails the run
with reason EgressDenied whatever onFailure says; each attempt has a total deadline (timeoutSeconds) and the answer a
cap on decoded bytes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from coco_operator.api.enrichment import Processor, display_url
from coco_operator.egress import EgressPolicy
from coco_operator.egress_http import parse_json, read_bounded
from coco_operator.enrich.base import UNCHECKED_ADDRESSES, Document, EnrichContext, ProcessorError, StepResult, doc_id
from coco_operator.errors import EgressDeniedError, MalformedAnswerError, ResponseTooLargeError
from coco_operator.secret_values import clean_secret_value, transport_problem

PROTECTED = ("id", "source", "type")
PROTECTED_METADATA = ("content_id", "version")
SNIPPET = 200
ERROR_BODY = 16 * 1024


class _Retry(Exception):
    def __init__(self, cause: str, delay: float | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.delay = delay


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:SNIPPET] + ("..." if len(text) > SNIPPET else "")


def _retry_after(value: str | None, cap: float) -> float | None:
    try:
        return min(max(float(value), 0.0), cap) if value else None
    except ValueError:
        return None  # an HTTP date: use the normal backoff


async def _post(
    client: httpx.AsyncClient, url: str, payload: bytes, headers: dict[str, str], seconds: float, limit: int
) -> tuple[int, bytes, str | None]:
    async with client.stream("POST", url, content=payload, headers=headers, timeout=seconds) as resp:
        failed = resp.status_code >= 300
        # An error answer only feeds a message; a good one is read within the cap on decoded bytes.
        body = await read_bounded(resp, ERROR_BODY if failed else limit, what="its answer", truncate=failed)
        return resp.status_code, body, resp.headers.get("retry-after")


async def _attempt(
    client: httpx.AsyncClient, url: str, payload: bytes, headers: dict[str, str], seconds: float, ctx: EnrichContext
) -> Any:
    """One POST; returns the parsed JSON answer, raises _Retry or ProcessorError (EgressDeniedError passes)."""
    try:
        async with asyncio.timeout(seconds):  # the whole attempt, however slowly the answer trickles in
            status, body, retry_after = await _post(client, url, payload, headers, seconds, ctx.max_response_bytes)
    except (TimeoutError, httpx.TimeoutException):
        raise _Retry(f"no answer within {seconds:g}s") from None
    except httpx.TransportError as exc:
        # Never the exception's text: it can quote a header value (a token with a line break).
        raise _Retry(f"could not reach it ({transport_problem(exc)})") from None
    except ResponseTooLargeError:
        raise ProcessorError(f"its answer is larger than {ctx.max_response_bytes} bytes") from None
    except MalformedAnswerError as exc:
        raise ProcessorError(exc.message) from None
    if status == 429 or status >= 500:
        raise _Retry(f"it answered HTTP {status}: {_snippet(body)}", _retry_after(retry_after, ctx.backoff_max_s))
    if status in (401, 403):
        raise ProcessorError(
            f"it refused the request with HTTP {status}: {_snippet(body)}",
            hint="check the token in the Secret named by webhook.tokenSecretRef",
            retryable=False,
        )
    if not 200 <= status < 300:
        raise ProcessorError(f"it answered HTTP {status}: {_snippet(body)}")
    try:
        # The standard parser keeps integers beyond 64 bits; the value cap bounds its time.
        return parse_json(body, what="its answer", loads=json.loads)
    except ResponseTooLargeError as exc:
        raise ProcessorError(exc.message) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProcessorError(f"its answer is not valid JSON ({exc}): {_snippet(body)}") from None


def _returned_documents(answer: Any) -> list[Any]:
    if isinstance(answer, dict) and isinstance(answer.get("documents"), list):
        return list(answer["documents"])
    if isinstance(answer, list):
        return answer
    raise ProcessorError(
        f'its answer must be {{"documents": [...]}} or a list of documents, not a JSON {type(answer).__name__}'
    )


def _check(returned: list[Any], sent: dict[str, Document]) -> dict[str, Document]:
    """Returned documents by id, after checking the webhook only changed what it may."""
    rule = "a webhook may change fields and leave documents out, but not add documents or change ids"
    out: dict[str, Document] = {}
    for n, doc in enumerate(returned, start=1):
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise ProcessorError(f"document {n} of its answer is not an object with a string id")
        did = doc["id"]
        if did not in sent:
            raise ProcessorError(f"document {n} of its answer has id {did!r}, which was not sent: {rule}")
        if did in out:
            raise ProcessorError(f"its answer has document {did!r} more than once")
        original = sent[did]
        for key in PROTECTED:
            if doc.get(key) != original.get(key):
                raise ProcessorError(f"it changed {key} of document {did!r}; {', '.join(PROTECTED)} must stay")
        before, after = original.get("metadata"), doc.get("metadata")
        if isinstance(before, dict):
            kept = isinstance(after, dict) and all(after.get(k) == before.get(k) for k in PROTECTED_METADATA)
            if not kept:
                raise ProcessorError(
                    f"it changed metadata.{' or metadata.'.join(PROTECTED_METADATA)} of document {did!r}; "
                    "they must stay"
                )
        out[did] = doc
    return out


def _headers(processor: Processor, index: int, ctx: EnrichContext) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    ref = processor.webhook.tokenSecretRef if processor.webhook else None
    if ref is not None:
        token = ctx.tokens.get(index)
        if not token:
            raise ProcessorError(
                f"the token from Secret {ref.name} (key {ref.key}) was not provided",
                hint="check that the Secret exists in the Datasource's namespace and has that key",
                retryable=False,
            )
        headers["Authorization"] = f"Bearer {clean_secret_value(token, secret=ref.name, key=ref.key)}"
    return headers


async def run(processor: Processor, index: int, docs: list[Document], ctx: EnrichContext) -> StepResult:
    spec = processor.webhook
    assert spec is not None
    url = display_url(spec.url)
    hint = (
        f'check that the service at {url} is up and answers {{"documents": [...]}}, '
        "or set onFailure: Skip to index without it"
    )
    policy = ctx.egress or UNCHECKED_ADDRESSES
    try:
        policy.check_start(spec.url)
        answer = await _call(processor, index, docs, ctx, policy, hint)
    except EgressDeniedError as exc:  # the administrator's rule, not the service's failure: no Skip
        raise EgressDeniedError(f"{processor.label(index)} failed: {exc.message}") from None
    sent = {doc_id(d): d for d in docs}
    try:
        returned = _check(_returned_documents(answer), sent)
    except ProcessorError as exc:
        exc.hint = hint
        raise
    out = StepResult(documents=[])
    for did, original in sent.items():
        new = returned.get(did)
        if new is None:
            out.dropped_ids.append(did)
            continue
        if new != original:
            out.enriched_ids.add(did)
        out.documents.append(new)
    return out


async def _call(
    processor: Processor, index: int, docs: list[Document], ctx: EnrichContext, policy: EgressPolicy, hint: str
) -> Any:
    """POST the batch with retries; the parsed answer."""
    spec = processor.webhook
    assert spec is not None
    headers = _headers(processor, index, ctx)
    body = {
        "datasource": {"id": ctx.datasource_id, "name": ctx.datasource_name},
        "processor": {"index": index, "name": processor.name},
        "documents": docs,
    }
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    attempts = spec.retries + 1
    async with ctx.client_factory(policy) as client:
        for attempt in range(attempts):
            try:
                return await _attempt(client, spec.url, payload, headers, float(spec.timeoutSeconds), ctx)
            except _Retry as retry:
                if attempt + 1 == attempts:
                    tries = f" ({attempts} attempts)" if attempts > 1 else ""
                    raise ProcessorError(f"{retry.cause}{tries}", hint=hint) from None
                delay = retry.delay
                if delay is None:
                    delay = min(ctx.backoff_base_s * 2**attempt, ctx.backoff_max_s)
                await asyncio.sleep(delay)
            except ProcessorError as exc:
                if not exc.hint:
                    exc.hint = hint
                raise
    raise ProcessorError("no attempt was made", hint=hint)  # unreachable: retries >= 0
