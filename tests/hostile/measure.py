"""What a hostile case cost: wall time and peak RSS of the process tree that met it. The operation runs in a child
process of its own, so the hostile server (a thread of the test process) does not count; the child reports its own
peak (VmHWM, which starts afresh at exec) and its descendants are sampled from /proc as bench/proc.py does.
`pytest -s` shows the figures."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.proc import _tree_rss_kib

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ChildRun:
    wall_s: float
    peak_mb: float
    report: dict[str, Any]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    return env


def _run(spec: dict[str, Any], timeout_s: float) -> ChildRun:
    own_cmd = Path("/proc/self/cmdline").read_bytes()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        cwd=REPO,
    )
    peak_kib = 0
    while proc.poll() is None:
        try:
            exec_done = Path(f"/proc/{proc.pid}/cmdline").read_bytes() != own_cmd
        except OSError:
            exec_done = False
        if exec_done:  # before exec the child still shares (and reports) the test process's memory
            peak_kib = max(peak_kib, _tree_rss_kib(proc.pid))
        if time.monotonic() - t0 > timeout_s:
            proc.kill()
            break
        time.sleep(0.01)
    out, err = proc.communicate()
    wall = time.monotonic() - t0
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    return ChildRun(wall, max(peak_kib, int(report.get("hwm_kib", 0))) / 1024, report)


@functools.cache
def baseline_mb() -> float:
    """Peak RSS of a child that only imports what the cases use: what every case starts from."""
    return _run({"op": "noop"}, 60).peak_mb


def in_child(name: str, spec: dict[str, Any], timeout_s: float = 120) -> tuple[ChildRun, float]:
    """Run `spec` in a child; the run and how much its peak RSS grew over the idle child's (MB)."""
    run = _run(spec, timeout_s)
    grew = run.peak_mb - baseline_mb()
    print(
        f"\n[hostile] {name}: {run.wall_s:.2f}s wall, peak RSS {run.peak_mb:.0f} MB (+{grew:.0f} over an idle "
        f"child), outcome {run.report.get('reason') or 'ok'}"
    )
    return run, grew
