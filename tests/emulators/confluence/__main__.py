"""Standalone entry point: ``python -m tests.emulators.confluence --edition cloud --port 8090 --seed demo``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from .seed import seed_demo
from .server import ConfluenceEmulator
from .state import ConfluenceState


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Confluence emulator (Cloud or Data Center)")
    parser.add_argument("--edition", choices=["cloud", "dc"], default="cloud")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", choices=["demo", "none"], default="demo")
    parser.add_argument("--context-path", default="", help="DC only, e.g. /confluence")
    parser.add_argument("--timezone", default="UTC", help="site time zone used by CQL dates")
    parser.add_argument("--gateway", action="store_true", help="Cloud: also serve the API gateway and OAuth")
    args = parser.parse_args(argv)

    async def serve() -> None:
        state = ConfluenceState(args.timezone)
        if args.seed == "demo":
            seed_demo(state, edition=args.edition)
        emulator = ConfluenceEmulator(
            state,
            edition=args.edition,
            context_path=args.context_path,
            host=args.host,
            port=args.port,
            gateway=args.gateway,
        )
        await emulator.start_async()
        print(f"confluence emulator listening on {emulator.endpoint}", flush=True)
        if args.gateway:
            print(f"api gateway listening on {emulator.gateway_endpoint}", flush=True)
            print(f"oauth token endpoint {emulator.token_url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await emulator.stop_async()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
