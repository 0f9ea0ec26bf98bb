"""Benchmark: coco-operator's sync against LangChain's and LlamaIndex's Confluence loaders, and operator scale.

    python -m bench.run [--pages 1000,10000] [--latency-ms 50] [--skip-peers] [--skip-operator] [--out docs/]
    python -m bench.run --smoke        # 100 pages, 5 ms latency, 20 Datasources: under a minute

For each space size a fresh Confluence emulator process (``bench.serve_space``: generated space, per-request
latency) and a fresh Meilisearch emulator process are started; every measured sync or load runs in its own child
process, reaped with wait4 so its peak RSS and CPU time are its own. Requests are counted by the emulator.

Per size: our full sync (the ``coco-operator sync`` command; pages, blog posts, attachments), an unchanged
incremental sync and one after 1 % of the pages changed (``bench.ours``, from the previous run's watermark), our
full sync of the pages only (what the peers load) with and without the Meilisearch sink, then the peers.

Prints a table, writes ``benchmarks.md`` and ``bench-sync.png`` into ``--out`` (default ``docs/``; with ``--smoke``
the work directory) and the raw results as JSON into the work directory.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.operator_scale import run_scale
from bench.proc import PYTHON, REPO, Service, http_json, run_measured
from bench.results import (
    FULL,
    FULL_COMMENTS,
    INC_CHANGED,
    INC_COMMENTS_CHANGED,
    INC_COMMENTS_LISTING,
    INC_COMMENTS_UNCHANGED,
    INC_LISTING,
    INC_RELABELLED,
    INC_UNCHANGED,
    OURS,
    PAGES,
    PAGES_NOSINK,
    PEER_LOAD,
    Results,
    Run,
    machine_info,
)

MEILI_KEY = "bench-master-key"
OURS_TIMEOUT_S = 1800


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})
    env["COCO_ALLOW_HTTP"] = "true"  # the emulators speak plain http on loopback
    env["COCO_ALLOW_PRIVATE_NETWORKS"] = "true"
    env["MALLOC_ARENA_MAX"] = "2"  # as the image sets it; for every process measured, the peers' too
    for name in ("MEILI_URL", "MEILI_MASTER_KEY", "COCO_MEILI_URL", "COCO_MEILI_API_KEY", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(name, None)
    return env


class SizeRun:
    """The services for one space size, and how to measure one child process against them."""

    def __init__(self, size: int, latency_ms: float, workdir: Path, log: Any, serve_args: tuple[str, ...] = ()) -> None:
        self.size = size
        self.workdir = workdir
        self.log = log
        self.env = _env()
        self.confluence = Service(
            "confluence",
            [PYTHON, "-m", "bench.serve_space", "--pages", str(size), "--latency-ms", str(latency_ms), *serve_args],
            workdir / "confluence.log",
            env=self.env,
        )
        self.meili = Service(
            "meilisearch",
            [PYTHON, "-m", "tests.emulators.meilisearch", "--port", "0", "--master-key", MEILI_KEY],
            workdir / "meili.log",
            env=self.env,
        )
        info = json.loads(self.confluence.wait_line('"endpoint"', timeout_s=900))
        self.endpoint = str(info["endpoint"])
        self.admin = str(info["admin"])
        self.space: dict[str, int] = dict(info["space"])
        self.meili_url = self.meili.wait_line("listening").rsplit(" ", 1)[-1]
        self.token_file = workdir / "token.txt"
        self.token_file.write_text("bench-api-token\n")

    def close(self) -> None:
        self.confluence.stop()
        self.meili.stop()

    def measure(self, tool: str, scenario: str, cmd: list[str], timeout_s: float) -> tuple[Run, dict[str, Any]]:
        http_json(f"{self.admin}/reset", "POST")
        cpu0 = self.confluence.cpu_s()
        meili0 = self.meili.cpu_s()
        m = run_measured(cmd, env=self.env, timeout_s=timeout_s)
        served = http_json(f"{self.admin}/requests")
        rep = m.report
        ok = m.ok and rep.get("result") == "Succeeded"
        error = None
        if m.timed_out:
            error = f"did not finish within {timeout_s:.0f}s"
        elif not ok:
            error = str(rep.get("error") or m.error_tail())
        run = Run(
            size=self.size,
            tool=tool,
            scenario=scenario,
            ok=ok,
            seconds=rep.get("duration_seconds") if ok else None,
            process_seconds=round(m.wall_s, 3),
            requests=int(served["count"]),
            failed_requests=int(served["failed"]),
            requests_by_kind=dict(served["by_kind"]),
            maxrss_mb=round(m.maxrss_mb, 1),
            cpu_s=round(m.cpu_s, 2),
            server_cpu_s=round(self.confluence.cpu_s() - cpu0, 2),
            meili_cpu_s=round(self.meili.cpu_s() - meili0, 2),
            documents=rep.get("documents"),
            counts=rep.get("counts"),
            client_requests=rep.get("requests"),
            error=error,
        )
        (self.workdir / f"{tool}-{scenario.replace(' ', '_').replace(',', '').replace('%', 'pct')}.out").write_text(
            m.stdout + "\n--- stderr ---\n" + m.stderr
        )
        self.log(f"  {run.one_line()}")
        return run, rep


def _after(report: dict[str, Any]) -> list[str]:
    """`bench.ours` arguments for the run after the one that printed `report`: what it would have left in status."""
    args = ["--watermark", str(report["watermark"])]
    if report.get("lastPruneTime"):
        args += ["--last-prune", str(report["lastPruneTime"])]
    if report.get("sourceItems") is not None:
        args += ["--source-items", str(report["sourceItems"])]
    return args


def _datasource_file(
    path: Path,
    endpoint: str,
    *,
    blogposts: bool,
    attachments: bool,
    comments: bool = False,
    permissions: str | None = None,
) -> Path:
    from bench.ours import datasource_yaml

    yaml_text = datasource_yaml(
        endpoint, blogposts=blogposts, attachments=attachments, comments=comments, permissions=permissions
    )
    path.write_text(yaml_text)
    return path


def _due(report: dict[str, Any]) -> list[str]:
    """`_after(report)` without the recorded listing: the run that lists every id (prune interval due)."""
    return [a for a in _after(report) if a not in ("--last-prune", report.get("lastPruneTime"))]


def _incremental_chain(
    sr: SizeRun, ours: list[str], index: str, ds: Path, rep: dict[str, Any], *, comments: bool
) -> list[Run]:
    """After a full run (`rep`): unchanged, unchanged with the hourly listing, then after edits (1% of the pages,
    or of the comments); without comments also the hourly listing after labels changed without new versions."""
    unchanged, listing, edited = (
        (INC_COMMENTS_UNCHANGED, INC_COMMENTS_LISTING, INC_COMMENTS_CHANGED)
        if comments
        else (INC_UNCHANGED, INC_LISTING, INC_CHANGED)
    )
    base = [*ours, "--index", index]
    runs: list[Run] = []
    run, rep = sr.measure(OURS, unchanged, [*base, *_after(rep), str(ds)], OURS_TIMEOUT_S)
    runs.append(run)
    # The same run when the prune interval is due (or the count did not add up): every id is listed.
    run, rep = sr.measure(OURS, listing, [*base, *_due(rep), str(ds)], OURS_TIMEOUT_S)
    run.note = f"listed every id: {rep.get('pruneReason')}"
    runs.append(run)
    what = "comments" if comments else "pages"
    changed = http_json(f"{sr.admin}/{'change-comments' if comments else 'change'}?fraction=0.01", "POST")
    run, rep = sr.measure(OURS, edited, [*base, *_after(rep), str(ds)], OURS_TIMEOUT_S)
    run.note = f"{changed['changed']} {what} edited"
    runs.append(run)
    if not comments:
        relabelled = http_json(f"{sr.admin}/relabel?fraction=0.01", "POST")
        run, rep = sr.measure(OURS, INC_RELABELLED, [*base, *_due(rep), str(ds)], OURS_TIMEOUT_S)
        fetched = (run.counts or {}).get("pages")
        run.note = f"{relabelled['changed']} pages relabelled, {fetched} fetched again"
        runs.append(run)
    return runs


def run_size(
    size: int,
    latency_ms: float,
    workdir: Path,
    *,
    peers: list[str],
    peer_timeout_s: float,
    earlier: list[Run],
    log: Any,
    permissions: str | None = None,
) -> tuple[list[Run], dict[str, int]]:
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"== {size} pages, {latency_ms:g} ms latency: seeding the emulator")
    t0 = time.monotonic()
    sr = SizeRun(size, latency_ms, workdir, log)
    log(f"   space {sr.space} ready in {time.monotonic() - t0:.1f}s")
    runs: list[Run] = []
    try:
        ds_full = _datasource_file(
            workdir / "datasource-full.yaml", sr.endpoint, blogposts=True, attachments=True, permissions=permissions
        )
        ds_pages = _datasource_file(
            workdir / "datasource-pages.yaml", sr.endpoint, blogposts=False, attachments=False, permissions=permissions
        )
        meili = ["--meili-url", sr.meili_url, "--meili-key", MEILI_KEY]
        cli = [PYTHON, "-m", "coco_operator.cli", "sync", "--json", "-q", "--token-file", str(sr.token_file), *meili]
        ours = [PYTHON, "-m", "bench.ours", *meili]

        # Full sync with the CLI; each later run starts from what the one before left in status (`_after`).
        run, rep = sr.measure(OURS, FULL, [*cli, "--index", "bench_full", str(ds_full)], OURS_TIMEOUT_S)
        runs.append(run)
        if run.ok:
            runs += _incremental_chain(sr, ours, "bench_full", ds_full, rep, comments=False)
        # The same Datasource with comments on, in an index of its own.
        ds_comments = _datasource_file(
            workdir / "datasource-comments.yaml",
            sr.endpoint,
            blogposts=True,
            attachments=True,
            comments=True,
            permissions=permissions,
        )
        cmd = [*cli, "--index", "bench_comments", str(ds_comments)]
        run, rep = sr.measure(OURS, FULL_COMMENTS, cmd, OURS_TIMEOUT_S)
        runs.append(run)
        if run.ok:
            runs += _incremental_chain(sr, ours, "bench_comments", ds_comments, rep, comments=True)
        run, _ = sr.measure(OURS, PAGES, [*cli, "--index", "bench_pages", str(ds_pages)], OURS_TIMEOUT_S)
        runs.append(run)
        run, _ = sr.measure(OURS, PAGES_NOSINK, [*ours, "--no-sink", str(ds_pages)], OURS_TIMEOUT_S)
        runs.append(run)

        for peer in peers:
            before = [r for r in earlier if r.tool == peer and r.ok and r.seconds]
            if before:
                prev = max(before, key=lambda r: r.size)
                predicted = (prev.seconds or 0) * size / prev.size
                if predicted > peer_timeout_s:
                    skipped = Run.skipped_run(
                        size,
                        peer,
                        PEER_LOAD,
                        f"not run: {prev.seconds:.0f}s at {prev.size:,} pages predicts ~{predicted:.0f}s, over the "
                        f"{peer_timeout_s:.0f}s limit (--peer-timeout)",
                    )
                    log(f"  {skipped.one_line()}")
                    runs.append(skipped)
                    continue
            cmd = [PYTHON, "-m", "bench.peers", peer, "--endpoint", sr.endpoint, "--max-items", str(size * 2 + 100)]
            run, rep = sr.measure(peer, PEER_LOAD, cmd, peer_timeout_s * 1.5)
            run.versions = rep.get("versions")
            if run.ok and rep.get("documents") != sr.space["pages"]:
                run.note = f"loaded {rep.get('documents')} documents for {sr.space['pages']} pages"
            runs.append(run)
    finally:
        sr.close()
    return runs, sr.space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="coco-operator benchmark: sync vs LangChain/LlamaIndex on the Confluence emulator, and "
        "operator scale on a real API server."
    )
    parser.add_argument("--pages", default="1000,10000", help="comma-separated space sizes (default 1000,10000)")
    parser.add_argument("--latency-ms", type=float, default=50, help="per-request latency of the emulated site")
    parser.add_argument("--skip-peers", action="store_true", help="measure only coco-operator's sync")
    parser.add_argument("--skip-operator", action="store_true", help="skip the operator scale benchmark")
    parser.add_argument("--datasources", type=int, default=500, help="Datasources for the operator scale run")
    parser.add_argument("--steady", type=int, default=25, help="of them, applied one at a time for apply-to-Ready")
    parser.add_argument("--idle-s", type=float, default=60, help="idle measurement of the operator, seconds")
    parser.add_argument("--peer-timeout", type=float, default=600, help="skip a peer predicted to take longer (s)")
    parser.add_argument("--out", help="where benchmarks.md and bench-sync.png go (default docs/; --smoke: workdir)")
    parser.add_argument("--workdir", help="logs and results.json (default: a new temporary directory)")
    parser.add_argument(
        "--permissions",
        choices=["sync", "skipRestricted", "none"],
        help="spec.permissions.mode of our Datasources (default: the product's default, sync)",
    )
    parser.add_argument("--smoke", action="store_true", help="100 pages, 5 ms latency, 20 Datasources, 10 s idle")
    parser.add_argument("--from-json", help="only render the table, docs and chart from an earlier results.json")
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, Ctrl-C in make) unwinds normally, so every started process is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.from_json and not args.workdir:
        args.workdir = str(Path(args.from_json).parent)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="coco-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.pages, args.latency_ms, args.datasources, args.steady, args.idle_s = "100", 5.0, 20, 5, 10.0
    out = Path(args.out) if args.out else (workdir if args.smoke else REPO / "docs")

    def log(msg: str) -> None:
        print(msg, flush=True)

    if args.from_json:
        results = Results.load(Path(args.from_json))
    else:
        sizes = [int(s) for s in args.pages.split(",") if s.strip()]
        results = Results(
            machine=machine_info(),
            latency_ms=args.latency_ms,
            smoke=args.smoke,
            started=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        peers = [] if args.skip_peers else ["langchain", "langchain-default", "llamaindex"]
        log(f"coco-operator benchmark; work directory {workdir}")
        for size in sorted(sizes):
            runs, space = run_size(
                size,
                args.latency_ms,
                workdir / f"size-{size}",
                peers=peers,
                peer_timeout_s=args.peer_timeout,
                earlier=results.runs,
                log=log,
                permissions=args.permissions,
            )
            results.runs.extend(runs)
            results.spaces[str(size)] = space
            results.save(workdir / "results.json")
        if not args.skip_operator:
            log(f"== operator scale: {args.datasources} Datasources")
            scale = run_scale(
                workdir / "operator-scale",
                datasources=args.datasources,
                steady=args.steady,
                idle_s=args.idle_s,
                latency_ms=args.latency_ms,
                log=log,
            )
            results.scale = scale.as_dict()
            if scale.error:
                log(f"   operator scale: {scale.error}")
        results.finished = datetime.now(UTC).isoformat(timespec="seconds")
        results.machine["loadavg_end"] = list(os.getloadavg())
        results.save(workdir / "results.json")

    print()
    print(report.text_table(results))
    print()
    for goal in report.goals(results):
        print(f"[{goal.mark}] {goal.name}: {goal.measured}")
    out.mkdir(parents=True, exist_ok=True)
    chart = out / "bench-sync.png"
    report.chart(results, chart)
    (out / "benchmarks.md").write_text(report.markdown(results, chart.name))
    print(f"\nwrote {out / 'benchmarks.md'}, {chart}; raw results in {workdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
