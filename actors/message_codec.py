"""JSON encoding of entity messages, for messages that must survive a restart.

A durable :class:`~actors.effects.Send` is stored in PostgreSQL until its
recipient has processed it, so the message travels as JSON rather than as a
pickle (a pickle would tie stored rows to one code version's class layout).
Messages are frozen dataclasses whose fields are built from UUIDs, datetimes,
timedeltas, enums, numbers, strings, booleans, ``None`` and collections of
those; the field annotations drive decoding. An unknown message type, or a
field that does not decode, raises :class:`~actors.errors.InvalidMessage`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from actors import agent, alert_messages, region, subject
from actors.errors import InvalidMessage

#: Every message class that may be sent durably, by its class name.
MESSAGE_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for union in (alert_messages.AlertMessage, agent.AgentMessage, region.RegionMessage)
    for cls in typing.get_args(union)
} | {
    # Of a subject's messages only this one is sent by another entity.
    subject.Responding.__name__: subject.Responding
}


def encode_message(message: object) -> dict[str, Any]:
    """``{"type": <class name>, "fields": {...}}``, JSON-safe."""
    name = type(message).__name__
    if MESSAGE_TYPES.get(name) is not type(message):
        raise InvalidMessage(f"{name} is not a message that can be stored")
    assert dataclasses.is_dataclass(message)
    assert not isinstance(message, type)
    fields = {f.name: _encode(getattr(message, f.name)) for f in dataclasses.fields(message)}
    return {"type": name, "fields": fields}


def decode_message(data: Mapping[str, Any]) -> object:
    """The inverse of :func:`encode_message`."""
    try:
        cls = MESSAGE_TYPES[str(data["type"])]
        hints = _hints(cls)
        raw = data["fields"]
        return cls(**{name: _decode(hints[name], value) for name, value in raw.items()})
    except InvalidMessage:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidMessage(f"undecodable stored message: {exc}") from exc


_HINTS: dict[str, dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls.__name__)
    if hints is None:
        hints = _HINTS[cls.__name__] = typing.get_type_hints(cls)
    return hints


def _encode(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Collection) and not isinstance(value, Mapping):
        return [_encode(v) for v in value]
    raise InvalidMessage(f"cannot store a message field of type {type(value).__name__}")


def _decode(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, value)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"{value!r} matches none of {hint}")
    if origin in (tuple, frozenset, set, list) or origin is Collection:
        (item, *_) = typing.get_args(hint) or (Any,)
        items = [_decode(item, v) for v in value]
        return frozenset(items) if origin in (frozenset, set) else tuple(items)
    if hint is UUID:
        return UUID(str(value))
    if hint is datetime:
        return datetime.fromisoformat(str(value))
    if hint is timedelta:
        return timedelta(seconds=float(value))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise TypeError(f"expected {hint.__name__}, got {value!r}")
        return value
    return value
