"""A worker for the limits tests: `python -m tests.hostile.limits_worker LIMITS`; the job says what to do."""

from __future__ import annotations

import time

from coco_operator.workers import main


def handle(payload: bytes) -> bytes:
    job = payload.decode()
    if job == "spin":
        while True:
            pass
    if job == "sleep":
        time.sleep(3600)
    if job == "allocate":
        hoard = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GiB, far over any limit of the tests
        return str(len(hoard)).encode()
    if job == "exit":
        raise SystemExit(3)
    return b"echo:" + payload


if __name__ == "__main__":
    main(handle)
