"""The egress policy's decisions (pure): address classes, origins, host lists, links, and policies from settings."""

from __future__ import annotations

import ipaddress

import pytest

from coco_operator.egress import (
    AddressRules,
    EgressPolicy,
    Origin,
    address_class,
    confluence_policy,
    host_matches,
    literal_ip,
    webhook_policy,
)
from coco_operator.egress_http import MAX_JSON_VALUES, json_values
from coco_operator.errors import EgressDeniedError
from coco_operator.settings import Settings


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.20.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.10.10", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("0.0.0.0", "the unspecified address"),
        ("0.1.2.3", "the unspecified address"),
        ("::", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
        ("2002:a00:1::", "a private address"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),  # NAT64 of 169.254.169.254
        ("198.51.100.7", "a private address"),  # documentation range
        ("240.0.0.1", "a private address"),  # reserved
    ],
)
def test_address_classes(address: str, kind: str | None) -> None:
    assert address_class(ipaddress.ip_address(address)) == kind


def test_allow_private_opens_private_classes_only_and_cidrs_open_exactly_their_networks() -> None:
    rules = AddressRules(allow_private=True)
    for ok in ("127.0.0.1", "10.0.0.1", "fe80::1", "100.64.0.1"):
        assert rules.problem(ipaddress.ip_address(ok)) is None
    for refused in ("169.254.169.254", "0.0.0.0", "224.0.0.1"):
        assert rules.problem(ipaddress.ip_address(refused)) is not None
    cidrs = AddressRules.parse(False, ["10.96.0.0/12", "169.254.169.254/32"])
    assert cidrs.problem(ipaddress.ip_address("10.100.0.1")) is None
    assert cidrs.problem(ipaddress.ip_address("169.254.169.254")) is None
    assert cidrs.problem(ipaddress.ip_address("10.0.0.1")) == "a private address"


def test_literal_ips_in_every_form_getaddrinfo_accepts() -> None:
    assert literal_ip("127.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_ip("[::1]") == ipaddress.ip_address("::1")
    assert literal_ip("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_ip("0x7f.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_ip("wiki.example.com") is None and literal_ip("0xdeadbeef.example") is None


def test_origins_and_host_globs() -> None:
    assert Origin.of("https://Wiki.Example.com/x") == Origin.of("https://wiki.example.com:443/y")
    assert Origin.of("http://wiki.example.com") != Origin.of("https://wiki.example.com")
    assert Origin.of("https://münchen.de").host == "xn--mnchen-3ya.de"
    assert str(Origin.of("http://[::1]:8080/")) == "http://[::1]:8080"
    assert host_matches("acme.atlassian.net", ["*.atlassian.net"])
    assert not host_matches("acme.atlassian.net.evil.com", ["*.atlassian.net"])


def test_links_stay_home_downloads_may_reach_listed_hosts_without_credentials() -> None:
    policy = EgressPolicy("Confluence", allow_http=False)
    home = policy.check_start("https://acme.atlassian.net/wiki")
    assert policy.check_link("https://acme.atlassian.net/wiki/rest/api/x", home, "api") == home
    media = policy.check_link("https://api.media.atlassian.com/file/1/binary?token=t", home, "download")
    assert not policy.sends_credentials(media, home) and policy.sends_credentials(home, home)
    with pytest.raises(EgressDeniedError, match="API links must stay"):
        policy.check_link("https://api.media.atlassian.com/x", home, "api")
    with pytest.raises(EgressDeniedError, match="plain http"):
        policy.check_link("http://api.media.atlassian.com/x", home, "download")
    with pytest.raises(EgressDeniedError, match=r"egress\.linkHosts"):
        policy.check_link("https://evil.example/x", home, "download")


def test_refusals_name_the_host_and_the_setting_never_the_query() -> None:
    policy = EgressPolicy("the webhook", start_hosts=("*.svc",), start_setting="egress.webhookHosts (X)")
    with pytest.raises(EgressDeniedError) as err:
        policy.check_start("https://collector.example/hook?token=s3cret")
    assert "collector.example" in err.value.message and "egress.webhookHosts" in err.value.message
    assert "s3cret" not in err.value.message and err.value.reason == "EgressDenied" and not err.value.retryable


def test_metadata_is_refused_even_without_address_rules() -> None:
    policy = EgressPolicy("the webhook", addresses=None)
    with pytest.raises(EgressDeniedError, match="metadata"):
        policy.check_start("http://169.254.169.254/latest/meta-data/iam")
    with pytest.raises(EgressDeniedError, match="metadata"):
        policy.check_start("http://metadata.google.internal./computeMetadata/v1/")
    policy.check_start("http://10.0.0.1/")  # not checked without rules (the transport does not check either)


def test_policies_from_settings() -> None:
    settings = Settings(
        allow_private_networks=True,
        allowed_cidrs=["10.96.0.0/12"],
        allowed_hosts=["*.corp"],
        link_allowed_hosts=["media.corp"],
        webhook_allowed_hosts=["*.svc"],
    )
    confluence = confluence_policy(settings)
    assert confluence.addresses == AddressRules(True, (ipaddress.ip_network("10.96.0.0/12"),))
    assert confluence.start_hosts == ("*.corp",) and confluence.link_hosts == ("media.corp",)
    assert not confluence.allow_http
    hook = webhook_policy(settings)
    assert hook.start_hosts == ("*.svc",) and hook.link_hosts == () and hook.allow_http
    with pytest.raises(ValueError, match="not a network"):
        Settings(allowed_cidrs=["10.96.0.0/33"])


def test_json_values_bound_counts_structure_not_commas_in_long_strings() -> None:
    assert json_values(b'{"a": [1, 2, {"b": 3}]}') <= 10
    prose = b'{"body": "' + b"word, " * 1_200_000 + b'"}'  # over the cap until strings are looked into
    assert json_values(prose) < 10
    tiny = b"[" + b"0," * (MAX_JSON_VALUES + 10) + b"0]"
    assert json_values(tiny) > MAX_JSON_VALUES
