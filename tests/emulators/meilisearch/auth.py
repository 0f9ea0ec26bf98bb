"""Who may do what: the master key, API keys (actions, index patterns, expiry) and tenant tokens, checked in the
order Meilisearch checks them, with its status, code and message at each step.

A tenant token is a JWT (HS256/384/512) signed with an API key's value; its payload holds `searchRules` (an array
of index patterns, or an object of pattern -> null | {"filter": ...}), `apiKeyUid` and an optional `exp`. It is
accepted on search routes only; the rule's filter is ANDed with the query's.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import MeiliError, compact, serde_unexpected
from .keys import ApiKey, derive_key, pattern_matches

_ALGORITHMS = ["HS256", "HS384", "HS512"]
_PATTERN_RE = re.compile(r"[A-Za-z0-9_-]+\*?|\*")
INVALID_KEY = "The provided API key is invalid."


def _missing_header() -> MeiliError:
    return MeiliError(
        "missing_authorization_header",
        "The Authorization header is missing. It must use the bearer authorization method.",
    )


def _refused(message: str = INVALID_KEY) -> MeiliError:
    return MeiliError("invalid_api_key", message)


@dataclass
class SearchRules:
    """A tenant token's rules: index pattern -> rule object (None when the rules are an array or the rule null)."""

    rules: dict[str, Any]

    def allows(self, index: str) -> bool:
        return any(pattern_matches(p, index) for p in self.rules)

    def filter_for(self, index: str) -> Any:
        # The most specific matching pattern wins: an exact name, then the longest pattern.
        matching = [p for p in self.rules if pattern_matches(p, index)]
        best = max(matching, key=lambda p: (not p.endswith("*"), len(p)))
        rule = self.rules[best]
        return rule.get("filter") if isinstance(rule, dict) else None


@dataclass
class Access:
    """The outcome of authorization: the key used (None for the master key or an open server) and token rules."""

    key: ApiKey | None = None
    rules: SearchRules | None = None

    def sees(self, index: str) -> bool:
        return self.key is None or self.key.allows_index(index)

    def may_create(self, index: str) -> bool:
        return self.key is None or (self.key.allows("indexes.create") and self.key.allows_index(index))

    def search_filter(self, index: str) -> Any:
        return self.rules.filter_for(index) if self.rules is not None else None


class Authorizer:
    def __init__(self, master_key: str | None, keys: Mapping[str, ApiKey]) -> None:
        self.master_key = master_key
        self.keys = keys  # uid -> key, shared with the emulator's store

    def check(self, header: str | None, action: str, index: str | None) -> Access:
        """Authorize `action` (on `index` when the route names one) for an `Authorization` header."""
        scheme, _, token = (header or "").partition(" ")
        if header is not None and scheme != "Bearer":
            raise _missing_header()
        if self.master_key is None:
            if action.startswith("keys."):
                raise MeiliError(
                    "missing_master_key",
                    "Meilisearch is running without a master key. To access this API endpoint, you must have set a "
                    "master key at launch.",
                )
            return Access()
        if header is None:
            raise _missing_header()
        if " " not in header:
            raise _refused()
        if token == self.master_key:
            return Access()
        return self._with_key(token, action, index)

    def _with_key(self, token: str, action: str, index: str | None) -> Access:
        found = _tenant_token(token, self.master_key or "") if action == "search" else None
        uid, rules = found if found is not None else (self._uid_of(token), None)
        key = self.keys.get(uid)
        if key is None:
            raise _refused()
        if index is not None:
            if rules is not None and not rules.allows(index):
                raise _refused(
                    f"The provided tenant token cannot acces the index `{index}`, allowed indexes are "
                    f"{_debug_list(sorted(rules.rules))}."
                )
            if not key.allows_index(index):
                if rules is not None:
                    raise _refused(f"The API key used to generate this tenant token cannot acces the index `{index}`.")
                raise _refused(
                    f"The API key cannot acces the index `{index}`, authorized indexes are "
                    f"{_debug_list(sorted(key.indexes))}."
                )
        if not key.allows(action, index):
            raise _refused()
        return Access(key, rules)

    def _uid_of(self, token: str) -> str:
        for uid, key in self.keys.items():
            if key.key == token:
                return uid
        raise _refused()


def _debug_list(items: list[str]) -> str:
    """A list of strings as Rust's `{:?}` prints it."""
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _tenant_token(token: str, master_key: str) -> tuple[str, SearchRules] | None:
    """(apiKeyUid, rules) of a valid tenant token; None when the token is not a JWT at all (then it is a key)."""
    if token.count(".") < 2:
        return None
    try:
        raw = jwt.api_jws.decode_complete(token, options={"verify_signature": False})["payload"]
        text = raw.decode()
    except (jwt.DecodeError, UnicodeDecodeError) as exc:
        raise _refused(f"Could not decode tenant token, {exc}.") from None
    uid, rules, exp = _claims(text)
    try:
        jwt.api_jws.decode_complete(token, derive_key(master_key, uid), algorithms=_ALGORITHMS)
    except jwt.InvalidAlgorithmError:
        raise _refused("Could not decode tenant token, InvalidAlgorithm.") from None
    except jwt.InvalidSignatureError:
        raise _refused("Could not decode tenant token, InvalidSignature.") from None
    now = int(time.time())
    if exp is not None and now > exp:
        raise _refused(f"Tenant token expired. Was valid up to `{exp}` and we're now `{now}`.")
    return uid, rules


def _claims(text: str) -> tuple[str, SearchRules, int | None]:
    """The claims, refused with serde_json's wording when they do not deserialize."""
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise _json_error(f"{exc}", len(text)) from None
    if not isinstance(payload, dict):
        raise _json_error(f"invalid type: {serde_unexpected(payload)}, expected struct Claims", len(text))
    rules = _search_rules(payload.get("searchRules"), text) if "searchRules" in payload else None
    exp = payload.get("exp")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int)):
        raise _json_error(f"invalid type: {serde_unexpected(exp)}, expected i64", _after(text, "exp"))
    uid = payload.get("apiKeyUid")
    if rules is None or uid is None:
        raise _json_error(f"missing field `{'searchRules' if rules is None else 'apiKeyUid'}`", len(text.rstrip()))
    try:
        return str(uuid.UUID(str(uid))), rules, exp
    except ValueError:
        raise _json_error(f"invalid apiKeyUid {compact(uid)}, expected a UUID", _after(text, "apiKeyUid")) from None


def _search_rules(value: Any, text: str) -> SearchRules:
    if isinstance(value, list) and all(isinstance(p, str) and _PATTERN_RE.fullmatch(p) for p in value):
        return SearchRules(dict.fromkeys(value))
    if (
        isinstance(value, dict)
        and all(_PATTERN_RE.fullmatch(p) for p in value)
        and all(r is None or isinstance(r, dict) for r in value.values())
    ):
        return SearchRules(dict(value))
    raise _json_error("data did not match any variant of untagged enum SearchRules", _after(text, "searchRules"))


def _after(text: str, key: str) -> int:
    """serde_json's column when a field's value is refused: just past the value."""
    match = re.search(rf'"{key}"\s*:\s*', text)
    if match is None:
        return len(text)
    _, end = json.JSONDecoder().raw_decode(text, match.end())
    return end + 1


def _json_error(message: str, column: int) -> MeiliError:
    return _refused(f"Could not decode tenant token, JSON error: {message} at line 1 column {column}.")
