"""Where a Confluence site lives and where its API is called: the site (web links) and the API base (requests),
which differ when requests go through Atlassian's API gateway.

Pure functions: no I/O. The client resolves a gateway's cloudId (`_edge/tenant_info`) and builds `Site` from these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

GATEWAY_PATH = re.compile(r"^/ex/confluence/(?P<cloud_id>[^/]+)(?:/wiki)?/?$")


@dataclass(frozen=True)
class Site:
    """`base` is the site: what web links start with. `api_base` is where requests go: the site itself, or the
    gateway's `https://api.atlassian.com/ex/confluence/{cloudId}/wiki`."""

    base: str
    cloud: bool
    api_base: str = field(default="")

    def __post_init__(self) -> None:
        if not self.api_base:
            object.__setattr__(self, "api_base", self.base)

    @property
    def api(self) -> str:
        """REST v1 (both editions)."""
        return f"{self.api_base}/rest/api"

    @property
    def v2(self) -> str:
        """REST v2 (Cloud only)."""
        return f"{self.api_base}/api/v2"

    @property
    def through_gateway(self) -> bool:
        return self.api_base != self.base

    @property
    def context(self) -> str:
        """The path both bases end with: `/wiki` on Cloud, the context path (or "") on Data Center."""
        return urlsplit(self.base).path

    def via(self, api_base: str) -> Site:
        return Site(base=self.base, cloud=self.cloud, api_base=api_base.rstrip("/"))

    def link(self, path: str) -> str:
        """A link from an API answer (`_links.next`) resolved against the base the client called, never against
        `_links.base` (through the gateway it names the site, which refuses the gateway's credentials).

        v1 links are relative to the base (`/rest/api/...`); v2 links to the host (`/wiki/api/v2/...`).
        """
        if path.startswith(("http://", "https://")):
            return path
        path = path if path.startswith("/") else "/" + path
        # Cloud's v2 links start with the site's `/wiki`, also when the client calls a gateway URL directly.
        prefixes = (self.context, "/wiki" if self.cloud and urlsplit(self.api_base).path.endswith("/wiki") else "")
        for prefix in prefixes:
            if prefix and path.startswith(prefix + "/") and path[len(prefix) :].startswith(("/rest/", "/api/")):
                return f"{self.api_base}{path[len(prefix) :]}"
        return f"{self.api_base}{path}"

    def web(self, path: str) -> str:
        """A path relative to the site (`_links.webui`, `_links.download`): always the site, never the API host."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base}{path if path.startswith('/') else '/' + path}"


def normalize_endpoint(endpoint: str) -> Site:
    """Accept an endpoint as users write it: trailing slashes, a pasted `/rest/api`, Cloud without `/wiki`."""
    parts = urlsplit(endpoint.strip())
    path = parts.path.rstrip("/")
    for suffix in ("/rest/api", "/api/v2"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    host = (parts.hostname or "").lower()
    cloud = host.endswith(".atlassian.net") or host.endswith(".jira.com")
    if cloud and not path.endswith("/wiki"):
        path = f"{path}/wiki"
    # Our emulator and reverse proxies may serve Cloud-style /wiki on other hosts.
    cloud = cloud or path.endswith("/wiki")
    return Site(base=urlunsplit((parts.scheme, parts.netloc, path, "", "")), cloud=cloud)


def gateway_cloud_id(endpoint: str, gateway_url: str) -> str | None:
    """The cloudId when `endpoint` is a URL on the operator's API gateway (`{gateway}/ex/confluence/{id}[/wiki]`)."""
    parts, gateway = urlsplit(endpoint.strip()), urlsplit(gateway_url)
    if (parts.scheme, parts.netloc.lower()) != (gateway.scheme, gateway.netloc.lower()):
        return None
    path = parts.path.rstrip("/")
    for suffix in ("/rest/api", "/api/v2"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    found = GATEWAY_PATH.match(path)
    return found.group("cloud_id") if found else None


def gateway_base(gateway_url: str, cloud_id: str) -> str:
    return f"{gateway_url.rstrip('/')}/ex/confluence/{cloud_id}/wiki"


def tenant_info_url(site: Site) -> str:
    """Where a Cloud site tells its cloudId, unauthenticated."""
    parts = urlsplit(site.base)
    return urlunsplit((parts.scheme, parts.netloc, "/_edge/tenant_info", "", ""))
