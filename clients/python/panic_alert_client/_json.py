"""Reading JSON values into typed ones, tolerantly. Pure.

The API is additive: an object may carry members this client does not know,
which are ignored (each model keeps the whole object in ``raw``). A member
the contract requires but the answer lacks, or of the wrong kind, is a
:class:`~panic_alert_client.errors.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from panic_alert_client.errors import ProtocolError

JsonObject = Mapping[str, Any]


def obj(value: object, what: str = "answer") -> JsonObject:
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def req(data: JsonObject, key: str) -> Any:
    if key not in data:
        raise ProtocolError(f"missing member {key!r}")
    return data[key]


def string(data: JsonObject, key: str) -> str:
    value = req(data, key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key!r} is not a string")
    return value


def opt_string(data: JsonObject, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def uuid(data: JsonObject, key: str) -> UUID:
    try:
        return UUID(string(data, key))
    except ValueError as exc:
        raise ProtocolError(f"{key!r} is not a UUID") from exc


def opt_uuid(data: JsonObject, key: str) -> UUID | None:
    value = data.get(key)
    if value is None:
        return None
    return uuid(data, key)


def number(data: JsonObject, key: str) -> float:
    value = req(data, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{key!r} is not a number")
    return float(value)


def opt_number(data: JsonObject, key: str) -> float | None:
    if data.get(key) is None:
        return None
    return number(data, key)


def opt_int(data: JsonObject, key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"{key!r} is not an integer")
    return value


def boolean(data: JsonObject, key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    return value if isinstance(value, bool) else default


def opt_bool(data: JsonObject, key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def when(data: JsonObject, key: str) -> datetime:
    try:
        return datetime.fromisoformat(string(data, key))
    except ValueError as exc:
        raise ProtocolError(f"{key!r} is not an RFC 3339 date-time") from exc


def opt_when(data: JsonObject, key: str) -> datetime | None:
    if data.get(key) is None:
        return None
    return when(data, key)


def strings(data: JsonObject, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))
