"""Secret values are cleaned where they are read and never quoted; transport failures are fixed phrases."""

from __future__ import annotations

import httpx
import pytest

from coco_operator.errors import SecretError
from coco_operator.secret_values import clean_secret_value, redact, transport_problem, truncate

VALUE = "tok-3f9a-secret"


@pytest.mark.parametrize("raw", [VALUE + "\n", VALUE + "\r\n", " " + VALUE + " \n"])
def test_surrounding_line_breaks_are_stripped(raw: str) -> None:
    assert clean_secret_value(raw, secret="ns/confluence", key="token") == VALUE


@pytest.mark.parametrize("raw", [f"{VALUE}\nsecond-line", f"{VALUE}\x00", f"{VALUE}\x1b[0m", f"tok\t{VALUE}"])
def test_control_characters_are_refused_naming_the_secret_and_key_not_the_value(raw: str) -> None:
    with pytest.raises(SecretError) as err:
        clean_secret_value(raw, secret="ns/confluence", key="token")
    message = err.value.message
    assert err.value.reason == "SecretValueInvalid" and not err.value.retryable
    assert "key 'token' of Secret ns/confluence" in message and "control character" in message
    assert VALUE not in message and "second-line" not in message


def test_an_empty_value_is_refused() -> None:
    with pytest.raises(SecretError, match="is empty"):
        clean_secret_value("\n", secret="ns/x", key="token")


def test_redact_and_truncate() -> None:
    assert redact(f"bad token Bearer {VALUE}", [VALUE + "\n", None]) == "bad token Bearer ***"
    assert redact("the word abc stays", ["abc"]) == "the word abc stays"  # too short to be a secret
    long = "x" * 10_000
    cut = truncate(long, 100)
    assert len(cut) == 100 and cut.endswith(" ... (9927 more characters)") and cut.startswith("x" * 73 + " ")
    assert truncate("short") == "short"


def test_transport_problems_never_quote_the_exception() -> None:
    leaky = httpx.LocalProtocolError(f"Illegal header value b'Bearer {VALUE}\\n'")
    assert VALUE not in transport_problem(leaky) and "header value" in transport_problem(leaky)
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    assert transport_problem(refused) == "connection refused"
    assert transport_problem(httpx.ReadTimeout("timed out")) == "timed out"
    assert transport_problem(httpx.RemoteProtocolError(f"peer sent {VALUE}")).startswith("the server broke")


async def test_secrets_read_through_the_api_must_opt_in_and_are_cleaned() -> None:
    from coco_operator.api.datasource import DatasourceSpec
    from coco_operator.dispatcher.secrets import ApiSecrets
    from tests.unit.fake_kube import FakeKube, datasource_body

    spec = DatasourceSpec.model_validate(datasource_body()["spec"])
    secrets = ApiSecrets(kube := FakeKube(), "docs", owner="Datasource docs/wiki")
    kube.add_secret("docs", "confluence-token", {"token": "tok-1234567\n"})
    assert (await secrets.credentials(spec)).token == "tok-1234567"
    kube.add_secret("docs", "confluence-token", {"token": "tok\r\n-injected: 1"})
    with pytest.raises(SecretError) as bad:
        await secrets.credentials(spec)
    assert bad.value.reason == "SecretValueInvalid" and "Secret docs/confluence-token" in bad.value.message
    assert "'token'" in bad.value.message and "injected" not in bad.value.message
    kube.add_secret("docs", "confluence-token", {"token": "tok-1234567"}, opted_in=False)
    with pytest.raises(SecretError) as refused:
        await secrets.credentials(spec)
    assert refused.value.reason == "SecretNotOptedIn"
    assert refused.value.message == (
        "Secret docs/confluence-token is not labelled coco.rs/usable-by-datasources=true, so Datasource docs/wiki may "
        "not use it (a Datasource may only use Secrets meant for Datasources). If this Secret is meant for it, label "
        "it: kubectl -n docs label secret confluence-token coco.rs/usable-by-datasources=true"
    )
