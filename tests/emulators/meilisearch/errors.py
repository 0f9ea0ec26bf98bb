"""Meilisearch's error object, and the messages of its request deserializer (deserr) that the emulator repeats."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

JSON = dict[str, Any]
ERRORS_LINK = "https://docs.meilisearch.com/errors#"

_STATUS_BY_CODE = {
    "missing_authorization_header": 401,
    "missing_master_key": 401,
    "invalid_api_key": 403,
    "index_not_found": 404,
    "task_not_found": 404,
    "api_key_not_found": 404,
    "index_already_exists": 409,
    "api_key_already_exists": 409,
    "payload_too_large": 413,
    "missing_content_type": 415,
    "invalid_content_type": 415,
    "internal": 500,
}
_TYPE_BY_CODE = {
    "missing_authorization_header": "auth",
    "missing_master_key": "auth",
    "invalid_api_key": "auth",
    "internal": "internal",
}


class MeiliError(Exception):
    """An API error: the answer of a refused request, or the `error` of a failed task."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 400)

    @property
    def type(self) -> str:
        return _TYPE_BY_CODE.get(self.code, "invalid_request")

    def body(self) -> JSON:
        return {"message": self.message, "code": self.code, "type": self.type, "link": ERRORS_LINK + self.code}

    def in_index(self, uid: str) -> MeiliError:
        """The same error raised by the engine (milli) inside an index: Meilisearch prefixes those with the index."""
        return MeiliError(self.code, f"Index `{uid}`: {self.message}")


def not_emulated(what: str) -> MeiliError:
    """A real Meilisearch feature the emulator leaves out: refused loudly rather than answered wrongly."""
    return MeiliError(
        "bad_request",
        f"{what} is not implemented by the Meilisearch emulator (tests/emulators/meilisearch); implement it there, "
        "with a conformance test in tests/meili, if the product needs it.",
    )


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def ticks(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def describe(value: Any) -> str:
    """How deserr describes an unexpected value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean: `{compact(value)}`"
    if isinstance(value, int):
        return f"{'a positive' if value >= 0 else 'a negative'} integer: `{value}`"
    if isinstance(value, float):
        return f"a number: `{compact(value)}`"
    if isinstance(value, str):
        return f"a string: `{compact(value)}`"
    if isinstance(value, list):
        return f"an array: `{compact(value)}`"
    return f"an object: `{compact(value)}`"


def serde_unexpected(value: Any) -> str:
    """How serde (outside deserr) names an unexpected value."""
    if isinstance(value, bool):
        return f"boolean `{compact(value)}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {compact(value)}"
    return "sequence" if isinstance(value, list) else "map" if isinstance(value, dict) else compact(value)


def type_error(code: str, path: str, expected: str, value: Any) -> MeiliError:
    at = f" at `{path}`" if path else ""
    return MeiliError(code, f"Invalid value type{at}: expected {expected}, but found {describe(value)}")


def reject_unknown_fields(obj: JSON, allowed: Iterable[str], code: str = "bad_request", path: str = "") -> None:
    allowed = list(allowed)
    for key in obj:
        if key not in allowed:
            inside = f" inside `{path}`" if path else ""
            raise MeiliError(code, f"Unknown field `{key}`{inside}: expected one of {ticks(allowed)}")


def expect_object(value: Any, code: str = "bad_request", path: str = "") -> JSON:
    if not isinstance(value, dict):
        raise type_error(code, path, "an object", value)
    return value


def expect_str(value: Any, code: str, path: str) -> str:
    if not isinstance(value, str):
        raise type_error(code, path, "a string", value)
    return value


def expect_uint(value: Any, code: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise type_error(code, path, "a positive integer", value)
    return value


def expect_str_list(value: Any, code: str, path: str) -> list[str]:
    if not isinstance(value, list):
        raise type_error(code, path, "an array", value)
    for i, item in enumerate(value):
        expect_str(item, code, f"{path}[{i}]")
    return list(value)


def missing_field(name: str, code: str) -> MeiliError:
    return MeiliError(code, f"Missing field `{name}`")
