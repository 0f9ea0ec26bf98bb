"""Request cost of each auth mode and of Confluence 2026's listing rules, on the generated bench space.

    python -m bench.auth_costs [--pages 1000] [--latency-ms 5] [--modes api_token,personal_access_token,...]

For each auth mode an emulator (Cloud with Atlassian's gateway and token endpoint, or Data Center) serves the bench
space (`bench.space`); one process runs a full sync and then an unchanged incremental sync (documents mapped and
dropped, as `bench.ours --no-sink`), so the second run shows what the per-process caches (cloudId, OAuth token)
save. Prints one JSON line per run: requests by where they went (site, gateway, token endpoint), the CHANGE-864 reads
called (must be none on Cloud), seconds. `--past-end` adds a Data Center run with CONFSERVER-95396 switched on.

The classic and Data Center modes use only what `SyncRequest`/`Settings` always had, so the same script measures an
older tree (PYTHONPATH=OLD/operator) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState

from bench.ours import NullSink
from bench.space import EMAIL, TOKEN, datasource_body, seed_space

SCOPED_TOKEN = "bench-scoped-token"
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-client-secret"
DC_PASSWORD = "bench-password"
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "api_token": ("cloud", {}),
    "scoped_api_token": ("cloud", {"auth_type": "scoped_api_token"}),
    "oauth2_client_credentials": (
        "cloud",
        {"oauthSecretRef": {"name": "svc"}, "username": None, "tokenSecretRef": None},
    ),
    "personal_access_token": ("dc", {"username": None}),
    "basic": ("dc", {"auth_type": "basic", "username": "bench"}),
}


def _spec(endpoint: str, changes: dict[str, Any]) -> Any:
    from coco_operator.api.datasource import DatasourceSpec

    body = datasource_body("bench", "wiki", endpoint, blogposts=True, attachments=True)
    config = body["spec"]["connector"]["config"]
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return DatasourceSpec.model_validate(body["spec"])


def _emulator(edition: str, pages: int, latency_s: float, past_end: bool) -> ConfluenceEmulator:
    state = ConfluenceState()
    seed_space(state, pages)
    state.add_scoped_token(EMAIL, SCOPED_TOKEN)
    state.add_oauth_client(CLIENT_ID, CLIENT_SECRET)
    state.add_pat(TOKEN, "bench")
    state.add_password("bench", DC_PASSWORD)
    state.latency_s = latency_s
    state.dc_past_end = past_end
    return ConfluenceEmulator(state, edition="cloud" if edition == "cloud" else "dc", gateway=edition == "cloud")


async def _runs(mode: str, emu: ConfluenceEmulator) -> list[dict[str, Any]]:
    from coco_operator import sync as sync_module
    from coco_operator.settings import Settings

    edition, changes = MODES[mode]
    settings: dict[str, Any] = {"allow_http": True, "allow_private_networks": True}
    extra: dict[str, Any] = {}
    token: str | None = {"scoped_api_token": SCOPED_TOKEN, "basic": DC_PASSWORD}.get(mode, TOKEN)
    if edition == "cloud" and mode != "api_token":
        settings.update(
            confluence_gateway_url=emu.gateway_url, confluence_auth_url=emu.auth_url, link_allowed_hosts=["127.0.0.1"]
        )
    if mode == "oauth2_client_credentials":
        from coco_operator.confluence.auth import OAuthClient

        token, extra = None, {"oauth": OAuthClient(CLIENT_ID, CLIENT_SECRET)}
    spec = _spec(emu.endpoint, changes)
    out, previous = [], None
    for label in ("full", "unchanged incremental"):
        request = sync_module.SyncRequest(
            "bench/wiki",
            spec,
            token,
            "bench",
            watermark=previous.watermark if previous else None,
            listing=previous.listing if previous else sync_module.Listing(),
            **extra,
        )
        before = len(emu.state.requests)
        t0 = time.monotonic()
        result = await sync_module.run_sync(request, Settings(**settings), sink=NullSink())
        records = emu.state.requests[before:]
        removed = sorted(
            {
                r.path
                for r in records
                if emu.cloud and getattr(r, "route", "") in emu.routes and emu.routes[r.route].deprecated
            }
            | {r.path for r in records if emu.cloud and "/rest/api/space/" in r.path}
        )
        out.append(
            {
                "mode": mode,
                "run": label,
                "result": "Succeeded" if result.succeeded else f"Failed: {result.error and result.error.message}",
                "requests": len(records),
                "by_channel": dict(Counter(r.channel for r in records)),
                "by_kind": dict(Counter(_kind(r.path) for r in records)),
                "removed_v1_reads": removed,
                "seconds": round(time.monotonic() - t0, 2),
            }
        )
        previous = result
    return out


def _kind(path: str) -> str:
    for marker in (
        "/_edge/tenant_info",
        "/oauth/token",
        "/api/v2/spaces",
        "/rest/api/space/",
        "/rest/api/search",
        "/rest/api/content/search",
        "/download",
        "/media/",
    ):
        if marker in path:
            return marker.strip("/")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=5)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--past-end", action="store_true", help="also Data Center with CONFSERVER-95396 on")
    args = parser.parse_args(argv)
    runs = [(m, False) for m in args.modes.split(",")] + ([("personal_access_token", True)] if args.past_end else [])
    for mode, past_end in runs:
        emu = _emulator(MODES[mode][0], args.pages, args.latency_ms / 1000, past_end)
        with emu:
            for line in asyncio.run(_runs(mode, emu)):
                print(json.dumps({**line, "pages": args.pages, "past_end": past_end}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
