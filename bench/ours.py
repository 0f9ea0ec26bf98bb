"""Driver for coco-operator's own sync in a measured child process (the watermark and listing come as flags).

    python -m bench.ours DATASOURCE.yaml --meili-url URL --meili-key KEY --index IDX [--watermark ISO]
        [--last-prune ISO --source-items N] [--no-sink]

Runs :func:`coco_operator.sync.run_sync` once, as `coco-operator sync` does, optionally incremental (from a
watermark) or with the Meilisearch sink replaced by one that maps documents and discards them (``--no-sink``: the
peers do not write to a search engine either). Prints one JSON line: duration, requests, counts, watermark and
this process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.space import datasource_body

DATASOURCE_ID = "bench/wiki"


def datasource_yaml(
    endpoint: str, *, blogposts: bool, attachments: bool, comments: bool = False, permissions: str | None = None
) -> str:
    body = datasource_body(
        "bench",
        "wiki",
        endpoint,
        blogposts=blogposts,
        attachments=attachments,
        comments=comments,
        permissions=permissions,
    )
    body["spec"]["name"] = "Benchmark wiki"
    return yaml.safe_dump(body, sort_keys=False)


class NullSink:
    """Stands in for MeiliSink: documents are mapped by the run, counted here and dropped.

    Methods take any arguments, and unknown ones are async no-ops, so the sink's interface may grow.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.added = 0

    async def indexed_of(self, *args: Any, **kwargs: Any) -> dict[str, tuple[int | None, str | None]]:
        return {}

    async def add(self, document: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self.added += 1

    async def delete(self, ids: Iterable[str], *args: Any, **kwargs: Any) -> int:
        return 0

    async def count(self, *args: Any, **kwargs: Any) -> int:
        return self.added

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        async def noop(*args: Any, **kwargs: Any) -> None:
            return None

        return noop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--token", default="bench-api-token")
    parser.add_argument("--meili-url", default="http://127.0.0.1:7700")
    parser.add_argument("--meili-key")
    parser.add_argument("--index", default="bench")
    parser.add_argument("--watermark", help="ISO time of the previous successful run: makes the run incremental")
    parser.add_argument("--no-sink", action="store_true", help="map documents but do not write them anywhere")
    parser.add_argument("--last-prune", help="ISO start of the last run that listed every id (status.lastPruneTime)")
    parser.add_argument("--source-items", type=int, help="the scope's count at the previous run (status.sourceItems)")
    args = parser.parse_args(argv)

    from coco_operator import sync as sync_module
    from coco_operator.api.datasource import DatasourceSpec
    from coco_operator.settings import Settings
    from coco_operator.sync import Listing

    body = yaml.safe_load(Path(args.file).read_text())
    spec = DatasourceSpec.model_validate(body["spec"])
    settings = Settings(meili_url=args.meili_url, meili_api_key=args.meili_key, meili_index=args.index)
    watermark = datetime.fromisoformat(args.watermark) if args.watermark else None
    listing = Listing(
        last_prune=datetime.fromisoformat(args.last_prune) if args.last_prune else None, total=args.source_items
    )
    request = sync_module.SyncRequest(DATASOURCE_ID, spec, args.token, args.index, watermark=watermark, listing=listing)
    t0 = time.monotonic()
    result = asyncio.run(sync_module.run_sync(request, settings, sink=NullSink() if args.no_sink else None))
    elapsed = time.monotonic() - t0
    report = {
        "result": "Succeeded" if result.succeeded else "Failed",
        "error": result.error.message if result.error else None,
        "duration_seconds": round(result.duration_s, 3),
        "elapsed_seconds": round(elapsed, 3),
        "incremental": result.incremental,
        "counts": result.counts.model_dump(),
        "documents": result.documents,
        "requests": result.requests,
        "started": result.started.isoformat(),
        "watermark": result.watermark.isoformat() if result.watermark else None,
        "pruneReason": result.prune_reason,
        "lastPruneTime": result.listing.last_prune.isoformat() if result.listing.last_prune else None,
        "sourceItems": result.listing.total,
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(report))
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
