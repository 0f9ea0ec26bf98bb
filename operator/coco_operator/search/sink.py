"""Meilisearch sink: index settings, batched writes, task checks, deletions.

The official client is blocking, so every call runs in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import meilisearch
import orjson
import requests
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError

from coco_operator.errors import IndexingError, SearchBackendError, SecretError
from coco_operator.reasons import Reason
from coco_operator.secret_values import clean_secret_value, redact

log = logging.getLogger(__name__)
# POST .../documents/delete-batch is current Meilisearch API; the client deprecated only its `ids` argument (in
# favour of filters, which would need `id` filterable). Its warning says nothing to the operator's users.
warnings.filterwarnings("ignore", message="The use of ids is depreciated", category=DeprecationWarning)

PRIMARY_KEY = "id"
DATASOURCE_FIELD = "source.id"
INDEX_SETTINGS: dict[str, Any] = {
    "searchableAttributes": ["title", "content", "tags", "categories", "category", "metadata.space_name"],
    "filterableAttributes": [
        DATASOURCE_FIELD,
        "source.type",
        "type",
        "category",
        "tags",
        "metadata.space_key",
        "metadata.content_id",
        # Who may read a document (permissions/readers.py): what a tenant token's filter names.
        "permissions.c0",
        "permissions.c1",
        "permissions.c2",
        "permissions.c3",
        "permissions.public",
    ],
    "sortableAttributes": ["updated", "created", "title"],
}
ID_PAGE = 1000
TASK_POLL_FIRST_S = 0.005
TASK_POLL_MAX_S = 0.2
FINISHED = frozenset({"succeeded", "failed", "canceled"})
DELETE_BATCH = 1000
T = TypeVar("T")
KEY_SECRET = "holding the operator's Meilisearch key (chart meilisearch.apiKeySecret, COCO_MEILI_API_KEY)"


def _filter_eq(field: str, value: str) -> str:
    return f'{field} = "{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'


class MeiliSink:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        index_uid: str,
        *,
        batch_size: int = 500,
        batch_bytes: int = 20_000_000,
        task_timeout_s: float = 300,
    ) -> None:
        self.url = url
        self.index_uid = index_uid
        # A key with a line break (usual with --from-file) would make the HTTP library quote it in an error; a bad
        # key fails the first call (not this constructor: callers build the sink before their error handling).
        self._key_problem: SecretError | None = None
        self._secrets: tuple[str, ...] = ()
        if api_key is not None:
            try:
                api_key = clean_secret_value(api_key, secret=KEY_SECRET, key=None)
                self._secrets = (api_key,)
            except SecretError as exc:
                self._key_problem, api_key = exc, None
        self._client = meilisearch.Client(url, api_key, timeout=30)
        self._index = self._client.index(index_uid)
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self._task_timeout_ms = int(task_timeout_s * 1000)
        self._buffer: list[bytes] = []
        self._buffer_bytes = 0
        self._pending: list[int] = []
        # Meilisearch fails a whole batch when a document lacks vectors for a userProvided embedder (1.50).
        self._user_vectors: tuple[str, ...] = ()

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        if self._key_problem is not None:
            raise self._key_problem
        return await meili_call(self.url, self._secrets, what, fn)

    async def _wait(self, task_uid: int, what: str, tolerate: frozenset[str] = frozenset()) -> None:
        # Polls soon, then less often: most tasks of a run finish in milliseconds, a big batch takes seconds.
        deadline = time.monotonic() + self._task_timeout_ms / 1000
        delay = TASK_POLL_FIRST_S
        while True:
            task = await self._call(what, lambda: self._client.get_task(task_uid))
            if task.status in FINISHED:
                break
            if time.monotonic() + delay > deadline:
                raise SearchBackendError(
                    f"Meilisearch task {task_uid} ({what}) did not finish within "
                    f"{self._task_timeout_ms / 1000:.0f}s; Meilisearch may be overloaded."
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, TASK_POLL_MAX_S)
        if task.status != "succeeded":
            error = task.error or {}
            if error.get("code") in tolerate:
                return
            raise IndexingError(
                f"Meilisearch task {task_uid} ({what}) {task.status}: "
                f"{error.get('message', 'no message')} ({error.get('code', 'unknown')})"
            )

    async def prepare(self, embedders: dict[str, Any] | None = None, *, manage: bool = True) -> None:
        """Create the index with `id` as primary key (if missing) and make sure its settings are ours.

        `manage=False` (a sync Job, whose key may only write documents): the index must exist already; its settings
        are read, never changed.
        """
        if manage:
            await self._ensure_index()
        current = await self._call("read index settings", self._index.get_settings)
        wanted: dict[str, Any] = dict(INDEX_SETTINGS)
        same = all(sorted(current.get(k) or []) == sorted(v) for k, v in INDEX_SETTINGS.items())
        if embedders:
            wanted["embedders"] = embedders
            same = same and _embedders_match(current.get("embedders") or {}, embedders)
        effective = {**(current.get("embedders") or {}), **(embedders or {})}
        self._user_vectors = tuple(
            sorted(n for n, e in effective.items() if isinstance(e, dict) and e.get("source") == "userProvided")
        )
        if same or not manage:
            return
        info = await self._call("update index settings", lambda: self._index.update_settings(wanted))
        await self._wait(int(info.task_uid), "update index settings")

    async def _ensure_index(self) -> None:
        def ensure() -> int | None:
            try:
                index = self._client.get_index(self.index_uid)
            except MeilisearchApiError as exc:
                if exc.code != "index_not_found":
                    raise
                return int(self._client.create_index(self.index_uid, {"primaryKey": PRIMARY_KEY}).task_uid)
            if index.primary_key not in (None, PRIMARY_KEY):
                raise IndexingError(
                    f"Meilisearch index {self.index_uid!r} uses primary key {index.primary_key!r}, not "
                    f"{PRIMARY_KEY!r}; point the Datasource at another index (spec.index)",
                    retryable=False,
                )
            return None

        created = await self._call(f"create index {self.index_uid}", ensure)
        if created is not None:
            # Another Datasource's run may create the same index at the same moment.
            await self._wait(created, f"create index {self.index_uid}", tolerate=frozenset({"index_already_exists"}))

    async def add(self, document: dict[str, Any]) -> None:
        if self._user_vectors:
            document = _opt_out_of_missing_vectors(document, self._user_vectors)
        try:
            raw = orjson.dumps(document)  # compact UTF-8, as Meilisearch takes it, several times faster than json
        except TypeError:  # e.g. an integer beyond 64 bits from a webhook: the standard encoder takes it
            raw = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        if self._buffer and (
            len(self._buffer) >= self._batch_size or self._buffer_bytes + len(raw) + 2 > self._batch_bytes
        ):
            await self._send_buffer()
        self._buffer.append(raw)
        self._buffer_bytes += len(raw) + 1

    async def _send_buffer(self) -> None:
        if not self._buffer:
            return
        payload = b"[" + b",".join(self._buffer) + b"]"
        count = len(self._buffer)
        self._buffer, self._buffer_bytes = [], 0
        info = await self._call(
            f"add {count} documents", lambda: self._index.add_documents_json(payload, primary_key=PRIMARY_KEY)
        )
        self._pending.append(int(info.task_uid))
        # Keep a few writes in flight, but surface a failed batch early instead of at the very end.
        if len(self._pending) > 4:
            await self._wait(self._pending.pop(0), "add documents")

    async def flush(self) -> None:
        await self._send_buffer()
        while self._pending:
            await self._wait(self._pending.pop(0), "add documents")

    async def indexed_of(
        self, datasource_id: str, *, details: dict[str, dict[str, Any]] | None = None, fields: Iterable[str] = ()
    ) -> dict[str, tuple[int | None, str | None]]:
        """Every document id this Datasource has in the index, with the Confluence version it was indexed at and the
        fingerprint of the metadata it was indexed with (`metadata.fingerprint`; None before it was recorded).

        With `details`, each document's metadata and the extra `fields` are kept there too (by id), from the same
        requests.
        """
        out: dict[str, tuple[int | None, str | None]] = {}
        offset = 0
        flt = _filter_eq(DATASOURCE_FIELD, datasource_id)
        wanted = [PRIMARY_KEY, "metadata", *(fields if details is not None else ())]
        while True:
            params = {"filter": flt, "fields": wanted, "limit": ID_PAGE, "offset": offset}
            page = await self._call("list documents", functools.partial(self._index.get_documents, params))
            for doc in page.results:
                meta = _doc_field(doc, "metadata") if _has_field(doc, "metadata") else None
                meta = meta if isinstance(meta, dict) else {}
                version, fingerprint = meta.get("version"), meta.get("fingerprint")
                doc_id = str(_doc_field(doc, PRIMARY_KEY))
                out[doc_id] = (
                    version if isinstance(version, int) else None,
                    fingerprint if isinstance(fingerprint, str) else None,
                )
                if details is not None:
                    details[doc_id] = dict(doc) if isinstance(doc, dict) else dict(vars(doc))
            offset += len(page.results)
            if len(page.results) < ID_PAGE or offset >= page.total:
                return out

    async def update_fields(self, documents: list[dict[str, Any]]) -> None:
        """Replace some top-level fields of documents already in the index (a partial update: the rest stays).

        Callers pass only ids the index holds: Meilisearch would create a document from a partial one otherwise.
        """
        await self.flush()  # a partial update must land after the full document it changes
        for start in range(0, len(documents), DELETE_BATCH):
            chunk = documents[start : start + DELETE_BATCH]
            info = await self._call(
                f"update {len(chunk)} documents",
                functools.partial(self._index.update_documents, chunk, primary_key=PRIMARY_KEY),
            )
            await self._wait(int(info.task_uid), "update documents")

    async def delete(self, ids: Iterable[str]) -> int:
        todo = sorted(ids)
        for start in range(0, len(todo), DELETE_BATCH):
            chunk: list[str | int] = list(todo[start : start + DELETE_BATCH])
            info = await self._call(
                f"delete {len(chunk)} documents", functools.partial(self._index.delete_documents, chunk)
            )
            await self._wait(int(info.task_uid), "delete documents")
        return len(todo)

    async def delete_datasource(self, datasource_id: str) -> None:
        """Remove every document of a Datasource (used when the Datasource is deleted)."""

        def run() -> int | None:
            try:
                self._client.get_index(self.index_uid)
            except MeilisearchApiError as exc:
                if exc.code == "index_not_found":
                    return None
                raise
            flt = _filter_eq(DATASOURCE_FIELD, datasource_id)
            return int(self._index.delete_documents(filter=flt).task_uid)

        uid = await self._call(f"delete documents of {datasource_id}", run)
        if uid is not None:
            await self._wait(uid, f"delete documents of {datasource_id}")

    async def count(self, datasource_id: str) -> int:
        params = {"filter": _filter_eq(DATASOURCE_FIELD, datasource_id), "fields": [PRIMARY_KEY], "limit": 1}
        page = await self._call("count documents", lambda: self._index.get_documents(params))
        return int(page.total)


async def meili_call(url: str, secrets: tuple[str, ...], what: str, fn: Callable[[], T]) -> T:
    """One blocking client call in a worker thread, its failures as SyncErrors that never quote a key."""
    try:
        return await asyncio.to_thread(fn)
    except (MeilisearchCommunicationError, MeilisearchTimeoutError, requests.RequestException, UnicodeError) as exc:
        # Never the exception's text: the HTTP library quotes header values (the key) in some of them.
        raise SearchBackendError(
            f"Meilisearch at {url} is unreachable while trying to {what} ({_communication_problem(exc)}); "
            "the run will be retried. Check that Meilisearch is running and the operator's meili URL is right."
        ) from None
    except MeilisearchApiError as exc:
        message = redact(str(exc.message), secrets)
        if exc.status_code in (401, 403):
            raise SearchBackendError(
                f"Meilisearch at {url} refused the API key while trying to {what} ({message}); the operator's "
                "Meilisearch key Secret must hold a master or admin key (a sync Job's key: its namespace's own "
                "indexes only).",
                reason=Reason.SEARCH_BACKEND_UNAUTHORIZED,
                retryable=False,
            ) from None
        raise IndexingError(f"Meilisearch refused to {what}: {message} ({exc.code})") from None


def _opt_out_of_missing_vectors(document: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """`_vectors.<name>: null` for every userProvided embedder the document brings no vector for (its opt-out)."""
    vectors = document.get("_vectors")
    present = vectors if isinstance(vectors, dict) else {}
    missing = [n for n in names if n not in present]
    if not missing:
        return document
    return {**document, "_vectors": {**present, **dict.fromkeys(missing)}}


def _communication_problem(exc: BaseException) -> str:
    """A fixed phrase for why Meilisearch could not be reached (picked from the error, never quoting it)."""
    if isinstance(exc, MeilisearchTimeoutError | requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.InvalidHeader | UnicodeError):
        return "a header value is not valid HTTP: check the operator's Meilisearch key"
    text = str(exc).lower()
    for needle, phrase in (
        ("refused", "connection refused"),
        ("name or service not known", "the host name could not be resolved"),
        ("temporary failure in name resolution", "the host name could not be resolved"),
        ("certificate", "its TLS certificate is not trusted"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return phrase
    return "could not connect"


def _embedders_match(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Meilisearch hides API keys when it reports settings, so compare everything but them."""
    if set(current) != set(wanted):
        return False

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "apiKey"}

    return all(strip(current[name]) == strip(cfg) for name, cfg in wanted.items())


def _has_field(doc: Any, field: str) -> bool:
    return field in doc if isinstance(doc, dict) else field in getattr(doc, "__dict__", {})


def _doc_field(doc: Any, field: str) -> Any:
    if isinstance(doc, dict):
        return doc[field]
    return getattr(doc, field)
