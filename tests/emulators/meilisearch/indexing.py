"""What a task does to the store when the worker processes it. A task either applies whole or fails whole.

Errors raised by the engine inside an index (ids, primary key, vectors, filters, embedder settings) name the index,
as Meilisearch's do; queue-level ones (index not found or already there) do not.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable

from .documents import check_user_provided_vectors, infer_primary_key, keyed
from .errors import MeiliError
from .filters import check_filterable, matches, parse_filter
from .settings import apply_patch, user_provided
from .store import Index, Store, Task


def process(store: Store, task: Task) -> None:
    """Run a `processing` task to `succeeded` or `failed` (caller holds the store's lock)."""
    try:
        if task.forced_error is not None:
            raise MeiliError(*task.forced_error)
        _RUNNERS[task.type](store, task)
        task.status = "succeeded"
    except MeiliError as exc:
        _fail(task, exc)
    except Exception as exc:  # the emulator's own bug: visible in the task and on stderr
        traceback.print_exc(file=sys.stderr)
        _fail(task, MeiliError("internal", f"emulator bug: {exc!r}"))
    task.finished_at = max(time.time_ns(), (task.started_at or 0) + 1000)
    task.payload = None


def _fail(task: Task, exc: MeiliError) -> None:
    task.status = "failed"
    task.error = exc.body()
    for counter in ("indexedDocuments", "deletedDocuments"):
        if counter in task.details:
            task.details[counter] = 0


def _index_for_write(store: Store, task: Task) -> Index:
    """The task's index; a write creates it when the key that enqueued the task may create indexes."""
    assert task.index_uid is not None
    if task.index_uid not in store.indexes and task.payload["may_create"]:
        # Meilisearch commits the implicit creation before indexing: the index stays even if the task fails.
        store.indexes[task.index_uid] = Index(task.index_uid, None)
    return store.index(task.index_uid)


def _create_index(store: Store, task: Task) -> None:
    assert task.index_uid is not None
    if task.index_uid in store.indexes:
        raise MeiliError("index_already_exists", f"Index `{task.index_uid}` already exists.")
    store.indexes[task.index_uid] = Index(task.index_uid, task.payload)


def _delete_index(store: Store, task: Task) -> None:
    assert task.index_uid is not None
    index = store.index(task.index_uid)
    del store.indexes[index.uid]
    task.details["deletedDocuments"] = len(index.documents)


def _add_documents(store: Store, task: Task) -> None:
    index = _index_for_write(store, task)
    docs, wanted = task.payload["documents"], task.payload["primaryKey"]
    try:
        primary_key = index.primary_key
        if wanted is not None and primary_key not in (None, wanted):
            raise MeiliError("index_primary_key_already_exists", f"Index already has a primary key: `{primary_key}`.")
        primary_key = primary_key or wanted or (infer_primary_key(docs[0]) if docs else None)
        pairs = keyed(docs, primary_key) if primary_key else []
        if task.payload.get("merge"):
            pairs = [(i, {**index.documents.get(i, {}), **d}) for i, d in pairs]
        check_user_provided_vectors(pairs, user_provided(index.settings))
    except MeiliError as exc:
        raise exc.in_index(index.uid) from None
    index.documents.update(pairs)
    index.primary_key = primary_key
    index.updated_at = time.time_ns()
    task.details["indexedDocuments"] = len(docs)


def _delete_documents(store: Store, task: Task) -> None:
    assert task.index_uid is not None
    index = store.index(task.index_uid)
    if "ids" in task.payload:
        doomed = [i for i in dict.fromkeys(task.payload["ids"]) if i in index.documents]
    else:
        node = parse_filter(task.payload["filter"], "invalid_document_filter")
        try:
            if node is not None:
                check_filterable(node, index.settings["filterableAttributes"], "invalid_document_filter")
        except MeiliError as exc:
            raise exc.in_index(index.uid) from None
        doomed = [i for i, d in index.documents.items() if node is not None and matches(node, d)]
    for ident in doomed:
        del index.documents[ident]
    index.updated_at = time.time_ns()
    task.details["deletedDocuments"] = len(doomed)


def _update_settings(store: Store, task: Task) -> None:
    index = _index_for_write(store, task)
    try:
        index.settings = apply_patch(index.settings, task.payload["patch"])
    except MeiliError as exc:
        raise exc.in_index(index.uid) from None
    index.updated_at = time.time_ns()


_RUNNERS: dict[str, Callable[[Store, Task], None]] = {
    "indexCreation": _create_index,
    "indexDeletion": _delete_index,
    "documentAdditionOrUpdate": _add_documents,
    "documentDeletion": _delete_documents,
    "settingsUpdate": _update_settings,
}
