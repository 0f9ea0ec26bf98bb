"""Meilisearch API keys the operator mints for sync Jobs: one per namespace, limited to that namespace's own indexes
and to the actions a Job's run needs (docs/security.md, point 4).

Meilisearch derives a key's value from its uid and the master key, so a key is identified by its uid; the operator
finds its keys by name (`coco-operator:<namespace>`), keeps the one its Secret names and deletes the others.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import meilisearch

from coco_operator.errors import SecretError
from coco_operator.search.sink import KEY_SECRET, meili_call
from coco_operator.secret_values import clean_secret_value

# What a sync Job's run does with its key: read the index's settings (never change them: the operator prepared the
# index), read, add and delete documents, and wait for its tasks.
JOB_ACTIONS = ("documents.add", "documents.get", "documents.delete", "settings.get", "tasks.get")
NAME_PREFIX = "coco-operator:"
PAGE = 1000


@dataclass(frozen=True)
class MintedKey:
    uid: str
    key: str
    actions: tuple[str, ...]
    indexes: tuple[str, ...]


def key_name(namespace: str) -> str:
    return f"{NAME_PREFIX}{namespace}"


class KeyAdmin:
    """`/keys` with the operator's own (master or admin) key."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url
        key = clean_secret_value(api_key, secret=KEY_SECRET, key=None) if api_key else None
        if key is None:
            raise SecretError(
                "Job mode needs the operator's Meilisearch master or admin key (COCO_MEILI_API_KEY) to mint a key per "
                "namespace; set the chart's meilisearch.apiKeySecret"
            )
        self._secrets = (key,)
        self._client = meilisearch.Client(url, key, timeout=30)

    async def _call(self, what: str, fn: Any) -> Any:
        return await meili_call(self.url, self._secrets, what, fn)

    async def keys_named(self, name: str) -> list[MintedKey]:
        """Every key with this name (normally one)."""
        found: list[MintedKey] = []
        offset = 0
        while True:
            page = await self._call(
                "list API keys", functools.partial(self._client.http.get, f"keys?limit={PAGE}&offset={offset}")
            )
            results = list(page.get("results") or [])
            found += [_minted(k) for k in results if k.get("name") == name]
            offset += len(results)
            if len(results) < PAGE or offset >= int(page.get("total") or 0):
                return found

    async def create(self, name: str, description: str, indexes: Sequence[str], actions: Sequence[str]) -> MintedKey:
        body = {
            "uid": str(uuid.uuid4()),
            "name": name,
            "description": description,
            "actions": list(actions),
            "indexes": list(indexes),
            "expiresAt": None,
        }
        created = await self._call(f"create API key {name}", functools.partial(self._client.http.post, "keys", body))
        return _minted(created)

    async def delete(self, uid: str) -> None:
        def remove() -> None:
            try:
                self._client.http.delete(f"keys/{uid}")
            except meilisearch.errors.MeilisearchApiError as exc:
                if exc.code != "api_key_not_found":
                    raise

        await self._call("delete an API key", remove)


def _minted(raw: dict[str, Any]) -> MintedKey:
    return MintedKey(
        uid=str(raw.get("uid")),
        key=str(raw.get("key")),
        actions=tuple(raw.get("actions") or ()),
        indexes=tuple(raw.get("indexes") or ()),
    )
