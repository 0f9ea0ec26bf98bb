"""Index ownership and embedder profiles (`tenancy`), the deletion cap (`sync.plan`), and what the CRD refuses for
`sync.timeout`: pure decisions, every rule and its edges."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from coco_operator.api.datasource import DatasourceSpec
from coco_operator.dispatcher.schedule import run_timeout
from coco_operator.errors import SyncError
from coco_operator.settings import Settings
from coco_operator.sync.plan import deletion_cap, mass_deletion
from coco_operator.tenancy import embedder_settings, index_access, index_problem, owned_patterns, owns
from coco_operator.times import parse_duration
from tests.unit.fake_kube import datasource_body

GRANTS = Settings(shared_indexes=["common", "handbook"], index_grants={"team-a": ["archive", "legacy_*"]})


@pytest.mark.parametrize(
    ("namespace", "index", "access"),
    [
        ("team", "team", "owned"),
        ("team", "team_docs", "owned"),
        ("team", "team-a", None),  # a longer namespace is not a suffix
        ("team", "team-a_docs", None),
        ("team-a", "team_docs", None),
        ("team", "teamdocs", None),
        ("team", "common", "shared"),
        ("team", "coco_documents", None),  # the default index is shared only by default
        ("team-a", "archive", "granted"),
        ("team-a", "legacy_2019", "granted"),
        ("team-a", "legacy", None),  # the pattern is a prefix with the underscore
        ("team-b", "archive", None),  # grants are per namespace
    ],
)
def test_index_access(namespace: str, index: str, access: str | None) -> None:
    assert index_access(namespace, index, GRANTS) == access


def test_the_default_index_is_shared_unless_the_admin_says_otherwise() -> None:
    assert index_access("anyone", "coco_documents", Settings()) == "shared"
    assert index_access("anyone", "coco_documents", Settings(shared_indexes=[])) is None
    assert owned_patterns("team") == ["team", "team_*"] and owns("team", "team_x") and not owns("team", "teamx")


def test_the_refusal_names_the_rule_the_choices_and_the_fix() -> None:
    error = index_problem("team/wiki", "payroll", GRANTS)
    assert isinstance(error, SyncError) and error.reason == "IndexNotAllowed" and not error.retryable
    message = error.message
    assert "Datasource team/wiki may not write into index 'payroll'" in message
    assert "team, team_*, common, handbook" in message and "team_docs" in message
    assert "indexGrants: {team: [payroll]}" in message
    assert index_problem("team/wiki", "team_payroll", GRANTS) is None


PROFILES = Settings(
    embedder_profiles={
        "small": {"source": "userProvided", "dimensions": 3},
        "openai": {"source": "openAi", "model": "text-embedding-3-small", "apiKeyEnv": "COCO_EMBEDDER_KEY_OPENAI"},
    }
)


def test_profiles_resolve_with_the_key_from_the_operators_environment() -> None:
    environ = {"COCO_EMBEDDER_KEY_OPENAI": "sk-admin\n"}
    out = embedder_settings("team/wiki", "team_docs", ["small", "openai"], PROFILES, environ)
    assert out == {
        "small": {"source": "userProvided", "dimensions": 3},
        "openai": {"source": "openAi", "model": "text-embedding-3-small", "apiKey": "sk-admin"},
    }
    assert embedder_settings("team/wiki", "common", None, PROFILES, {}) is None


@pytest.mark.parametrize(
    ("index", "profiles", "environ", "reason", "says"),
    [
        ("team", ["large"], {}, "EmbedderProfileNotFound", "profiles: openai, small"),
        ("coco_documents", ["small"], {}, "EmbeddersNotAllowed", "which namespace team does not own"),
        ("team", ["openai"], {}, "EmbedderProfileInvalid", "COCO_EMBEDDER_KEY_OPENAI, which is not set"),
        ("team", ["openai"], {"COCO_EMBEDDER_KEY_OPENAI": "sk\x00x"}, "SecretValueInvalid", "control character"),
    ],
)
def test_profile_refusals(index: str, profiles: list[str], environ: dict[str, str], reason: str, says: str) -> None:
    with pytest.raises(SyncError) as info:
        embedder_settings("team/wiki", index, profiles, PROFILES, environ)
    assert info.value.reason == reason and says in info.value.message
    assert "sk" not in info.value.message.replace("ask", "")


@pytest.mark.parametrize(
    ("deleting", "indexed", "listed", "refused"),
    [
        (0, 1000, 0, None),
        (5, 20, 15, None),  # under the floor of 50
        (50, 60, 10, None),
        (51, 60, 9, "would delete 51 of the 60"),
        (100, 1000, 900, None),  # 10 %
        (101, 1000, 899, "cap of 100 per run"),
        (3, 3, 0, "listed no items in scope"),  # empty listing: refused whatever the cap
        (2, 5, None, None),  # an incremental run without a listing: only the cap applies
    ],
)
def test_the_deletion_cap(deleting: int, indexed: int, listed: int | None, refused: str | None) -> None:
    why = mass_deletion(deleting=deleting, indexed=indexed, listed=listed, fraction=0.1, floor=50)
    assert (why is None) if refused is None else (why is not None and refused in why)
    assert deletion_cap(1000, 0.1, 50) == 100 and deletion_cap(10, 0.1, 50) == 50 and deletion_cap(0, 0.5, 0) == 0


def _spec(**sync: object) -> DatasourceSpec:
    return DatasourceSpec.model_validate(datasource_body(sync={"interval": "5m", **sync})["spec"])


@pytest.mark.parametrize("timeout", ["25h", "99999999999999999999h", "9" * 60 + "h"])
def test_a_huge_sync_timeout_is_refused_by_the_model_not_an_overflow(timeout: str) -> None:
    with pytest.raises(ValidationError, match=r"sync\.timeout must be at most 24h"):
        _spec(timeout=timeout)
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999999999h")


def test_run_timeout_never_exceeds_the_operators_maximum() -> None:
    settings = Settings(max_running_timeout_in_seconds=1200)
    assert run_timeout(_spec(timeout="10m"), settings) == 600
    assert run_timeout(_spec(timeout="24h"), settings) == 1200
    assert run_timeout(_spec(), settings) == 1200
    # A spec stored before admission capped it: the operator's maximum, never an OverflowError.
    stored = _spec()
    stored.sync.timeout = "99999999999999999999h"
    assert run_timeout(stored, settings) == 1200
