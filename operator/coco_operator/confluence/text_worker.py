"""A text conversion worker process: `python -m coco_operator.confluence.text_worker`.

Reads length-prefixed JSON frames `{"bodies": [...], "users": {...}}` from stdin and answers each with a frame of
texts on stdout, until stdin closes. It imports only the converter, so it starts in well under 0.1 s.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from typing import BinaryIO

import orjson

from coco_operator.confluence.storage_text import storage_to_text

HEADER = struct.Struct("!I")


def convert_batch(bodies: list[str], users: Mapping[str, str]) -> list[str]:
    return [storage_to_text(body, users=users) for body in bodies]


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        (size,) = HEADER.unpack(header)
        request = orjson.loads(stdin.read(size))
        answer = orjson.dumps(convert_batch(request["bodies"], request["users"]))
        stdout.write(HEADER.pack(len(answer)) + answer)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
