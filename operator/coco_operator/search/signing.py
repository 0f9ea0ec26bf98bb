"""The key that signs tenant tokens: a Meilisearch API key whose only action is `search`.

Meilisearch checks a tenant token against the key named by its `apiKeyUid` (the token's rules narrow that key's
rights), so the signing key must be one that may do nothing but search, and never the master key (which has no
uid and could not sign one anyway). The key comes from the operator's settings (`COCO_MEILI_SEARCH_KEY`, with its
uid in `COCO_MEILI_SEARCH_KEY_UID` or looked up with the operator's key); without one, the key named
`coco-operator search` is used, and created once with the operator's key if it does not exist. Blocking calls:
for the command line and frontends' own processes, not the operator's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import meilisearch
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError
from meilisearch.models.key import Key

from coco_operator.errors import ConfigurationError, SearchBackendError
from coco_operator.settings import Settings

KEY_NAME = "coco-operator search"
KEY_DESCRIPTION = "Signs tenant tokens for document-level permissions (coco-operator search-token); search only."
SEARCH_ONLY = ["search"]
SETTINGS_HINT = "set COCO_MEILI_SEARCH_KEY and COCO_MEILI_SEARCH_KEY_UID to a key whose only action is search"


@dataclass(frozen=True)
class SigningKey:
    key: str
    uid: str
    created: bool = False  # made by this call


def signing_key(settings: Settings) -> SigningKey:
    admin = settings.meili_api_key
    wanted = settings.meili_search_key
    if wanted is not None and admin is not None and wanted == admin:
        raise ConfigurationError(f"COCO_MEILI_SEARCH_KEY is the operator's own Meilisearch key; {SETTINGS_HINT}")
    if wanted is not None and settings.meili_search_key_uid:
        return SigningKey(wanted, settings.meili_search_key_uid)
    if admin is None:
        raise ConfigurationError(
            f"no key to sign tenant tokens with: {SETTINGS_HINT} (or give the operator's key, COCO_MEILI_API_KEY, "
            "to look it up or create one)"
        )
    client = meilisearch.Client(settings.meili_url, admin, timeout=30)
    try:
        if wanted is not None:
            return _checked(client.get_key(wanted), wanted)
        return _named_or_created(client)
    except MeilisearchCommunicationError:
        raise SearchBackendError(f"Meilisearch at {settings.meili_url} is unreachable") from None
    except MeilisearchApiError as exc:
        raise SearchBackendError(
            f"Meilisearch at {settings.meili_url} refused to look up or create the search key ({exc.code}); the "
            f"operator's key needs the keys.get and keys.create actions, or {SETTINGS_HINT}"
        ) from None


def _checked(found: Key, value: str) -> SigningKey:
    if list(found.actions) != SEARCH_ONLY:
        raise ConfigurationError(
            f"COCO_MEILI_SEARCH_KEY (key {found.name or found.uid!r}) may do {', '.join(found.actions)}, not only "
            "search: tokens stay valid as long as the key that signed them, so it must be one that can be rotated "
            f"or deleted without touching anything else; {SETTINGS_HINT}"
        )
    return SigningKey(value, str(found.uid))


def _named_or_created(client: meilisearch.Client) -> SigningKey:
    for key in client.get_keys({"limit": 1000}).results:
        if key.name == KEY_NAME and key.actions == SEARCH_ONLY and key.expires_at is None:
            return SigningKey(str(key.key), str(key.uid))
    made = client.create_key(
        {"name": KEY_NAME, "description": KEY_DESCRIPTION, "actions": SEARCH_ONLY, "indexes": ["*"], "expiresAt": None}
    )
    return SigningKey(str(made.key), str(made.uid), created=True)
