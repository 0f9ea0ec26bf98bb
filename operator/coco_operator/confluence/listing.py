"""A listing, page by page: the requests of `paging`'s decisions (how to move on, how a listing ends)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from coco_operator.confluence.paging import Loop, Mode, Stop, Trail, next_step
from coco_operator.confluence.shape import results_of
from coco_operator.confluence.site import Site
from coco_operator.egress import EgressPolicy, Origin
from coco_operator.errors import ConfluenceUnavailableError, ListingIncompleteError

log = logging.getLogger(__name__)


class Client(Protocol):
    site: Site
    egress: EgressPolicy
    home: Origin

    def url(self, path: str) -> str: ...

    async def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, fail_fast: frozenset[int] = frozenset()
    ) -> dict[str, Any]: ...


def _shown(url: str) -> str:
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


async def paginate(
    client: Client,
    path: str,
    params: dict[str, Any],
    *,
    fail_fast: frozenset[int] = frozenset(),
    trail: Trail | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield every result of a listing.

    A relative `next` is resolved against the base the client called, never `_links.base` (through the gateway it
    names the site; a server may name any host there); an absolute one must stay on the API's origin. Never trusts
    the requested page size (servers cap it silently). `trail` records the distinct ids and how the listing ended,
    for callers that must know whether it is complete.
    """
    trail = Trail() if trail is None else trail
    site = client.site
    url = client.url(path)
    mode: Mode = "cursor" if site.cloud else "offset"
    query: dict[str, Any] | None = dict(params)
    start = int(params.get("start") or 0)
    followed = {str(httpx.URL(url).copy_merge_params(params))}
    while True:
        page = await client.get_json(url, query, fail_fast=fail_fast)
        results = results_of(page, site.base)  # each an object with an id, its fields of the right types
        trail.pages += 1
        new = 0
        for item in results:
            new += _remember(trail, item)
            yield item
        link = _next_link(page, site.base)
        resolved = site.link(link) if link else None
        if resolved:  # offset paging never fetches it, but a link off the API's origin is refused all the same
            client.egress.check_link(resolved, client.home, "api")
        step = next_step(
            mode=mode, received=len(results), new=new, link=link, resolved=resolved, start=start, followed=followed
        )
        if isinstance(step, Stop):
            trail.unproven = step.unproven
            if step.unproven:
                log.info("listing %s on %s stopped at %s", _shown(url), site.base, step.unproven)
            return
        if isinstance(step, Loop):
            raise ListingIncompleteError(
                f"the listing {_shown(url)} of Confluence at {site.base} ended early: the server sent {step.why}; "
                "nothing was deleted and the run will be retried"
            )
        if step.start is not None:
            start, query = step.start, {**params, "start": step.start}
        elif step.url is not None:
            url, query = step.url, None
            followed.add(step.url)


def _remember(trail: Trail, item: object) -> int:
    """Record an item's id in the trail; 1 when it was new (an item without an id counts as new)."""
    if not isinstance(item, dict):
        return 1
    raw = item.get("id")
    if raw is None and isinstance(item.get("content"), dict):
        raw = item["content"].get("id")  # /rest/api/search wraps content
    if raw is None:
        return 1
    cid = str(raw)
    if cid in trail.ids:
        return 0
    trail.ids.add(cid)
    return 1


def _next_link(page: dict[str, Any], base: str) -> str | None:
    links = page.get("_links")
    nxt = links.get("next") if isinstance(links, dict) else None
    if nxt is not None and not isinstance(nxt, str):
        raise ConfluenceUnavailableError(f"Confluence at {base} answered a next link that is not text")
    return nxt or None
