"""An emulator of the Meilisearch 1.50 HTTP API, the size of what coco-operator and its tests use, served over
real HTTP on 127.0.0.1.

It answers like the real server, status, code and message, for what it emulates: indexes (create, read,
delete), documents (add as JSON, fetch with filter/fields/ids, delete by ids or filter), search (q, filter, sort,
paging, attributesToRetrieve), settings (searchable/filterable/sortable attributes, ranking rules, embedders), tasks
by uid, API keys (`/keys`, actions, index patterns, expiry) and tenant tokens on search. Writes are asynchronous
tasks processed in order by a worker; one bad document fails its whole task. A `userProvided` embedder makes every
document carry `_vectors.<name>`; other embedders are stored, but the emulator cannot call out to embed anything.
A real Meilisearch feature outside that set answers 400 `bad_request` saying it is not emulated, rather than
something wrong. What a real 1.50 does that older emulators got wrong is in shared/reference/meilisearch-api.md
and asserted by tests/meili, which runs against a real server too (MEILI_URL, MEILI_MASTER_KEY).

In-process::

    with MeiliEmulator("masterKey") as meili:
        client = meilisearch.Client(meili.url, "masterKey")

Standalone::

    python -m tests.emulators.meilisearch --port 7700 --master-key KEY
"""

from .errors import MeiliError
from .server import MeiliEmulator

__all__ = ["MeiliEmulator", "MeiliError"]
