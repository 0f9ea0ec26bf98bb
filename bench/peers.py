"""Drivers for the peers, each run in a measured child process against the same emulated space.

    python -m bench.peers langchain|langchain-default|llamaindex --endpoint URL --max-items N

- ``langchain``: LangChain's ``ConfluenceLoader`` (langchain-community, via atlassian-python-api) loading the space's
  pages with ``include_restricted_content=True``, i.e. without a restrictions request per page: like coco-operator,
  everything the account can see.
- ``langchain-default``: the same with LangChain's default ``include_restricted_content=False``, which asks
  ``/content/{id}/restriction/byOperation`` for every page.
- ``llamaindex``: LlamaIndex's ``ConfluenceReader.load_data(space_key=..., page_status="current")``.

Attachments are off for all (``include_attachments=False``): the peers load pages only. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from bench.space import EMAIL, SPACE_KEY, TOKEN

PEERS = ("langchain", "langchain-default", "llamaindex")


def load_langchain(endpoint: str, max_items: int, *, restricted_check: bool) -> list[tuple[str, int]]:
    from langchain_community.document_loaders import ConfluenceLoader

    loader = ConfluenceLoader(
        url=endpoint,
        username=EMAIL,
        api_key=TOKEN,
        space_key=SPACE_KEY,
        include_attachments=False,
        include_restricted_content=not restricted_check,
        limit=50,
        max_pages=max_items,
    )
    return [(str(d.metadata.get("id")), len(d.page_content)) for d in loader.load()]


def load_llamaindex(endpoint: str, max_items: int) -> list[tuple[str, int]]:
    from llama_index.readers.confluence import ConfluenceReader  # type: ignore[import-untyped]

    reader = ConfluenceReader(base_url=endpoint, user_name=EMAIL, password=TOKEN, cloud=True)
    # max_num_results: without it the reader passes limit=None down to atlassian-python-api 4.x's
    # get_all_pages_from_space, which compares `len(results) <= None` and raises TypeError.
    docs = reader.load_data(
        space_key=SPACE_KEY, include_attachments=False, page_status="current", max_num_results=max_items
    )
    return [(str(d.doc_id), len(d.text)) for d in docs]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("langchain-community", "llama-index-readers-confluence", "atlassian-python-api"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("--endpoint", required=True, help="Confluence Cloud base URL, e.g. http://127.0.0.1:PORT/wiki")
    parser.add_argument("--max-items", type=int, default=100_000, help="upper bound passed to the loader")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("llama_index").setLevel(logging.WARNING)

    t_import = time.monotonic()
    if args.peer.startswith("langchain"):
        from langchain_community.document_loaders import ConfluenceLoader  # noqa: F401
    else:
        import llama_index.readers.confluence  # type: ignore[import-untyped]  # noqa: F401
    import_s = time.monotonic() - t_import

    t0 = time.monotonic()
    report: dict[str, Any] = {"peer": args.peer, "versions": versions(), "import_seconds": round(import_s, 3)}
    try:
        if args.peer == "llamaindex":
            docs = load_llamaindex(args.endpoint, args.max_items)
        else:
            docs = load_langchain(args.endpoint, args.max_items, restricted_check=args.peer == "langchain-default")
    except Exception as exc:
        report.update({"result": "Failed", "error": f"{type(exc).__name__}: {exc}"[:2000]})
        docs = []
    else:
        report["result"] = "Succeeded"
    report.update(
        {
            "duration_seconds": round(time.monotonic() - t0, 3),
            "documents": len(docs),
            "unique_ids": len({d[0] for d in docs}),
            "text_chars": sum(d[1] for d in docs),
            "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )
    print(json.dumps(report))
    return 0 if report["result"] == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
