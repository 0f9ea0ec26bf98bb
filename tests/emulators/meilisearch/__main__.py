"""`python -m tests.emulators.meilisearch`: serve the emulator until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .server import MeiliEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Meilisearch emulator until SIGTERM/SIGINT.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7700)
    parser.add_argument(
        "--master-key",
        default=os.environ.get("MEILI_MASTER_KEY"),
        help="master key (default: $MEILI_MASTER_KEY; without one every route but /keys is open, as in Meilisearch)",
    )
    parser.add_argument("--payload-limit", type=int, default=100_000_000)
    parser.add_argument("--task-delay", type=float, default=0.0, help="seconds each task stays `processing`")
    args = parser.parse_args(argv)
    emulator = MeiliEmulator(
        args.master_key, host=args.host, port=args.port, payload_limit=args.payload_limit, task_delay_s=args.task_delay
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator.start()
    print(f"meilisearch emulator listening on {emulator.url}", flush=True)
    stop.wait()
    emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
