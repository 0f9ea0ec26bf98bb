"""The egress policy: which URLs and addresses the operator may reach on behalf of a Datasource.

Pure decisions (docs/security.md, point 1). `egress_http` enforces them on every request, redirect hop and connection:
URLs are checked here before a request is sent, and the addresses a connection really uses are checked here by the
transport after it resolved the name itself.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from coco_operator.errors import EgressDeniedError
from coco_operator.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Where cloud providers serve instance credentials (AWS, GCP, Azure, OpenStack; AWS over IPv6; Alibaba; Oracle).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # 0.0.0.0 reaches the local host on Linux
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Classes the administrator's allowPrivateNetworks opens; the others need an explicit allowedCidrs entry.
PRIVATE_CLASSES = frozenset(
    {"a loopback address", "a private address", "a link-local address", "a carrier-grade NAT address"}
)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Confluence Cloud redirects attachment downloads to its media host (docs/security.md).
DEFAULT_LINK_HOSTS = ("api.media.atlassian.com",)

PRIVATE_SETTINGS = "egress.allowPrivateNetworks (COCO_ALLOW_PRIVATE_NETWORKS)"
CIDR_SETTINGS = "egress.allowedCidrs (COCO_ALLOWED_CIDRS)"
LINK_SETTINGS = "egress.linkHosts (COCO_LINK_ALLOWED_HOSTS)"

LinkKind = Literal["api", "download"]


def address_class(ip: IPAddress) -> str | None:
    """Why `ip` is not an ordinary public address (e.g. "a private address"), or None if it is one."""
    for embedded in _embedded_ipv4(ip):
        problem = address_class(embedded)
        if problem:
            return problem
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.version == 4 and ip in _CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global or ip.is_reserved:
        return "a reserved address"
    return None


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to (mapped, 6to4, NAT64), which must pass the same checks."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip in _NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


@dataclass(frozen=True)
class AddressRules:
    """Which non-public addresses the administrator allows."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, allow_private: bool, cidrs: Iterable[str]) -> AddressRules:
        return cls(allow_private, tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()))

    def problem(self, ip: IPAddress) -> str | None:
        """Why connecting to `ip` is refused (its address class), or None."""
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return None
        kind = address_class(ip)
        if kind is None or (self.allow_private and kind in PRIVATE_CLASSES):
            return None
        return kind


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case, IDNA-encoded
    port: int

    @classmethod
    def of(cls, url: str | httpx.URL) -> Origin:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        scheme = parsed.scheme.lower()
        host = parsed.raw_host.decode("ascii").lower()
        return cls(scheme, host, parsed.port or DEFAULT_PORTS.get(scheme, 0))

    def __str__(self) -> str:
        default = DEFAULT_PORTS.get(self.scheme)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, including the forms `getaddrinfo` accepts (2130706433, 0x7f.1)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def host_matches(host: str, patterns: Sequence[str]) -> bool:
    """Glob match (`*.atlassian.net`) on the lower-case host; a look-alike suffix is not a match."""
    return any(fnmatch.fnmatchcase(host, p.strip().lower()) for p in patterns if p.strip())


@dataclass(frozen=True)
class EgressPolicy:
    """The rules for one kind of outbound request (Confluence or webhook).

    `addresses` None: the transport does not check addresses (a caller that has not been given the operator's
    settings); origins, schemes and host lists are still enforced.
    """

    purpose: str  # how messages name the requests, e.g. "Confluence" or "the webhook"
    addresses: AddressRules | None = field(default_factory=AddressRules)
    start_hosts: tuple[str, ...] = ()  # hosts a starting URL (endpoint, webhook URL) may name; empty: any
    start_setting: str = "egress.confluenceHosts (COCO_ALLOWED_HOSTS)"
    # Other hosts a download or its redirects may reach: over https, or http where the administrator allows http.
    link_hosts: tuple[str, ...] = DEFAULT_LINK_HOSTS
    allow_http: bool = True

    def deny(self, host: str, why: str, fix: str) -> EgressDeniedError:
        return EgressDeniedError(
            f"the operator refused to connect to {host or 'a URL without host'} for {self.purpose}: {why}; {fix}"
        )

    def check_url(self, url: str | httpx.URL) -> Origin:
        """The URL's origin, after the checks every request passes; raises EgressDeniedError."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
            origin = Origin.of(parsed)
        except (httpx.InvalidURL, UnicodeError, ValueError):
            raise self.deny("", "the URL is not valid", "fix the URL") from None
        if origin.scheme not in DEFAULT_PORTS:
            raise self.deny(origin.host, f"scheme {origin.scheme!r} is not http or https", "use an https URL")
        if origin.scheme == "http" and not self.allow_http:
            raise self.deny(
                origin.host,
                "plain http would send credentials unencrypted",
                "use https, or ask the administrator to allow http (COCO_ALLOW_HTTP)",
            )
        if parsed.userinfo:
            raise self.deny(origin.host, "the URL carries credentials", "remove user:password@ from the URL")
        if not origin.host:
            raise self.deny("", "the URL has no host", "use an absolute URL")
        self.check_name(origin.host)
        ip = literal_ip(origin.host)
        if ip is not None:
            if ip in METADATA_ADDRESSES and self.addresses is None:  # never legitimate, settings or not
                raise self.deny(origin.host, "it is a cloud metadata address", "point at another host")
            self.check_address(origin.host, ip, literal=True)
        return origin

    def check_name(self, host: str) -> None:
        """Names that lead to cloud metadata services, refused before any resolution (also behind a proxy)."""
        if host.rstrip(".").lower() in METADATA_HOSTS:
            raise self.deny(host, "it is a cloud metadata service", "point at another host")

    def check_start(self, url: str | httpx.URL) -> Origin:
        """A URL a tenant configured (endpoint, webhook): the URL checks and the administrator's host list."""
        origin = self.check_url(url)
        if self.start_hosts and not host_matches(origin.host, self.start_hosts):
            raise self.deny(
                origin.host,
                f"it is not in the operator's allowed hosts ({', '.join(self.start_hosts)})",
                f"use an allowed host, or ask the administrator to add it to {self.start_setting}",
            )
        return origin

    def check_link(self, url: str | httpx.URL, home: Origin, kind: LinkKind) -> Origin:
        """A URL reached from `home` (a link in an answer or a redirect hop).

        API links stay on the home origin; downloads may also reach an administrator-listed link host over https.
        """
        origin = self.check_url(url)
        if origin == home:
            return origin
        secure = origin.scheme == "https" or self.allow_http
        if kind == "download" and secure and host_matches(origin.host, self.link_hosts):
            return origin
        what = "a download link or redirect" if kind == "download" else "a link or redirect in an API answer"
        fix = (
            f"download hosts need the administrator's {LINK_SETTINGS}"
            if kind == "download"
            else "API links must stay on the endpoint's origin"
        )
        raise self.deny(origin.host, f"{what} points to {origin}, another origin than the endpoint ({home})", fix)

    def check_address(self, host: str, ip: IPAddress, *, literal: bool = False) -> None:
        """Refuse connecting to `ip` (which `host` names or resolved to) unless the address rules allow it."""
        if self.addresses is None:
            return
        problem = self.addresses.problem(ip)
        if problem is None:
            return
        # A resolved address is not shown: messages reach tenants, and internal DNS is not theirs to map.
        why = f"it is {problem}" if literal else f"it resolves to {problem}"
        if problem in PRIVATE_CLASSES:
            fix = f"the administrator may allow such addresses with {PRIVATE_SETTINGS} or {CIDR_SETTINGS}"
        else:
            fix = f"only the administrator's {CIDR_SETTINGS} can allow it"
        raise self.deny(host, why, fix)

    def sends_credentials(self, origin: Origin, home: Origin) -> bool:
        """Credentials go to the endpoint's own origin only, never to a link host."""
        return origin == home


def confluence_policy(settings: Settings) -> EgressPolicy:
    """The policy for a Datasource's Confluence requests, from the operator's settings."""
    return EgressPolicy(
        "Confluence",
        addresses=AddressRules.parse(settings.allow_private_networks, settings.allowed_cidrs),
        start_hosts=tuple(settings.allowed_hosts),
        start_setting="egress.confluenceHosts (COCO_ALLOWED_HOSTS)",
        link_hosts=tuple(settings.link_allowed_hosts),
        allow_http=settings.allow_http,
    )


def webhook_policy(settings: Settings) -> EgressPolicy:
    """The policy for enrichment webhooks: http allowed (in-cluster services), no links to follow."""
    return EgressPolicy(
        "the webhook",
        addresses=AddressRules.parse(settings.allow_private_networks, settings.allowed_cidrs),
        start_hosts=tuple(settings.webhook_allowed_hosts),
        start_setting="egress.webhookHosts (COCO_WEBHOOK_ALLOWED_HOSTS)",
        link_hosts=(),
        allow_http=True,
    )
