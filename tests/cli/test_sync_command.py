"""`coco-operator sync FILE`: one run outside the cluster, through the real CLI process and real HTTP."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import meilisearch
import pytest
import yaml

from tests.emulators.confluence import ConfluenceEmulator, ConfluenceState, seed_demo
from tests.emulators.meilisearch import MeiliEmulator

pytestmark = pytest.mark.meili


@pytest.fixture(scope="module")
def meili_target() -> Iterator[tuple[str, str]]:
    url, key = os.environ.get("MEILI_URL"), os.environ.get("MEILI_MASTER_KEY")
    if url and key:
        yield url, key
        return
    with MeiliEmulator(master_key="cli-key") as emu:
        yield emu.url, "cli-key"


@pytest.fixture(scope="module")
def confluence() -> Iterator[ConfluenceEmulator]:
    state = ConfluenceState()
    seed_demo(state)
    with ConfluenceEmulator(state, edition="cloud") as emu:
        yield emu


def _datasource_file(tmp_path: Path, endpoint: str, **config: object) -> Path:
    body = {
        "apiVersion": "coco.rs/v1alpha1",
        "kind": "Datasource",
        "metadata": {"name": "eng-wiki", "namespace": "docs"},
        "spec": {
            "name": "My Confluence Wiki",
            "connector": {
                "id": "confluence",
                "config": {
                    "endpoint": endpoint,
                    "username": "demo@example.com",
                    "tokenSecretRef": {"name": "confluence-token"},
                    "space": "DOCS",
                    **config,
                },
            },
        },
    }
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("MEILI_URL", "MEILI_MASTER_KEY")}
    full_env["COCO_ALLOW_HTTP"] = "true"  # the emulators speak plain http on loopback
    full_env["COCO_ALLOW_PRIVATE_NETWORKS"] = "true"
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "coco_operator.cli", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_sync_json_summary_and_index(
    tmp_path: Path, confluence: ConfluenceEmulator, meili_target: tuple[str, str]
) -> None:
    url, key = meili_target
    index = f"cli_{secrets.token_hex(4)}"
    token = tmp_path / "token"
    token.write_text("demo-token\n")
    path = _datasource_file(tmp_path, confluence.endpoint, enable_blogposts=True)
    proc = _run(
        "sync", str(path), "--token-file", str(token), "--meili-url", url, "--meili-key", key,
        "--index", index, "--json", env={},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    state = confluence.state
    pages = [c for c in state.contents.values() if c.space_key == "DOCS" and c.type == "page" and c.status == "current"]
    posts = [
        c for c in state.contents.values() if c.space_key == "DOCS" and c.type == "blogpost" and c.status == "current"
    ]
    assert summary["result"] == "Succeeded" and summary["datasource"] == "docs/eng-wiki"
    assert summary["counts"]["pages"] == len(pages) and summary["counts"]["blogposts"] == len(posts)
    assert summary["documents"] == len(pages) + len(posts)
    client = meilisearch.Client(url, key)
    try:
        hits = client.index(index).search("deploy", {"filter": 'source.id = "docs/eng-wiki"'})["hits"]
        assert hits, "a phrase of the demo space is searchable"
    finally:
        client.delete_index(index)


def test_sync_human_summary_token_from_env(
    tmp_path: Path, confluence: ConfluenceEmulator, meili_target: tuple[str, str]
) -> None:
    url, key = meili_target
    index = f"cli_{secrets.token_hex(4)}"
    path = _datasource_file(tmp_path, confluence.endpoint)
    proc = _run(
        "sync", str(path), "--index", index,
        env={"CONFLUENCE_TOKEN": "demo-token", "MEILI_URL": url, "MEILI_MASTER_KEY": key},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "sync of docs/eng-wiki succeeded" in proc.stdout
    assert "Indexing..." in proc.stderr  # progress, phase by phase when not on a terminal
    meilisearch.Client(url, key).delete_index(index)


def test_sync_failure_exit_code_and_reason(
    tmp_path: Path, confluence: ConfluenceEmulator, meili_target: tuple[str, str]
) -> None:
    url, key = meili_target
    path = _datasource_file(tmp_path, confluence.endpoint)
    proc = _run(
        "sync", str(path), "--json", env={"CONFLUENCE_TOKEN": "wrong", "MEILI_URL": url, "MEILI_MASTER_KEY": key}
    )
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert summary["result"] == "Failed" and summary["reason"] == "AuthenticationFailed"


def test_a_token_file_with_a_control_character_is_refused_naming_the_file_not_the_value(
    tmp_path: Path, confluence: ConfluenceEmulator
) -> None:
    path = _datasource_file(tmp_path, confluence.endpoint)
    token = tmp_path / "token"
    token.write_text("demo-\x1btoken-value\n")
    proc = _run("sync", str(path), "--token-file", str(token), env={})
    assert proc.returncode == 1, proc.stderr
    assert f"in file {token}" in proc.stderr and "control character" in proc.stderr
    assert "token-value" not in proc.stderr + proc.stdout


def test_sync_without_token_explains(tmp_path: Path, confluence: ConfluenceEmulator) -> None:
    path = _datasource_file(tmp_path, confluence.endpoint)
    proc = _run("sync", str(path), env={})
    assert proc.returncode == 2 and "--token-file" in proc.stderr and "CONFLUENCE_TOKEN" in proc.stderr


@pytest.mark.parametrize("command", [[], ["run"], ["crds"], ["sync"]])
def test_help(command: list[str]) -> None:
    proc = _run(*command, "--help", env={})
    assert proc.returncode == 0 and "usage: coco-operator" in proc.stdout


def test_state_file_makes_the_next_run_incremental(
    tmp_path: Path, confluence: ConfluenceEmulator, meili_target: tuple[str, str]
) -> None:
    url, key = meili_target
    index = f"cli_{secrets.token_hex(4)}"
    path = _datasource_file(tmp_path, confluence.endpoint, enable_blogposts=True)
    state = tmp_path / "state" / "eng-wiki.json"
    env = {"CONFLUENCE_TOKEN": "demo-token", "MEILI_URL": url, "MEILI_MASTER_KEY": key}

    def run() -> dict[str, Any]:
        proc = _run("sync", str(path), "--index", index, "--state", str(state), "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        summary: dict[str, Any] = json.loads(proc.stdout)
        return summary

    try:
        full = run()
        saved = json.loads(state.read_text())
        assert not full["incremental"] and full["pruneReason"] == "full sync"
        # What the operator keeps in status, the file keeps: the next run builds on it.
        assert saved["watermark"] == full["watermark"] and saved["watermarkConfig"]
        assert saved["sourceItems"] == full["sourceItems"] and saved["lastPruneTime"] == full["lastPruneTime"]
        assert saved["lastSyncResult"] == "Succeeded" and saved["documents"] == full["documents"]
        assert [c["type"] for c in saved["conditions"]] == ["Ready"] and "progress" not in saved

        unchanged = run()
        assert unchanged["incremental"] and unchanged["pruneReason"] is None
        counts = unchanged["counts"]
        assert counts["pages"] == counts["blogposts"] == counts["deleted"] == 0
        # The space, the scope's count and the changed window: what the operator's own re-sync costs; then the
        # space's permissions (2) and the restrictions sweep (1) of permissions.mode sync.
        assert unchanged["requests"] == 3 + 3 and unchanged["documents"] == full["documents"]

        page = next(c for c in confluence.state.contents.values() if c.space_key == "DOCS" and c.type == "page")
        confluence.state.update_page(page.id, body="<p>now about narwhals</p>")
        changed = run()
        assert changed["incremental"] and changed["counts"]["pages"] == 1
        assert len(json.loads(state.read_text())["history"]) == 3
    finally:
        meilisearch.Client(url, key).delete_index(index)


def test_state_file_that_is_not_a_status_object_is_refused(tmp_path: Path, confluence: ConfluenceEmulator) -> None:
    path = _datasource_file(tmp_path, confluence.endpoint)
    state = tmp_path / "state.json"
    state.write_text("[1, 2]")
    proc = _run("sync", str(path), "--state", str(state), env={"CONFLUENCE_TOKEN": "demo-token"})
    assert proc.returncode == 1 and "state file" in proc.stderr and str(state) in proc.stderr
