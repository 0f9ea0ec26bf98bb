"""Tenancy on the real API server: the chart's admission policy refuses foreign indexes and unknown embedder profiles
(server-side dry run), the CRD refuses an unbounded `sync.timeout` and the old free-form embedders, the operator refuses
a foreign index and a Secret that did not opt in at run time, and no status message can make a status patch fail."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import (
    CLOUD_TOKEN,
    Kube,
    Meili,
    Operator,
    condition,
    datasource,
    make_namespace,
    secret,
    wait_for,
    wait_ready,
)
from tests.emulators.confluence import ConfluenceEmulator
from tests.unit.test_chart_render import CHART, helm_env, helm_or_skip

pytestmark = pytest.mark.e2e
SITE = "https://x.atlassian.net/wiki"


def _dry_run(kube: Kube, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return kube.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(obj), check=False)


# --- admission -----------------------------------------------------------------------------------------------------


@pytest.fixture
def policy(kube: Kube, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """The chart's admission policy, with a grant and a profile, bound to two fresh namespaces only (so it cannot
    touch the other tests' Datasources)."""
    team, other = (make_namespace(kube, prefix, request.node.name) for prefix in ("adm-a", "adm-b"))
    release = f"adm-{uuid.uuid4().hex[:6]}"
    values = [
        "--set", f"watchNamespaces={{{team},{other}}}",
        "--set", f"tenancy.indexGrants.{team}={{handbook,archive_*}}",
        "--set", "embedderProfiles.small.settings.source=userProvided",
        "--set", "embedderProfiles.small.settings.dimensions=3",
    ]  # fmt: skip
    proc = subprocess.run(
        [str(helm_or_skip()), "template", release, str(CHART), "-n", "coco-system", *values,
         "--show-only", "templates/admissionpolicy.yaml"],
        capture_output=True, text=True, env=helm_env(tmp_path), timeout=60, check=True,
    )  # fmt: skip
    kube.kubectl("apply", "-f", "-", input=proc.stdout)
    # A new policy takes a moment to be enforced.
    probe = datasource(team, "probe", SITE, "DOCS", index="nobodys_index")
    wait_for("the admission policy in force", lambda: _dry_run(kube, probe).returncode != 0, timeout=30)
    yield team, other
    kube.kubectl("delete", "-f", "-", "--ignore-not-found", input=proc.stdout, check=False)


@pytest.mark.parametrize(
    ("index", "embedders", "refused"),
    [
        (None, None, None),  # the default index is shared
        ("{team}", None, None),
        ("{team}_docs", ["small"], None),
        ("handbook", None, None),  # granted
        ("archive_2019", None, None),  # granted by pattern
        ("{other}_docs", None, "IndexNotAllowed: namespace {team} may not write into index {other}_docs"),
        ("payroll", None, "use an index it owns ({team} or {team}_<suffix>), a shared index (coco_documents)"),
        ("coco_documents", ["small"], "EmbeddersNotAllowed: spec.embedders applies to indexes namespace {team} owns"),
        ("handbook", ["small"], "shared and granted indexes get their settings from the operator only"),
        ("{team}_docs", ["rest-to-anywhere"], "EmbedderProfileNotFound: spec.embedders names profiles the operator"),
    ],
)
def test_the_admission_policy_refuses_what_the_namespace_may_not_use(
    kube: Kube, policy: tuple[str, str], index: str | None, embedders: list[str] | None, refused: str | None
) -> None:
    team, other = policy
    extra: dict[str, Any] = {}
    if index is not None:
        extra["index"] = index.format(team=team, other=other)
    if embedders is not None:
        extra["embedders"] = embedders
    proc = _dry_run(kube, datasource(team, "wiki", SITE, "DOCS", **extra))
    if refused is None:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0 and refused.format(team=team, other=other) in proc.stderr, proc.stderr


def test_the_admission_policy_stays_in_its_namespaces(kube: Kube, policy: tuple[str, str], ns: str) -> None:
    """Bound to the watched namespaces only: elsewhere the operator's run-time check is what refuses."""
    assert _dry_run(kube, datasource(ns, "wiki", SITE, "DOCS", index="payroll")).returncode == 0


@pytest.mark.parametrize(
    ("sync", "expect"),
    [
        ({"timeout": "25h"}, "sync.timeout must be at most 24h"),
        ({"timeout": "99999999999999999999h"}, "spec.sync.timeout"),
    ],
)
def test_an_unbounded_sync_timeout_is_refused_at_admission(
    kube: Kube, ns: str, sync: dict[str, str], expect: str
) -> None:
    proc = _dry_run(kube, datasource(ns, "wiki", SITE, "DOCS", sync={"interval": "1h", **sync}))
    assert proc.returncode != 0 and expect in proc.stderr, proc.stderr


def test_free_form_embedders_of_earlier_versions_are_refused(kube: Kube, ns: str) -> None:
    old = {"default": {"source": "rest", "url": "http://169.254.169.254/latest", "request": {}, "response": {}}}
    proc = _dry_run(kube, datasource(ns, "wiki", SITE, "DOCS", embedders=old))
    assert proc.returncode != 0 and "spec.embedders" in proc.stderr, proc.stderr


# --- the operator at run time ---------------------------------------------------------------------------------------


def test_the_operator_refuses_a_foreign_index_and_writes_nothing(
    kube: Kube, cloud: ConfluenceEmulator, meili: Meili, operator: Operator, ns: str
) -> None:
    foreign = f"someone-else_{uuid.uuid4().hex[:6]}"
    asked = len(cloud.state.requests)
    kube.apply(secret(ns, CLOUD_TOKEN), datasource(ns, "wiki", cloud.endpoint, "NOPE", index=foreign))
    obj = wait_ready(kube, ns, "wiki", status="False", reason="IndexNotAllowed", timeout=30)
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert f"may not write into index {foreign!r}" in message and f"{ns}_<suffix>" in message
    assert condition(obj, "Stalled") is not None  # it needs a fix, not a retry
    assert len(cloud.state.requests) == asked
    with pytest.raises(Exception, match="index_not_found"):
        meili.client().get_index(foreign)
    events = wait_for(
        "an IndexNotAllowed Event", lambda: [e for e in kube.events(ns, "wiki") if e.reason == "IndexNotAllowed"]
    )
    assert len(events[0].message) <= 1000


def test_a_secret_that_did_not_opt_in_is_not_used_until_it_is_labelled(
    kube: Kube, cloud: ConfluenceEmulator, meili: Meili, operator: Operator, ns: str
) -> None:
    cloud.state.add_space("OPTIN", "Opt in")
    cloud.state.add_page("OPTIN", "Home", "<p>labels decide</p>")
    asked = len(cloud.state.requests)
    kube.apply(secret(ns, CLOUD_TOKEN, opted_in=False), datasource(ns, "wiki", cloud.endpoint, "OPTIN"))
    obj = wait_ready(kube, ns, "wiki", status="False", reason="SecretNotOptedIn", timeout=30)
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert f"Secret {ns}/confluence-token is not labelled coco.rs/usable-by-datasources=true" in message
    assert f"kubectl -n {ns} label secret confluence-token coco.rs/usable-by-datasources=true" in message
    assert CLOUD_TOKEN not in str(obj) and len(cloud.state.requests) == asked  # the token was never sent
    kube.kubectl("-n", ns, "label", "secret", "confluence-token", "coco.rs/usable-by-datasources=true")
    obj = wait_ready(kube, ns, "wiki", timeout=30)  # the next retry (backoff of 1 s, 2 s, ...) picks it up
    assert obj["status"]["documents"] == 1


# --- status that always fits ----------------------------------------------------------------------------------------


def test_a_huge_error_message_never_makes_the_status_patch_fail(kube: Kube, request: pytest.FixtureRequest) -> None:
    """The API server refuses a condition message over 32 KiB (the patch fails, so the run's outcome would be lost
    and retried in a loop); the operator's status stays far below, whatever the run's error says."""
    from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
    from coco_operator.controller.kube import KubeApi
    from coco_operator.dispatcher.host import Target, finish
    from coco_operator.dispatcher.writers import ApiStatusWriter
    from coco_operator.errors import ConfluenceUnavailableError
    from coco_operator.settings import Settings
    from coco_operator.sync import SyncResult

    ns = make_namespace(kube, "x-status", request.node.name)  # no operator watches x-*
    body = datasource(ns, "wiki", SITE, "DOCS")
    kube.apply(body)
    # The hazard is real: a 40,000-character condition message is refused by the API server.
    huge_condition = {"type": "Ready", "status": "False", "reason": "X", "message": "x" * 40_000,
                      "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip
    with pytest.raises(ApiException) as refused:
        kube.custom.patch_namespaced_custom_object_status(
            "coco.rs", "v1alpha1", ns, "datasources", "wiki", {"status": {"conditions": [huge_condition]}}
        )
    assert refused.value.status == 422

    spec = DatasourceSpec.model_validate(body["spec"])
    error = ConfluenceUnavailableError("Confluence said: " + "é" * 200_000)
    result = SyncResult.failed(datetime.now(UTC), error)
    writer = ApiStatusWriter(KubeApi(kube.api), ns, "wiki", DatasourceStatus())
    finished = asyncio.run(
        finish(Target(key=f"{ns}/wiki", spec=spec, index="docs"), result, writer=writer, settings=Settings())
    )
    live = kube.datasource(ns, "wiki")
    assert live is not None
    status = live["status"]
    assert status["lastSyncResult"] == "Failed" and len(status["lastError"]) <= 4000
    assert all(len(c["message"]) <= 4000 for c in status["conditions"])
    assert "more characters)" in status["lastError"] and len(finished.event.message) <= 1000
