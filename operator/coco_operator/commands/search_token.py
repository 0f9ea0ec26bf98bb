"""`coco-operator search-token`: a Meilisearch tenant token that lets one person find only what they may read.

The token's search rule is Confluence's read rule for that person (`permissions/search.py`): their identities and
groups against each document's `permissions`. Groups come from the caller (what the identity provider says), or
with --resolve-groups from Confluence: `GET /rest/api/user/memberof`, one request per 200 groups (Data Center: one
more to learn both the user's key and name).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from coco_operator.commands.operator import settings_with
from coco_operator.errors import SyncError
from coco_operator.permissions.search import reader_filter, tenant_token
from coco_operator.times import parse_duration


def cmd_search_token(args: argparse.Namespace) -> int:
    try:
        expires = parse_duration(args.expires)
    except ValueError as exc:
        print(f"error: --expires: {exc}", file=sys.stderr)
        return 2
    users, groups = list(args.user), list(args.group)
    if args.resolve_groups:
        try:
            found_users, found_groups = asyncio.run(_resolve(args, users[0], _confluence_token(args)))
        except (SyncError, OSError, ValueError) as exc:
            print(f"error: --resolve-groups: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 1
        users = sorted({*users, *found_users})
        groups = sorted({*groups, *found_groups})
    from coco_operator.search.signing import signing_key  # the Meilisearch client loads only for this command

    try:
        key = signing_key(settings_with(meili_url=args.meili_url))
        token = tenant_token(
            api_key=key.key, api_key_uid=key.uid, indexes=args.index, user_ids=users, groups=groups, expires_in=expires
        )
    except (SyncError, ValueError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if key.created:
        print(f"note: created the search-only key 'coco-operator search' (uid {key.uid})", file=sys.stderr)
    if args.json:
        expires_at = (datetime.now(UTC) + expires).isoformat(timespec="seconds")
        out = {"token": token, "apiKeyUid": key.uid, "indexes": args.index, "expiresAt": expires_at}
        print(json.dumps({**out, "filter": reader_filter(users, groups), "users": users, "groups": groups}))
    else:
        print(token)
    return 0


def _confluence_token(args: argparse.Namespace) -> str:
    if not args.endpoint:
        raise ValueError("give --endpoint (the Confluence base URL)")
    token = Path(args.token_file).read_text().strip() if args.token_file else os.environ.get("CONFLUENCE_TOKEN")
    if not token:
        raise ValueError("give --token-file or set CONFLUENCE_TOKEN")
    return token


async def _resolve(args: argparse.Namespace, user: str, token: str) -> tuple[set[str], set[str]]:
    from coco_operator.confluence.client import ConfluenceClient
    from coco_operator.confluence.space_access import groups_of

    async with ConfluenceClient(args.endpoint, token, username=args.username) as client:
        return await groups_of(client, user)
