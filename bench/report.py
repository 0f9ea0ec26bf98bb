"""Turn benchmark results into a terminal table, goal verdicts, docs/benchmarks.md and a chart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    PEER_LABELS,
    PEER_LOAD,
    Results,
    Run,
)

PEERS = tuple(PEER_LABELS)
SCENARIO_ORDER = (
    FULL,
    INC_UNCHANGED,
    INC_LISTING,
    INC_CHANGED,
    INC_RELABELLED,
    FULL_COMMENTS,
    INC_COMMENTS_UNCHANGED,
    INC_COMMENTS_LISTING,
    INC_COMMENTS_CHANGED,
    PAGES,
    PAGES_NOSINK,
    PEER_LOAD,
)
TOOL_ORDER = (OURS, *PEERS)


@dataclass
class Goal:
    name: str
    target: str
    measured: str
    met: bool | None

    @property
    def mark(self) -> str:
        return "n/a" if self.met is None else ("met" if self.met else "MISSED")


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _i(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def ordered_runs(results: Results) -> list[Run]:
    def key(r: Run) -> tuple[int, int, int]:
        tool = TOOL_ORDER.index(r.tool) if r.tool in TOOL_ORDER else 99
        scenario = SCENARIO_ORDER.index(r.scenario) if r.scenario in SCENARIO_ORDER else 99
        return (r.size, tool, scenario)

    return sorted(results.runs, key=key)


def _row(r: Run) -> list[str]:
    label = PEER_LABELS.get(r.tool, r.tool)
    if r.skipped:
        status = r.skipped
    elif not r.ok:
        status = f"FAILED: {(r.error or '').splitlines()[-1] if r.error else ''}"[:160]
    else:
        status = r.note or ""
    return [
        f"{r.size:,}",
        label if r.tool != OURS else OURS,
        r.scenario,
        _f(r.seconds, 2),
        _i(r.requests) if (r.ok or r.requests) else "-",
        _f(r.maxrss_mb, 0),
        _i(r.documents),
        _f(r.docs_per_s, 0),
        _f(r.cpu_s, 1),
        _f(r.server_cpu_s, 1),
        status,
    ]


HEADER = [
    "pages",
    "tool",
    "scenario",
    "time (s)",
    "requests",
    "peak RSS (MB)",
    "documents",
    "docs/s",
    "CPU (s)",
    "emulator CPU (s)",
    "note",
]


def text_table(results: Results) -> str:
    rows = [HEADER, *(_row(r) for r in ordered_runs(results))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) if i < 3 else row[i].rjust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join(cells) + ("  " + row[-1] if row[-1] else ""))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    scale = results.scale
    if scale:
        lines.append("")
        lines.extend(scale_lines(scale))
    return "\n".join(lines)


def scale_lines(scale: dict[str, Any]) -> list[str]:
    if scale.get("error") and scale.get("idle_rss_mb") is None:
        return [f"operator scale: FAILED: {scale['error']}"]
    return [
        f"operator scale ({scale['datasources']} Datasources, interval 1h):",
        f"  RSS at start {_f(scale.get('baseline_rss_mb'), 0)} MB; idle {_f(scale.get('idle_rss_mb'), 0)} MB "
        f"(max {_f(scale.get('idle_rss_max_mb'), 0)} MB); idle CPU {_f(scale.get('idle_cpu_s_per_min'), 2)} s/min; "
        f"highest RSS while the Datasources were applied and synced {_f(scale.get('peak_rss_mb'), 0)} MB",
        f"  burst of {scale['datasources'] - scale['steady_count']}: all Ready after "
        f"{_f(scale.get('burst_all_ready_s'))} s (apply-to-Ready median {_f(scale.get('burst_ready_median_s'))} s, "
        f"p95 {_f(scale.get('burst_ready_p95_s'))} s, queueing for a run slot included)",
        f"  one at a time ({scale['steady_count']}): apply-to-Ready median "
        f"{_f(scale.get('steady_ready_median_s'), 2)} s, "
        f"p95 {_f(scale.get('steady_ready_p95_s'), 2)} s; excluding the sync: median "
        f"{_f(scale.get('steady_excl_sync_median_s'), 2)} s, p95 {_f(scale.get('steady_excl_sync_p95_s'), 2)} s",
    ]


def _fastest_peer(results: Results, size: int) -> Run | None:
    peers = [r for r in results.runs if r.size == size and r.tool in PEERS and r.ok and r.seconds]
    return min(peers, key=lambda r: r.seconds or 0) if peers else None


def goals(results: Results) -> list[Goal]:
    out: list[Goal] = []
    at = f" at {results.latency_ms:g} ms latency"
    # 1. full sync vs the fastest peer
    parts, verdicts = [], []
    for size in results.sizes:
        ours, nosink, peer = (
            results.find(size, OURS, PAGES),
            results.find(size, OURS, PAGES_NOSINK),
            _fastest_peer(results, size),
        )
        if not (ours and ours.ok and ours.seconds and peer and peer.seconds):
            continue
        ratio = peer.seconds / ours.seconds
        verdicts.append(ratio >= 5)
        text = f"{size:,} pages: {ratio:.2f}x ({ours.seconds:.1f} s vs {peer.tool} {peer.seconds:.1f} s"
        if nosink and nosink.ok and nosink.seconds:
            text += f"; without the sink {peer.seconds / nosink.seconds:.2f}x"
        parts.append(text + ")")
    out.append(
        Goal(
            "Full sync at least 5x faster than the fastest peer" + at,
            ">= 5x (pages only, same content as the peers)",
            "; ".join(parts) or "no peer measured",
            all(verdicts) if verdicts else None,
        )
    )
    # 2. unchanged incremental: requests
    parts, verdicts = [], []
    for size in results.sizes:
        full, inc = results.find(size, OURS, FULL), results.find(size, OURS, INC_UNCHANGED)
        if full and inc and full.ok and inc.ok and full.requests and inc.requests is not None:
            pct = 100 * inc.requests / full.requests
            verdicts.append(pct < 2)
            text = f"{size:,} pages: {pct:.1f}% ({inc.requests} of {full.requests} requests"
            if full.requests < 50:
                floor = 100 / full.requests
                text += f"; 2% is under one request: the least any incremental run can send is {floor:.1f}%"
            listing = results.find(size, OURS, INC_LISTING)
            if listing and listing.ok and listing.requests is not None:
                share = 100 * listing.requests / full.requests
                text += f"; the hourly run that lists every id: {listing.requests}, {share:.1f}%"
            parts.append(text + ")")
    out.append(
        Goal(
            "Unchanged incremental sync under 2% of the requests of a full sync",
            "< 2%",
            "; ".join(parts) or "not measured",
            all(verdicts) if verdicts else None,
        )
    )
    # 3. memory flat with space size
    fulls = [r for r in (results.find(s, OURS, FULL) for s in results.sizes) if r and r.ok and r.maxrss_mb]
    if fulls:
        small, large = fulls[0], fulls[-1]
        under = all((r.maxrss_mb or 0) < 250 for r in fulls)
        rss = ", ".join(f"{r.size:,} pages {r.maxrss_mb:.0f} MB" for r in fulls)
        if len(fulls) > 1:
            ratio = (large.maxrss_mb or 0) / (small.maxrss_mb or 1)
            measured = f"{rss}: {ratio:.2f}x"
            met: bool | None = ratio <= 1.5 and under
        else:
            measured, met = f"{rss} (one size only: flatness not measured)", (None if under else False)
        out.append(Goal("Peak memory flat with space size, under 250 MB", "<= 1.5x, < 250 MB", measured, met))
    # 4 + 5: operator scale
    scale = results.scale
    if scale and scale.get("idle_rss_mb") is not None:
        n = scale["datasources"]
        rss, cpu = scale["idle_rss_mb"], scale["idle_cpu_s_per_min"]
        out.append(
            Goal(
                f"Idle operator with {n} Datasources: under 300 MB RSS and under 2 CPU s/min",
                "< 300 MB, < 2 s/min" + (" (goal is for 500 Datasources)" if n != 500 else ""),
                f"{rss:.0f} MB RSS, {cpu:.2f} CPU s/min",
                rss < 300 and cpu < 2,
            )
        )
    if scale and scale.get("steady_excl_sync_p95_s") is not None:
        p95 = scale["steady_excl_sync_p95_s"]
        out.append(
            Goal(
                "Apply-to-Ready p95 under 5 s (excluding the sync's own time)",
                "< 5 s",
                f"p95 {p95:.2f} s, median {scale['steady_excl_sync_median_s']:.2f} s "
                f"(with the sync: p95 {scale['steady_ready_p95_s']:.2f} s)",
                p95 < 5,
            )
        )
    elif scale:
        out.append(Goal("Apply-to-Ready p95 under 5 s", "< 5 s", f"not measured: {scale.get('error')}", None))
    return out


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results: Results, chart_name: str) -> str:
    m = results.machine
    sizes = ", ".join(f"{s:,}" for s in results.sizes)
    load = m.get("loadavg_start", [])
    load_end = m.get("loadavg_end", [])
    spaces = "; ".join(
        f"{int(k):,} pages: {v['pages']:,} pages, {v['blogposts']:,} blog posts, {v['attachments']:,} attachments, "
        f"bodies {v['avg_body_bytes']:,} bytes on average"
        for k, v in sorted(results.spaces.items(), key=lambda kv: int(kv[0]))
    )
    versions = next((r.versions for r in results.runs if r.versions), None) or {}
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m bench.run` (`make bench`); do not edit by hand. -->",
        "",
        ("**Smoke run** (not representative). " if results.smoke else "")
        + f"Measured {results.started} on {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('ram_gib')} GiB RAM, "
        f"Linux {m.get('kernel')}, Python {m.get('python')}, commit {m.get('commit')}. "
        f"Load average at start {', '.join(f'{x:.2f}' for x in load)}"
        + (f", at the end {', '.join(f'{x:.2f}' for x in load_end)}" if load_end else "")
        + " (other work on the machine shares its CPUs).",
        "",
        f"Emulated Confluence Cloud with {results.latency_ms:g} ms latency per request; space sizes {sizes} "
        f"({spaces}).",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                                   # installs the `bench` extra, runs everything, writes docs/",
        ".venv/bin/python -m bench.run --smoke         # 100 pages, 5 ms latency, 20 Datasources: under a minute",
        ".venv/bin/python -m bench.run --pages 1000 --latency-ms 50 --skip-operator --out /tmp/bench",
        "```",
        "",
        "Each measured sync or load runs in its own process, against a fresh Confluence emulator process "
        "(`bench/serve_space.py`: the generated space of `bench/space.py`) and, for coco-operator, a fresh "
        "Meilisearch emulator process. *Time* is the sync's (or load's) own time measured inside that process "
        "(interpreter start and imports excluded); *requests* are counted by the Confluence emulator; *CPU* is the "
        "process's and its children's (wait4); *peak RSS* is the process's own peak or, if higher, the largest sum "
        "over it and its child processes seen while it ran; *emulator CPU* is what the Confluence emulator spent "
        "serving the run "
        "(it is single-threaded, so it also adds to the wall time of concurrent clients).",
        "",
        "## Goals",
        "",
        _md_table(
            ["goal", "target", "measured", "verdict"],
            [[g.name, g.target, g.measured, f"**{g.mark}**"] for g in goals(results)],
        ),
        "",
        "## Syncs",
        "",
        f"![time and peak memory against space size]({chart_name})",
        "",
        _md_table(HEADER, [_row(r) for r in ordered_runs(results)]),
        "",
        "Scenarios: *full sync (pages, blog posts, attachments)* is `coco-operator sync` of a Datasource with blog "
        "posts and attachments enabled, into Meilisearch; *incremental* runs use the previous run's watermark "
        "(`bench/ours.py`, as the operator does); *pages only* is the same content the peers load; *no sink* maps "
        "every document and drops it (the peers do not write to a search engine). Peers load pages with attachments "
        "off. *With comments* is the same Datasource with `enable_comments` (footer and inline comments and replies "
        "on about a third of the pages, each its own document); *labels of 1% of pages changed without a new "
        "version* is the hourly run that lists every id after such edits (the listing carries labels and ancestors, "
        "and the pages whose metadata differs are fetched again).",
        "",
    ]
    if versions:
        out += ["Peer versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]
    out += ["### Requests by kind", ""]
    kinds = sorted({k for r in results.runs for k in r.requests_by_kind})
    rows = [
        [f"{r.size:,}", PEER_LABELS.get(r.tool, r.tool), r.scenario, *(_i(r.requests_by_kind.get(k)) for k in kinds)]
        for r in ordered_runs(results)
        if r.requests_by_kind
    ]
    out += [_md_table(["pages", "tool", "scenario", *kinds], rows), ""]
    if results.scale:
        lines = scale_lines(results.scale)
        head = lines[0][:1].upper() + lines[0][1:]
        out += ["## Operator scale", "", head, "", *("- " + line.strip() for line in lines[1:]), ""]
        out += [
            "One operator process (`coco-operator run`, all namespaces) against a real kube-apiserver and etcd "
            "(`tests/harness`), the Meilisearch emulator and the Confluence emulator with a "
            f"{results.scale.get('documents_per_datasource')}-page space; every Datasource syncs it "
            "(interval 1h). The burst applies Datasources 25 per `kubectl apply`; the rest are applied one at a "
            "time, apply-to-Ready measured from the start of `kubectl apply` to `Ready=True` (polled every 50 ms), "
            "and minus `status.lastSyncDuration`. Idle: RSS and CPU of the operator process with nothing to do.",
            "",
        ]
    out += ["## Notes", "", *(f"- {n}" for n in notes_for(results)), ""]
    notes = [r for r in ordered_runs(results) if r.skipped or not r.ok]
    if notes:
        out += ["## Not measured or failed", ""]
        out += [f"- {r.size:,} pages, {PEER_LABELS.get(r.tool, r.tool)}, {r.scenario}: "
                f"{r.skipped or r.error}".replace("\n", " ") for r in notes]  # fmt: skip
        out.append("")
    return "\n".join(out)


def notes_for(results: Results) -> list[str]:
    """Caveats that go with the figures, with the numbers of this run where they apply."""
    out = []
    big = results.sizes[-1] if results.sizes else None
    ours = results.find(big, OURS, PAGES) if big else None
    lc = results.find(big, "langchain", PEER_LOAD) if big else None
    if ours and ours.ok and lc and lc.ok:
        out.append(
            f"The Confluence emulator is one Python process on the same CPUs, serving one request at a time (a "
            f"search by ids looks only at those ids; any other search evaluates its CQL over the whole space): at "
            f"{big:,} pages it spent {ours.server_cpu_s:.1f} CPU s serving coco-operator's {ours.requests} requests "
            f"(pages only) and {lc.server_cpu_s:.1f} s serving LangChain's {lc.requests} `/content` listings. This "
            "adds to the wall time of a client that sends several requests at once, as coco-operator does (8), "
            "and it competes with the client for the same 2 CPUs."
        )
    out += [
        "LangChain with its defaults (`include_restricted_content=False`) asks "
        "`/rest/api/content/{id}/restriction/byOperation` for every page; the emulator answers it (the generated "
        "pages carry no restrictions). The goal compares against "
        "the faster `include_restricted_content=True` (everything the account can see, as coco-operator indexes).",
        "LlamaIndex's `ConfluenceReader.load_data(space_key=...)` needs `max_num_results`: without it the reader "
        "passes `limit=None` to atlassian-python-api 4.x's `get_all_pages_from_space`, which fails with "
        "`TypeError: '<=' not supported between instances of 'int' and 'NoneType'`. The benchmark passes the space "
        "size. llama-index-readers-confluence 0.8.0 requires atlassian-python-api < 5, hence 4.0.7.",
        "The `sync` command has no watermark option, so the incremental runs call `run_sync` with what the "
        "previous run would have left in status (`bench/ours.py`: watermark, `lastPruneTime`, `sourceItems`). The "
        "*hourly full listing* run is the same unchanged run without a recorded listing: what every run costs once "
        "an hour (`pruneIntervalSeconds`), or when the scope's count shows that something left.",
        "Every measured process, the peers' too, runs with `MALLOC_ARENA_MAX=2`, as the image sets it (glibc's "
        "per-thread malloc arenas otherwise add about 30 MB to a 10,000-page sync).",
        "coco-operator converts pages to text in 2 worker processes (`COCO_TEXT_WORKERS`) when a run has 500 or "
        "more to fetch; its *peak RSS* is the sum over the sync process and its workers (sampled every 20 ms), and "
        "its *CPU* includes the workers'.",
    ]
    small = [r.maxrss_mb for r in results.runs if r.tool == OURS and r.ok and r.maxrss_mb]
    if small:
        out.append(
            f"Peak RSS includes the interpreter and its imports: the lightest coco-operator run (an incremental sync "
            f"that fetched next to nothing) peaked at {min(small):.0f} MB."
        )
    return out


def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    series = [
        (OURS, FULL, "coco-operator: full sync (pages, blog posts, attachments)", "#1f4e79"),
        (OURS, PAGES, "coco-operator: full sync, pages only", "#2e75b6"),
        (OURS, PAGES_NOSINK, "coco-operator: pages only, no sink", "#9dc3e6"),
        ("langchain", PEER_LOAD, "LangChain (include_restricted_content=True)", "#c55a11"),
        ("langchain-default", PEER_LOAD, "LangChain (defaults)", "#f4b183"),
        ("llamaindex", PEER_LOAD, "LlamaIndex ConfluenceReader", "#548235"),
    ]
    sizes = results.sizes
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 5.5))
    for tool, scenario, label, color in series:
        points = [
            (size, r.seconds, r.maxrss_mb or 0.0)
            for size in sizes
            if (r := results.find(size, tool, scenario)) is not None and r.ok and r.seconds
        ]
        if not points:
            continue
        xs = [p[0] for p in points]
        style = {"color": color, "marker": "o", "linewidth": 2 if tool == OURS else 1.5, "label": label}
        if tool != OURS:
            style["linestyle"] = "--"
        ax_t.plot(xs, [p[1] for p in points], **style)
        ax_m.plot(xs, [p[2] for p in points], **style)
        for x, t, mem in points:
            ax_t.annotate(f"{t:.1f}" if t < 100 else f"{t:.0f}", (x, t), textcoords="offset points", xytext=(6, -3),
                          fontsize=7, color=color)  # fmt: skip
            ax_m.annotate(f"{mem:.0f}", (x, mem), textcoords="offset points", xytext=(6, -3), fontsize=7, color=color)
    for ax in (ax_t, ax_m):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("pages in the space")
        ax.grid(alpha=0.3)
        if len(sizes) == 1:
            ax.set_xlim(sizes[0] / 2, sizes[0] * 2)
        else:
            ax.set_xlim(sizes[0] / 1.5, sizes[-1] * 1.8)
    ax_t.set_yscale("log")
    ax_t.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_t.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_t.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax_t.set_ylabel("time (s, log scale)")
    ax_t.set_title(f"Full sync / load time ({results.latency_ms:g} ms per request)")
    ax_m.set_ylabel("peak RSS (MB)")
    top = max((max(line.get_ydata()) for line in ax_m.get_lines()), default=0)
    ax_m.set_ylim(0, max(270.0, float(top) * 1.15))
    ax_m.axhline(250, color="#a00", linestyle=":", linewidth=1)
    ax_m.text(sizes[0], 252, "250 MB goal", color="#a00", fontsize=8, va="bottom")
    ax_m.set_title("Peak memory of the process")
    handles, labels = ax_t.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))
    m = results.machine
    fig.suptitle(
        f"coco-operator vs peers on the Confluence emulator — {m.get('nproc')} CPUs, {m.get('cpu')}, "
        f"commit {str(m.get('commit', '')).split(' ')[0]}" + (" (smoke run)" if results.smoke else ""),
        fontsize=10,
    )
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.25, wspace=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)
