"""Fixtures for hostile-input tests: two hostile servers on 127.0.0.1 (the endpoint and a foreign origin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coco_operator.egress import AddressRules, EgressPolicy
from tests.hostile.server import HostileServer


@pytest.fixture
def endpoint() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


@pytest.fixture
def foreign() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


def loopback_policy(**kw: object) -> EgressPolicy:
    """What tests and the demo run with: loopback allowed (allowPrivateNetworks), origins still enforced."""
    return EgressPolicy("Confluence", addresses=AddressRules(allow_private=True), **kw)  # type: ignore[arg-type]
