"""Job mode without an API server: the manifest and its environment contract, the operator waiting for the Job,
and the pod's side (`host.run_datasource` with the environment) reporting into the same status."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from coco_operator.api.datasource import DatasourceSpec, DatasourceStatus
from coco_operator.dispatcher import jobenv, jobs
from coco_operator.dispatcher.host import Target, run_datasource
from coco_operator.dispatcher.jobrun import run_as_job
from coco_operator.dispatcher.secrets import ApiSecrets
from coco_operator.dispatcher.writers import ApiStatusWriter
from coco_operator.errors import SyncTimeoutError
from coco_operator.settings import Settings
from tests.unit.fake_kube import FakeKube, datasource_body
from tests.unit.test_runner import KEY, FakeSync, condition, kube_with, settings, worker_for

ENRICHED = {
    "enrichment": [
        {"type": "webhook", "webhook": {"url": "https://hooks.example/x", "tokenSecretRef": {"name": "hook"}}},
    ],
    "embedders": ["default"],
}
OWN_INDEX = {"index": "docs_wiki"}  # namespace docs owns it: the run goes to a Job


class JobPrepared:
    """Stands in for what the operator does before a Job (index, moved documents, the namespace's key)."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.calls: list[tuple[str, str | None]] = []

    async def __call__(self, target: Target, previous: str | None) -> None:
        self.calls.append((target.index, previous))
        await self.kube.write_managed_secret("docs", "coco-operator-meili-key", {"key": "ns-key", "uid": "u"}, {})


def job_kube() -> FakeKube:
    return kube_with(datasource_body(**OWN_INDEX))


def _spec(**extra: Any) -> DatasourceSpec:
    return DatasourceSpec.model_validate(datasource_body(**extra)["spec"])


def pod_environment(kube: FakeKube, manifest: dict[str, Any]) -> dict[str, str]:
    """What the kubelet would give the container: `valueFrom` references resolved from the namespace."""
    ns = manifest["metadata"]["namespace"]
    env: dict[str, str] = {}
    for var in manifest["spec"]["template"]["spec"]["containers"][0]["env"]:
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[var["name"]] = kube.secrets[(ns, ref["name"])][ref["key"]]
        else:
            ref = source["configMapKeyRef"]
            env[var["name"]] = kube.configmaps[(ns, ref["name"])][ref["key"]]
    return env


async def test_the_environment_contract_round_trips() -> None:
    spec = _spec(**ENRICHED)
    spec.connector.config.caBundleSecretRef = spec.connector.config.tokenSecretRef.model_copy(update={"name": "ca"})
    kube = FakeKube()
    kube.add_secret("docs", "confluence-token", {"token": "tok\n"})  # as --from-file writes it
    kube.add_secret("docs", "ca", {"token": "-----BEGIN CERTIFICATE-----\nPEM\n-----END CERTIFICATE-----\n"})
    kube.add_secret("docs", "hook", {"token": "hook-token"})
    await kube.write_managed_secret("docs", "coco-operator-meili-key", {"key": "ns-key", "uid": "u"}, {})
    operator = Settings(meili_url="http://meili:7700", allowed_hosts=["*.example.com", "wiki.corp"], text_workers=3)
    manifest = jobs.sync_job(datasource_body(), spec, run_id="r1", timeout_s=60, settings=operator)
    env = pod_environment(kube, manifest)
    values = {v.get("value") for v in manifest["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not {"tok", "tok\n", "ns-key"} & values
    creds = await jobenv.EnvSecrets(env).credentials(spec)
    assert creds.token == "tok" and creds.ca_pem and creds.ca_pem.count("\n") == 3
    assert dict(creds.webhook_tokens) == {0: "hook-token"}
    # What the API side reads for the operator, the environment gives the pod.
    assert await ApiSecrets(kube, "docs", owner="Datasource docs/wiki").credentials(spec) == creds
    # The pod's Meilisearch key is its namespace's own, from the operator-managed Secret; never the operator's.
    assert env["COCO_MEILI_API_KEY"] == "ns-key" and env["COCO_MANAGE_INDEX_SETTINGS"] == "false"
    pod = manifest["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False


def test_every_setting_is_forwarded_or_known_not_to_matter_to_a_run() -> None:
    """A new setting must be placed: forwarded to the pod, or listed with why the pod does without it."""
    fields = set(Settings.model_fields)
    forwarded, not_forwarded = set(jobenv.FORWARDED), set(jobenv.NOT_FORWARDED)
    assert not forwarded & not_forwarded
    assert fields == forwarded | not_forwarded, f"unplaced: {sorted(fields - forwarded - not_forwarded)}"
    # The egress policy, the limits and the tenancy rules a run enforces all travel.
    assert {"allow_private_networks", "allowed_cidrs", "link_allowed_hosts", "webhook_allowed_hosts"} <= forwarded
    assert {"http_request_deadline_seconds", "confluence_max_response_bytes", "extraction_memory_bytes"} <= forwarded
    assert {"shared_indexes", "index_grants", "max_deletions_fraction", "max_deletions_min"} <= forwarded


def test_forwarded_settings_reach_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    operator = Settings(
        meili_url="http://meili:7700",
        allowed_hosts=["*.example.com"],
        allow_http=True,
        confluence_concurrency=3,
        allow_private_networks=True,
        allowed_cidrs=["10.96.0.0/12"],
        http_request_deadline_seconds=17,
        shared_indexes=["common", "handbook"],
        index_grants={"docs": ["x_*"]},
        max_deletions_fraction=0.25,
        extraction_memory_bytes=256 * 1024 * 1024,
    )
    env = {v["name"]: v["value"] for v in jobenv.job_env(_spec(), operator) if "value" in v}
    for name in [k for k in os.environ if k.startswith(("COCO_", "MEILI_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pod = Settings()
    for field in jobenv.FORWARDED:
        assert getattr(pod, field) == getattr(operator, field), field
    assert pod.manage_index_settings is False and operator.manage_index_settings is True


async def test_the_pod_without_a_token_reports_the_failure() -> None:
    kube = kube_with()
    target = Target.of(kube.datasources[KEY], _spec(), settings())
    writer = ApiStatusWriter(kube, *KEY, DatasourceStatus())
    finished = await run_datasource(
        target, secrets=jobenv.EnvSecrets({}), writer=writer, settings=settings(), sync=FakeSync(), run_id="r9"
    )
    assert finished.result.error is not None and finished.result.error.reason == "SecretNotFound"
    status = kube.status(*KEY)
    assert status["lastSyncRunId"] == "r9" and status["lastSyncResult"] == "Failed"


async def _created(kube: FakeKube) -> dict[str, Any]:
    for _ in range(500):
        if kube.created_jobs:
            return kube.created_jobs[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("no Job was created")


async def test_job_mode_success_is_reported_by_the_pod() -> None:
    kube, sync = job_kube(), FakeSync()
    prepared = JobPrepared(kube)
    async with worker_for(kube, sync, run_mode="Job", job_poll_seconds=0.01, job_prep=prepared) as worker:
        step = asyncio.create_task(worker.step())
        manifest = await _created(kube)
        run_id = manifest["metadata"]["annotations"][jobs.RUN_ID_ANNOTATION]
        assert manifest["spec"]["template"]["spec"]["containers"][0]["args"][-1] == run_id
        # The pod: its Datasource from the API, credentials from its environment, status back to the API.
        body = await kube.get_datasource(*KEY)
        assert body is not None
        pod_settings = settings()
        await run_datasource(
            Target.of(body, _spec(**OWN_INDEX), pod_settings),
            secrets=jobenv.EnvSecrets(pod_environment(kube, manifest)),
            writer=ApiStatusWriter(kube, *KEY, worker.status),
            settings=pod_settings,
            sync=sync,
            run_id=run_id,
        )
        await asyncio.wait_for(step, 5)
        assert worker.status.lastSyncRunId == run_id  # the worker took the Job's status as its own
    assert sync.requests[0].token == "tok" and prepared.calls == [("docs_wiki", None)]
    assert (ready := condition(kube, "Ready")) and ready["status"] == "True"
    assert kube.reasons() == ["SyncStarted", "SyncSucceeded"] and not kube.deleted_jobs


@pytest.mark.parametrize("how", ["failed", "vanished"])
async def test_job_mode_failures(how: str) -> None:
    kube, sync = job_kube(), FakeSync()
    async with worker_for(kube, sync, run_mode="Job", job_poll_seconds=0.01, job_prep=JobPrepared(kube)) as worker:
        step = asyncio.create_task(worker.step())
        manifest = await _created(kube)
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if how == "failed":
            kube.jobs[key]["status"] = {
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "x"}]
            }
        else:
            del kube.jobs[key]
        await asyncio.wait_for(step, 5)
    ready = condition(kube, "Ready")
    reason = {"failed": "JobFailed", "vanished": "JobVanished"}[how]
    assert ready and ready["status"] == "False" and ready["reason"] == reason and key[1] in ready["message"]
    assert kube.events[-1][:2] == ("Warning", reason) and not sync.requests


@pytest.mark.parametrize(("opted_in", "reason"), [(None, "SecretNotFound"), (False, "SecretNotOptedIn")])
async def test_job_mode_checks_the_secret_before_starting_a_job(opted_in: bool | None, reason: str) -> None:
    kube, sync = kube_with(datasource_body(**OWN_INDEX), secret=False), FakeSync()
    if opted_in is not None:
        kube.add_secret("docs", "confluence-token", {"token": "tok"}, opted_in=opted_in)
    prepared = JobPrepared(kube)
    async with worker_for(kube, sync, run_mode="Job", job_poll_seconds=0.01, job_prep=prepared) as worker:
        await worker.step()
    assert not kube.created_jobs and not prepared.calls
    assert (ready := condition(kube, "Ready")) and ready["reason"] == reason
    if reason == "SecretNotOptedIn":
        assert "kubectl -n docs label secret confluence-token coco.rs/usable-by-datasources=true" in ready["message"]


@pytest.mark.parametrize("mode", ["InProcess", "Refuse"])
async def test_job_mode_into_a_shared_index_never_hands_out_a_key(mode: str) -> None:
    """The default index is shared: a Job's own key could not reach it, and no operator key goes to the namespace."""
    kube, sync = kube_with(), FakeSync()
    prepared = JobPrepared(kube)
    async with worker_for(
        kube, sync, run_mode="Job", job_poll_seconds=0.01, job_prep=prepared, job_shared_index=mode
    ) as worker:
        await worker.step()
    assert not kube.created_jobs and not prepared.calls
    assert ("docs", "coco-operator-meili-key") not in kube.secrets
    ready = condition(kube, "Ready")
    if mode == "InProcess":
        assert len(sync.requests) == 1 and ready and ready["status"] == "True"
    else:
        assert not sync.requests and ready and ready["reason"] == "JobModeNeedsOwnIndex"
        assert "docs_<suffix>" in ready["message"]


async def test_a_job_past_its_time_is_stopped() -> None:
    kube = kube_with()
    with pytest.raises(SyncTimeoutError, match="did not finish within"):
        await run_as_job(
            kube, kube.datasources[KEY], _spec(), settings=settings(job_poll_seconds=0.01), timeout_s=0.02, grace_s=0
        )
    assert kube.deleted_jobs and kube.deleted_jobs[0] == (KEY[0], kube.created_jobs[0]["metadata"]["name"])


async def test_a_cancelled_wait_deletes_the_job() -> None:
    kube = kube_with()
    wait = asyncio.create_task(
        run_as_job(kube, kube.datasources[KEY], _spec(), settings=settings(job_poll_seconds=0.01), timeout_s=60)
    )
    await _created(kube)
    wait.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait
    assert len(kube.deleted_jobs) == 1


def test_job_failure_reads_the_failed_condition() -> None:
    assert jobs.job_failure({"status": {}}) is None
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}}
    assert jobs.job_failure(failed) == "DeadlineExceeded: the Job failed"


def test_job_names_fit_and_stay_readable() -> None:
    name = jobs.job_name("a" * 80, "abcd1234")
    assert len(name) <= 63 and name.endswith("-abcd1234") and name.startswith("coco-sync-aaa")
