"""Processes for the benchmark: measured children (wall time, peak RSS, CPU) and background services."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class Measured:
    """One child process run to completion: what the kernel says about it, and the JSON it printed last."""

    cmd: list[str]
    returncode: int
    wall_s: float
    maxrss_mb: float
    cpu_s: float
    stdout: str
    stderr: str
    timed_out: bool = False
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def error_tail(self, lines: int = 8) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


def _last_json(text: str) -> dict[str, Any]:
    """The last line of `text` that parses as a JSON object, or the whole text if it is one JSON document."""
    with contextlib.suppress(ValueError):
        whole = json.loads(text)
        if isinstance(whole, dict):
            return whole
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    return obj
    return {}


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _tree_rss_kib(pid: int) -> int:
    """RSS of `pid` and all its descendants now (text workers are child processes of a sync).

    A child that still runs its parent's command line is being spawned (between vfork and exec it shares the
    parent's memory and reports the parent's RSS): it is skipped rather than counted twice.
    """
    total, todo = 0, [(pid, b"")]
    while todo:
        current, parent_cmd = todo.pop()
        cmd = _cmdline(current)
        if parent_cmd and cmd == parent_cmd:
            continue
        total += _rss_kib(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as fh:
                todo.extend((int(child), cmd) for child in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_measured(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout_s: float = 1800) -> Measured:
    """Run `cmd` and reap it with wait4: CPU is the child's and its children's.

    Peak RSS is the larger of the child's own peak (wait4) and the highest sum over the child and its descendants
    seen by sampling every 20 ms, so worker processes count, added to the main process, not hidden behind it.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=REPO, start_new_session=True)
        timed_out = False
        tree_peak_kib = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree_peak_kib = max(tree_peak_kib, _tree_rss_kib(proc.pid))
            if time.monotonic() - t0 > timeout_s:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return Measured(
        cmd=list(cmd),
        returncode=proc.returncode,
        wall_s=wall,
        maxrss_mb=max(usage.ru_maxrss, tree_peak_kib) / 1024,  # KiB on Linux
        cpu_s=usage.ru_utime + usage.ru_stime,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        report=_last_json(stdout),
    )


class Service:
    """A background process that prints a line containing `ready` when it serves; stopped with SIGTERM."""

    def __init__(self, name: str, cmd: Sequence[str], log: Path, *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            list(cmd), stdout=self._out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )

    def wait_line(self, needle: str, timeout_s: float = 300) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                if needle in line:
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not print {needle!r} within {timeout_s}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only: never via a proxy


def http_json(url: str, method: str = "GET", timeout_s: float = 60) -> dict[str, Any]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with _OPENER.open(req, timeout=timeout_s) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data
