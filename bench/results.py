"""What a benchmark run measured, and the machine it ran on; saved as JSON so docs can be re-rendered."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.proc import REPO

OURS = "coco-operator"
FULL = "full sync (pages, blog posts, attachments)"
INC_UNCHANGED = "incremental sync, nothing changed"
INC_LISTING = "incremental sync, nothing changed, hourly full listing"
INC_CHANGED = "incremental sync, 1% of pages changed"
PAGES = "full sync, pages only"
PAGES_NOSINK = "full sync, pages only, no sink"
FULL_COMMENTS = "full sync with comments (pages, blog posts, attachments, comments)"
INC_COMMENTS_UNCHANGED = "incremental sync with comments, nothing changed"
INC_COMMENTS_LISTING = "incremental sync with comments, nothing changed, hourly full listing"
INC_COMMENTS_CHANGED = "incremental sync with comments, 1% of comments edited"
INC_RELABELLED = "incremental sync, hourly full listing, labels of 1% of pages changed without a new version"
INCREMENTAL = (
    INC_UNCHANGED,
    INC_LISTING,
    INC_CHANGED,
    INC_COMMENTS_UNCHANGED,
    INC_COMMENTS_LISTING,
    INC_COMMENTS_CHANGED,
    INC_RELABELLED,
)
PEER_LOAD = "load pages"
PEER_LABELS = {
    "langchain": "LangChain ConfluenceLoader (include_restricted_content=True)",
    "langchain-default": "LangChain ConfluenceLoader (defaults: restrictions request per page)",
    "llamaindex": "LlamaIndex ConfluenceReader",
}


@dataclass
class Run:
    size: int
    tool: str
    scenario: str
    ok: bool
    seconds: float | None  # the sync's / load's own time, measured inside the process
    process_seconds: float  # the whole child process, interpreter start and imports included
    requests: int | None  # Confluence requests, counted by the emulator
    failed_requests: int = 0
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    maxrss_mb: float | None = None
    cpu_s: float | None = None
    server_cpu_s: float | None = None  # the Confluence emulator's CPU during the run
    meili_cpu_s: float | None = None  # the Meilisearch emulator's CPU during the run
    documents: int | None = None
    counts: dict[str, int] | None = None
    client_requests: int | None = None
    error: str | None = None
    note: str | None = None
    skipped: str | None = None
    versions: dict[str, str] | None = None

    @classmethod
    def skipped_run(cls, size: int, tool: str, scenario: str, why: str) -> Run:
        return cls(size=size, tool=tool, scenario=scenario, ok=False, seconds=None, process_seconds=0.0,
                   requests=None, skipped=why)  # fmt: skip

    @property
    def docs_per_s(self) -> float | None:
        """Documents produced per second, for full syncs and peer loads (not incremental runs)."""
        if not self.ok or not self.seconds or not self.documents:
            return None
        if self.scenario in INCREMENTAL:
            return None
        return self.documents / self.seconds

    def one_line(self) -> str:
        if self.skipped:
            return f"{self.tool}: {self.scenario}: {self.skipped}"
        if not self.ok:
            return f"{self.tool}: {self.scenario}: FAILED ({self.error})"
        return (
            f"{self.tool}: {self.scenario}: {self.seconds:.2f}s, {self.requests} requests, "
            f"{self.maxrss_mb:.0f} MB peak RSS, {self.documents} documents"
        )


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    dirty = bool(_git("status", "--porcelain"))
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": _git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else ""),
        "loadavg_start": list(os.getloadavg()),
    }


@dataclass
class Results:
    machine: dict[str, Any]
    latency_ms: float
    smoke: bool = False
    started: str = ""
    finished: str = ""
    runs: list[Run] = field(default_factory=list)
    spaces: dict[str, dict[str, int]] = field(default_factory=dict)
    scale: dict[str, Any] | None = None

    @property
    def sizes(self) -> list[int]:
        return sorted({r.size for r in self.runs})

    def find(self, size: int, tool: str, scenario: str) -> Run | None:
        return next((r for r in self.runs if r.size == size and r.tool == tool and r.scenario == scenario), None)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Results:
        raw = json.loads(path.read_text())
        runs = [Run(**r) for r in raw.pop("runs", [])]
        return cls(runs=runs, **raw)
