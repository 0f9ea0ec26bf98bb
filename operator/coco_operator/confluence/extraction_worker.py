"""An attachment extraction worker: `python -m coco_operator.confluence.extraction_worker LIMITS_JSON`.

Each job is a frame of a JSON header ({"media_type", "filename", "max_chars"}) and the file's bytes; the answer is the
`Extracted` as JSON. Limits and framing: `coco_operator.workers`.
"""

from __future__ import annotations

import dataclasses

import orjson

from coco_operator.confluence.extract import extract_text
from coco_operator.workers import HEADER, main


def handle(payload: bytes) -> bytes:
    (size,) = HEADER.unpack_from(payload)
    meta = orjson.loads(payload[HEADER.size : HEADER.size + size])
    data = payload[HEADER.size + size :]
    extracted = extract_text(data, meta["media_type"], meta["filename"], max_chars=meta["max_chars"])
    return orjson.dumps(dataclasses.asdict(extracted))


if __name__ == "__main__":
    main(handle)
