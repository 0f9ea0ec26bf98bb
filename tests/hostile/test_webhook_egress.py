"""The enrichment webhook under the egress policy, over real HTTP: refused addresses and hosts, redirects never
followed, answers bounded in bytes, values and time. A refusal fails the run whatever onFailure says."""

from __future__ import annotations

import time
from typing import Any

import pytest

from coco_operator.api.enrichment import Processor
from coco_operator.egress import webhook_policy
from coco_operator.enrich import EnrichContext, apply
from coco_operator.errors import SyncError
from coco_operator.settings import Settings
from tests.hostile.conftest import loopback_policy
from tests.hostile.server import HostileServer, bomb, raw_answer, redirect, trickle

DOCS = [{"id": "1", "title": "t", "source": {"id": "ns/x"}, "type": "page"}]


def _hook(url: str, **options: Any) -> list[Processor]:
    return [Processor.model_validate({"type": "webhook", "name": "pii", "webhook": {"url": url, **options}})]


@pytest.mark.parametrize("on_failure", ["Fail", "Skip"])
async def test_a_webhook_on_an_internal_address_is_refused_even_with_skip(
    endpoint: HostileServer, on_failure: str
) -> None:
    ctx = EnrichContext(egress=webhook_policy(Settings()))
    with pytest.raises(SyncError) as err:
        await apply(_hook(f"{endpoint.url}/enrich", onFailure=on_failure), DOCS, ctx)
    assert err.value.reason == "EgressDenied"
    assert err.value.message.startswith('processor #1 (webhook "pii" http://127.0.0.1:')
    assert "a loopback address" in err.value.message and "egress.allowPrivateNetworks" in err.value.message
    assert endpoint.hits == []


async def test_the_webhook_host_list_is_enforced(endpoint: HostileServer) -> None:
    settings = Settings(allow_private_networks=True, webhook_allowed_hosts=["*.svc.cluster.local"])
    with pytest.raises(SyncError, match=r"egress\.webhookHosts") as err:
        await apply(_hook(f"{endpoint.url}/enrich"), DOCS, EnrichContext(egress=webhook_policy(settings)))
    assert err.value.reason == "EgressDenied" and endpoint.hits == []


async def test_a_redirect_is_never_followed(endpoint: HostileServer, foreign: HostileServer) -> None:
    endpoint.route("/enrich", redirect(f"{foreign.url}/collect", status=307))
    with pytest.raises(SyncError, match="it answered HTTP 307"):
        await apply(_hook(f"{endpoint.url}/enrich", retries=0), DOCS, EnrichContext(egress=loopback_policy()))
    assert foreign.hits == []


async def test_a_compressed_answer_bomb_stops_at_the_cap(endpoint: HostileServer) -> None:
    endpoint.route("/enrich", raw_answer(bomb(1024 * 1024 * 1024), headers={"Content-Encoding": "gzip"}))
    ctx = EnrichContext(egress=loopback_policy(), max_response_bytes=4 * 1024 * 1024)
    t0 = time.monotonic()
    with pytest.raises(SyncError, match="its answer is larger than 4194304 bytes"):
        await apply(_hook(f"{endpoint.url}/enrich", retries=0), DOCS, ctx)
    assert time.monotonic() - t0 < 5


async def test_a_trickling_answer_ends_at_the_attempt_deadline(endpoint: HostileServer) -> None:
    endpoint.route("/enrich", trickle(b'{"documents": [', every_s=0.2))
    t0 = time.monotonic()
    with pytest.raises(SyncError, match="no answer within 1s"):
        await apply(
            _hook(f"{endpoint.url}/enrich", timeoutSeconds=1, retries=0), DOCS, EnrichContext(egress=loopback_policy())
        )
    took = time.monotonic() - t0
    print(f"\n[hostile] webhook trickling 1 byte/0.2s, timeoutSeconds 1: {took:.2f}s")
    assert took < 3 * 1


async def test_deeply_nested_or_oversized_json_answers_are_refused(endpoint: HostileServer) -> None:
    endpoint.route("/deep", raw_answer(b"[" * 200_000 + b"]" * 200_000))
    endpoint.route("/many", raw_answer(b"[" + b"0," * 1_500_000 + b"0]"))
    ctx = EnrichContext(egress=loopback_policy())
    with pytest.raises(SyncError, match=r"not valid JSON \(JSON nested too deeply\)"):
        await apply(_hook(f"{endpoint.url}/deep", retries=0), DOCS, ctx)
    with pytest.raises(SyncError, match="more than 1000000 JSON values"):
        await apply(_hook(f"{endpoint.url}/many", retries=0), DOCS, ctx)
