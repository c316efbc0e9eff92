"""Snapshot encoding helpers shared by the state modules.

Snapshots are plain JSON-safe dicts: times as ISO 8601 strings with their UTC
offset, UUIDs as strings, enums as their values. Decoding is strict: a wrong
kind, an unknown schema number or a missing field raises
:class:`~actors.errors.InvalidSnapshot` instead of building a half-state.
Every time the state machines hold is timezone-aware, which :func:`check_now`
enforces at each ``decide`` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from actors.errors import InvalidSnapshot

#: Bumped when a snapshot layout changes incompatibly; decoders refuse others.
SNAPSHOT_SCHEMA = 1

T = TypeVar("T")


def check_now(now: datetime) -> None:
    """Refuse a naive clock reading: every stored time is timezone-aware."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")


def iso(value: datetime) -> str:
    return value.isoformat()


def iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def str_or_none(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def header(kind: str) -> dict[str, Any]:
    """The first keys of every snapshot: its kind and layout version."""
    return {"schema": SNAPSHOT_SCHEMA, "kind": kind}


def check_header(data: Mapping[str, Any], kind: str) -> None:
    if data.get("kind") != kind:
        raise InvalidSnapshot(f"expected a {kind!r} snapshot, got kind {data.get('kind')!r}")
    if data.get("schema") != SNAPSHOT_SCHEMA:
        raise InvalidSnapshot(
            f"unsupported {kind} snapshot schema {data.get('schema')!r} "
            f"(this code reads {SNAPSHOT_SCHEMA})"
        )


def field(data: Mapping[str, Any], name: str, decode: Callable[[Any], T]) -> T:
    """``decode(data[name])``, turning a missing or malformed value into InvalidSnapshot."""
    try:
        return decode(data[name])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidSnapshot(f"bad snapshot field {name!r}: {exc}") from exc


def optional_field(data: Mapping[str, Any], name: str, decode: Callable[[Any], T], default: T) -> T:
    """Like :func:`field` for a field added after snapshots of the same schema
    were written: a missing one reads as ``default``."""
    if name not in data:
        return default
    return field(data, name, decode)


def parse_dt(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {value!r}")
    return parsed


def parse_dt_or_none(value: Any) -> datetime | None:
    return None if value is None else parse_dt(value)


def parse_uuid(value: Any) -> UUID:
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return UUID(value)


def parse_uuid_or_none(value: Any) -> UUID | None:
    return None if value is None else parse_uuid(value)


def parse_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def parse_float_or_none(value: Any) -> float | None:
    return None if value is None else parse_float(value)


def parse_str_or_none(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def parse_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def parse_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value
