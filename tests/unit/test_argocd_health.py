"""The Argo CD health checks in docs/argocd/ run as Argo CD runs them, on the statuses the operator writes.

Argo CD evaluates `resource.customizations.health.<group>_<kind>` with gopher-lua (Lua 5.1): the object is the
global `obj`, the script's top-level `return` must be a table `{status=..., message=...}`, and, unless
`useOpenLibs` is set, only the base, table, package and a "safe" os library are loaded (no `string`, no string
methods). `argo_health()` reproduces that with lupa's Lua 5.1, so a script that would fail in Argo CD fails here.
The statuses come from the real `coco_operator.status` functions, so the scripts are tested against what the
operator writes, not against hand-made fixtures.

`argo_health()` is also used by tests/e2e/test_gitops_health.py on objects read from a live API server.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from coco_operator import status as st
from coco_operator.api.common import Condition
from coco_operator.api.connector import ConnectorStatus
from coco_operator.api.datasource import DatasourceStatus, SyncCounts
from coco_operator.reasons import ConditionType
from coco_operator.times import iso
from tests.ci import unavailable

try:
    import lupa  # noqa: F401
except ImportError:
    unavailable("lupa (the Lua runtime for Argo CD's health scripts) is not installed: pip install -e '.[test]'")

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = {
    "Datasource": REPO / "docs" / "argocd" / "health-datasource.lua",
    "Connector": REPO / "docs" / "argocd" / "health-connector.lua",
}
DOC = REPO / "docs" / "argocd-health.md"
CONFIG_KEYS = {
    "Datasource": "resource.customizations.health.coco.rs_Datasource",
    "Connector": "resource.customizations.health.coco.rs_Connector",
}
# What Argo CD accepts from a health script (gitops-engine's HealthStatusCode); anything else becomes Unknown.
ARGO_HEALTH_CODES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# Runs `script` like Argo CD's VM with useOpenLibs=false: a fresh environment with the base and table libraries and
# a safe subset of os, the object as global `obj`, and the chunk's return value as the result.
_SANDBOX = r"""
local base = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawset", "select",
  "tonumber", "tostring", "type", "unpack", "xpcall", "getmetatable", "setmetatable", "_VERSION",
}
local run = function(script, name, obj)
  local chunk, err = loadstring(script, "=" .. name)
  if chunk == nil then
    error(err, 0)
  end
  local env = {}
  for _, key in ipairs(base) do
    env[key] = _G[key]
  end
  env.table = table
  env.os = {time = os.time, date = os.date, clock = os.clock, difftime = os.difftime}
  env._G = env
  env.obj = obj
  setfenv(chunk, env)
  return chunk()
end
-- gopher-lua gives strings no methods unless the string library is opened: ("x"):upper() must fail here too.
getmetatable("").__index = nil
return run
"""


@dataclass(frozen=True)
class Health:
    status: str
    message: str


def _lua_module() -> Any:
    """lupa's Lua 5.1 build (gopher-lua implements Lua 5.1), or LuaJIT (5.1-compatible)."""
    for name in ("lua51", "luajit21", "luajit20"):
        try:
            return importlib.import_module(f"lupa.{name}")
        except ImportError:
            continue
    unavailable("lupa has no Lua 5.1 runtime (Argo CD's dialect) on this platform")


LUA = _lua_module()
LuaError = LUA.LuaError


def to_lua(lua: Any, value: Any) -> Any:
    """JSON-like Python value -> Lua value, as Argo CD's decodeValue does (arrays 1-based, null -> nil)."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[str(key)] = to_lua(lua, item)
        return table
    if isinstance(value, list | tuple):
        table = lua.table()
        index = 1
        for item in value:
            if item is not None:
                table[index] = to_lua(lua, item)
                index += 1
        return table
    if isinstance(value, datetime):
        return iso(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot pass {type(value).__name__} to Lua: {value!r}")


def run_health_script(script: str, obj: dict[str, Any], name: str = "health.lua") -> Health:
    lua = LUA.LuaRuntime(unpack_returned_tuples=False, register_eval=False, register_builtins=False)
    run = lua.execute(_SANDBOX)
    result = run(script, name, to_lua(lua, obj))
    if LUA.lua_type(result) != "table":
        raise TypeError(f"expect table output from Lua script, not {LUA.lua_type(result) or type(result).__name__}")
    fields = dict(result.items())
    status, message = fields.get("status"), fields.get("message")
    if status not in ARGO_HEALTH_CODES:
        return Health("Unknown", "Lua returned an invalid health status")
    return Health(str(status), "" if message is None else str(message))


def argo_health(obj: dict[str, Any]) -> Health:
    """Argo CD's health of a coco.rs object (Datasource or Connector), computed by the script in docs/argocd/."""
    return run_health_script(SCRIPTS[obj["kind"]].read_text(), obj, SCRIPTS[obj["kind"]].name)


# --- objects as the operator leaves them ---------------------------------------------------------------------

T0 = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
COUNTS = SyncCounts(pages=10, blogposts=2, attachments=1, deleted=3, skipped=0)
EMPTY = DatasourceStatus()


def _wire(status: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A status as the API server hands it to Argo CD."""
    return st.dump(status) if isinstance(status, BaseModel) else status


def _datasource(status: BaseModel | dict[str, Any] | None, generation: int = 1, **metadata: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "coco.rs/v1alpha1",
        "kind": "Datasource",
        "metadata": {"name": "wiki", "namespace": "docs", "generation": generation, **metadata},
        "spec": {
            "name": "Wiki",
            "connector": {"id": "confluence", "config": {"space": "DOCS"}},
            "sync": {"enabled": True, "interval": "5m"},
        },
    }
    if status is not None:
        obj["status"] = _wire(status)
    return obj


def _connector(status: BaseModel | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "coco.rs/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "confluence", "generation": generation},
        "spec": {"processor": {"enabled": True, "name": "confluence"}},
    }
    if status is not None:
        obj["status"] = _wire(status)
    return obj


def _started(status: DatasourceStatus, now: datetime = T0, generation: int = 1) -> DatasourceStatus:
    return st.run_started(status, generation=generation, now=now, message="Syncing space DOCS")


def _succeeded(status: DatasourceStatus, now: datetime = T0, generation: int = 1) -> DatasourceStatus:
    started = now - timedelta(seconds=4)
    run = st.Success(
        started=started, counts=COUNTS, documents=13, index="docs", space="DOCS", next_run=now + timedelta(minutes=5)
    )
    return st.run_succeeded(_started(status, started, generation), generation=generation, now=now, run=run)


def _failed(
    status: DatasourceStatus, reason: str, message: str, *, retryable: bool, now: datetime = T0
) -> DatasourceStatus:
    started = now - timedelta(seconds=2)
    run = st.Failure(
        started=started,
        reason=reason,
        message=message,
        retryable=retryable,
        next_run=now + timedelta(seconds=30),
        index="docs",
    )
    return st.run_failed(_started(status, started), generation=1, now=now, run=run)


def _ready(status: DatasourceStatus | ConnectorStatus) -> Condition:
    cond = st.get_condition(status, ConditionType.READY)
    assert cond is not None
    return cond


# --- Datasource ----------------------------------------------------------------------------------------------


def test_new_datasource_without_status_is_progressing() -> None:
    assert argo_health(_datasource(None)) == Health("Progressing", "Waiting for the operator to observe generation 1")


def test_first_run_is_progressing_with_the_reconciling_message() -> None:
    status = _started(EMPTY)
    assert _ready(status).status == "Unknown"
    assert argo_health(_datasource(status)) == Health("Progressing", "Syncing space DOCS")


def test_queued_first_run_is_progressing() -> None:
    status = st.queued(EMPTY, generation=1, now=T0, running=4, limit=4)
    health = argo_health(_datasource(status))
    assert health == Health("Progressing", "Waiting for a free run slot (4 runs in progress, limit 4)")


def test_synced_datasource_is_healthy() -> None:
    status = _succeeded(EMPTY)
    health = argo_health(_datasource(status))
    assert health == Health("Healthy", _ready(status).message)
    assert health.message.startswith("Synced")


def test_healthy_datasource_syncing_again_is_progressing() -> None:
    status = _started(_succeeded(EMPTY), T0 + timedelta(minutes=5))
    assert _ready(status).status == "True"  # Ready stays True during the run ...
    assert argo_health(_datasource(status)) == Health("Progressing", "Syncing space DOCS")  # ... Reconciling wins


def test_spec_change_not_yet_observed_is_progressing() -> None:
    status = _succeeded(EMPTY, generation=2)
    assert argo_health(_datasource(status, generation=3)) == Health(
        "Progressing", "Waiting for the operator to observe generation 3"
    )
    # Once observed, the same status is healthy again.
    assert argo_health(_datasource(_succeeded(status, T0 + timedelta(minutes=1), generation=3), 3)).status == (
        "Healthy"
    )


@pytest.mark.parametrize("reason", ["SearchBackendUnavailable", "ConfluenceUnavailable", "SyncTimeout"])
def test_retryable_failure_is_degraded(reason: str) -> None:
    status = _failed(
        _succeeded(EMPTY), reason, "the backend answered 503", retryable=True, now=T0 + timedelta(minutes=5)
    )
    assert st.get_condition(status, ConditionType.STALLED) is None
    health = argo_health(_datasource(status))
    assert health == Health("Degraded", f"{reason}: {_ready(status).message}")
    assert "Retrying at" in health.message


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("SecretNotFound", "Secret docs/confluence-token does not exist; create it with kubectl"),
        ("AuthenticationFailed", "Confluence refused the credentials; check the API token"),
        ("SpaceNotFound", "space 'NOPE' does not exist or the account cannot see it"),
        ("ConnectorNotFound", "Connector 'sharepoint' does not exist"),
    ],
)
def test_failure_that_needs_a_user_fix_is_degraded_with_the_stalled_message(reason: str, message: str) -> None:
    status = _failed(EMPTY, reason, message, retryable=False)
    assert st.get_condition(status, ConditionType.STALLED) is not None
    assert argo_health(_datasource(status)) == Health("Degraded", f"{reason}: {message}")


def test_failing_datasource_retrying_is_progressing_then_degraded_again() -> None:
    failed = _failed(EMPTY, "SecretNotFound", "Secret docs/confluence-token does not exist", retryable=False)
    retrying = _started(failed, T0 + timedelta(seconds=30))
    assert argo_health(_datasource(retrying)) == Health("Progressing", "Syncing space DOCS")
    again = _failed(
        retrying,
        "SecretNotFound",
        "Secret docs/confluence-token does not exist",
        retryable=False,
        now=T0 + timedelta(seconds=31),
    )
    assert argo_health(_datasource(again)).status == "Degraded"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("Suspended", "sync.enabled is false: scheduled syncs are suspended"),
        ("Disabled", "spec.enabled is false: no syncs run"),
        ("ConnectorDisabled", "Connector confluence has processor.enabled: false"),
    ],
)
def test_paused_datasource_is_suspended(reason: str, message: str) -> None:
    status = st.paused(_succeeded(EMPTY), generation=1, now=T0 + timedelta(minutes=1), reason=reason, message=message)
    assert argo_health(_datasource(status)) == Health("Suspended", f"{reason}: {message}")


def test_paused_on_an_invalid_spec_is_degraded() -> None:
    status = st.paused(EMPTY, generation=1, now=T0, reason="InvalidSpec", message="spec.sync.interval: bad duration")
    assert argo_health(_datasource(status)) == Health("Degraded", "InvalidSpec: spec.sync.interval: bad duration")


def test_ready_unknown_without_a_run_is_progressing() -> None:
    # What the runner writes when a paused Datasource whose last run failed is resumed before its next run.
    paused = st.paused(
        _failed(EMPTY, "SyncTimeout", "too slow", retryable=True), generation=1, now=T0, reason="Suspended", message="x"
    )
    status = st.resumed(paused, generation=1, now=T0)
    assert _ready(status).message == "Resumed; waiting for the next sync"
    assert argo_health(_datasource(status)) == Health("Progressing", "Resumed; waiting for the next sync")


def test_status_without_conditions_is_progressing() -> None:
    health = argo_health(_datasource({"observedGeneration": 1}))
    assert health == Health("Progressing", "Waiting for the operator to set the Ready condition")


def test_datasource_being_deleted_is_progressing() -> None:
    obj = _datasource(_succeeded(EMPTY), deletionTimestamp="2026-11-27T08:00:00Z", finalizers=["coco.rs/cleanup"])
    health = argo_health(obj)
    assert health.status == "Progressing" and "removing" in health.message


# --- Connector -----------------------------------------------------------------------------------------------


def _connector_status(*, enabled: bool = True, known: bool = True, generation: int = 1) -> ConnectorStatus:
    return st.connector_status(
        ConnectorStatus(),
        generation=generation,
        processor="confluence",
        enabled=enabled,
        known=known,
        datasources=2,
        now=T0,
    )


def test_connector_without_status_is_progressing() -> None:
    assert argo_health(_connector(None)) == Health("Progressing", "Waiting for the operator to observe generation 1")


def test_enabled_connector_is_healthy() -> None:
    status = _connector_status()
    health = argo_health(_connector(status))
    assert health == Health("Healthy", f"{_ready(status).message}; Datasources using it: 2")


def test_disabled_connector_is_suspended() -> None:
    status = _connector_status(enabled=False)
    health = argo_health(_connector(status))
    assert health.status == "Suspended"
    assert health.message.startswith(f"Disabled: {_ready(status).message}")


def test_connector_with_unknown_processor_is_degraded() -> None:
    health = argo_health(_connector(_connector_status(known=False)))
    assert health.status == "Degraded" and health.message.startswith("UnknownProcessor: ")


def test_connector_change_not_yet_observed_is_progressing() -> None:
    health = argo_health(_connector(_connector_status(generation=1), generation=2))
    assert health == Health("Progressing", "Waiting for the operator to observe generation 2")


# --- the runner behaves like Argo CD's VM ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        'return {status = string.format("%s", "Healthy")}',
        'local s = "Healthy"; return {status = s:upper()}',
        'return {status = io.read("*l")}',
    ],
)
def test_sandbox_has_no_string_or_io_library_like_argo(script: str) -> None:
    with pytest.raises(LuaError):
        run_health_script(script, _datasource(None))


def test_invalid_health_code_becomes_unknown_and_non_table_is_an_error() -> None:
    assert run_health_script('return {status = "Green"}', _datasource(None)) == Health(
        "Unknown", "Lua returned an invalid health status"
    )
    with pytest.raises(TypeError):
        run_health_script('return "Healthy"', _datasource(None))


def test_objects_are_passed_as_argo_decodes_them() -> None:
    script = (
        'return {status = "Healthy", message = obj.status.conditions[1].type .. " " .. '
        'tostring(obj.status.observedGeneration) .. " " .. tostring(obj.status.documents) .. " " .. '
        "tostring(#obj.status.conditions)}"
    )
    status = _wire(_succeeded(EMPTY))
    status["documents"] = None  # null from the API server -> nil
    assert run_health_script(script, _datasource(status)).message == "Ready 1 nil 1"


# --- the docs embed exactly these scripts ----------------------------------------------------------------------


def _yaml_blocks(markdown: str) -> list[Any]:
    docs: list[Any] = []
    for block in re.findall(r"```ya?ml\n(.*?)```", markdown, flags=re.DOTALL):
        docs.extend(d for d in yaml.safe_load_all(block) if d)
    return docs


def test_docs_argocd_cm_snippet_embeds_the_scripts() -> None:
    configmaps = [
        d
        for d in _yaml_blocks(DOC.read_text())
        if isinstance(d, dict) and d.get("kind") == "ConfigMap" and d.get("metadata", {}).get("name") == "argocd-cm"
    ]
    assert configmaps, "docs/argocd-health.md has no argocd-cm ConfigMap snippet"
    data = configmaps[0]["data"]
    for kind, key in CONFIG_KEYS.items():
        assert data[key] == SCRIPTS[kind].read_text(), f"{key} in docs/argocd-health.md differs from {SCRIPTS[kind]}"
