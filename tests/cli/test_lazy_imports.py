"""`coco-operator --help` (and each subcommand's) parses without loading what only some commands need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Loaded by the commands that use them: the operator (kopf, kubernetes), a sync (meilisearch, the document parsers).
HEAVY = ("openpyxl", "pypdf", "docx", "pptx", "kopf", "kubernetes", "meilisearch", "pydantic", "yaml", "httpx")

PROBE = """
import json, sys
from coco_operator import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(m.split(".")[0] for m in sys.modules)}), file=sys.stderr)
"""


def _loaded(*args: str) -> tuple[object, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


@pytest.mark.parametrize("command", [[], ["run"], ["crds"], ["sync"], ["sync-now"], ["convert"]])
def test_help_loads_no_heavy_module(command: list[str]) -> None:
    code, modules = _loaded(*command, "--help")
    assert code == 0
    assert not modules & set(HEAVY), f"--help loaded {sorted(modules & set(HEAVY))}"


def test_the_probe_sees_what_a_command_loads() -> None:
    # `crds --check` does its work: the API models (pydantic) and YAML are loaded then, so the probe can tell.
    code, modules = _loaded("crds", "--check", "/nonexistent")
    assert code == 1 and {"pydantic", "yaml"} <= modules
