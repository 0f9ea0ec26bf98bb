"""A text conversion worker process: `python -m coco_operator.confluence.text_worker LIMITS_JSON`.

Reads length-prefixed JSON frames `{"bodies": [...], "users": {...}}` from stdin and answers each with a frame of
texts on stdout, until stdin closes, within the limits of `coco_operator.workers`. It imports only the converter, so
it starts in well under 0.1 s.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from coco_operator.confluence.storage_text import storage_to_text
from coco_operator.workers import HEADER, main

__all__ = ["HEADER", "convert_batch", "handle"]


def convert_batch(bodies: list[str], users: Mapping[str, str]) -> list[str]:
    return [storage_to_text(body, users=users) for body in bodies]


def handle(payload: bytes) -> bytes:
    request = orjson.loads(payload)
    return orjson.dumps(convert_batch(request["bodies"], request["users"]))


if __name__ == "__main__":
    main(handle)
