"""One client operation in a process of its own, so its peak RSS can be measured apart from the hostile server:
`python -m tests.hostile.child '{"op": "get_json", "endpoint": URL, "path": "/space/A", "client": {...}}'`.

Prints one JSON line: {"ok": bool, "reason": ..., "message": ..., "seconds": ..., "size": ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from coco_operator.confluence import extraction
from coco_operator.confluence.client import ConfluenceClient
from coco_operator.egress import AddressRules, EgressPolicy
from coco_operator.errors import SyncError
from coco_operator.workers import Limits, WorkerPool
from tests.hostile.pdf import cpu_bomb_pdf


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["op"] == "noop":
        return {"ok": True}
    if spec["op"] == "extract_cpu_bomb":
        limits = Limits(**spec["limits"])
        pool = WorkerPool(extraction.WORKER_MODULE, 1, limits)
        try:
            result = await extraction.extract(cpu_bomb_pdf(), "application/pdf", "bomb.pdf", limits, pool=pool)
        finally:
            await pool.close()
        return {"ok": not result.failed, "reason": result.skipped_reason}
    policy = EgressPolicy("Confluence", addresses=AddressRules(allow_private=True))
    t0 = time.monotonic()
    async with ConfluenceClient(spec["endpoint"], "pat", egress=policy, **spec.get("client", {})) as client:
        try:
            if spec["op"] == "get_json":
                size = len(json.dumps(await client.get_json(spec["path"])))
            else:
                size = len(await client.get_bytes(client.site_url(spec["path"]), max_bytes=spec["max_bytes"]))
        except SyncError as exc:
            return {"ok": False, "reason": exc.reason, "message": exc.message, "seconds": time.monotonic() - t0}
    return {"ok": True, "size": size, "seconds": time.monotonic() - t0}


def _hwm_kib() -> int:
    for line in open("/proc/self/status"):  # noqa: SIM115 (a tiny read at exit)
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    result = asyncio.run(run(json.loads(sys.argv[1])))
    print(json.dumps({**result, "hwm_kib": _hwm_kib()}))
