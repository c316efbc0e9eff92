"""Opaque keyset cursors, shared by every paged listing (alerts, zones, geofence events).

A cursor is a JSON list of strings (the key of the last item of a page, and
whatever else the listing puts first), base64url without padding. Decoding
takes only what :func:`encode_parts` makes: the right number of strings, in
canonical form (a listing re-encodes and compares), at most
``MAX_CURSOR_CHARS`` long; anything else is :class:`InvalidCursor`, which
routes answer with 422.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Generic, TypeVar
from uuid import UUID

from actors.store_errors import InvalidCursor

__all__ = [
    "MAX_CURSOR_CHARS",
    "CursorPage",
    "InvalidCursor",
    "decode_parts",
    "encode_parts",
    "page_of",
    "parse_id",
    "parse_time",
]

#: Longest cursor accepted; real ones are about 60-120 characters.
MAX_CURSOR_CHARS: Final = 200


Row = TypeVar("Row")
R = TypeVar("R")
C = TypeVar("C")


def page_of(
    rows: Sequence[Row],
    limit: int,
    record: Callable[[Row], R],
    cursor_after: Callable[[R], C],
) -> tuple[tuple[R, ...], C | None]:
    """A page from ``rows`` read as ``limit + 1`` (the extra one only tells that
    more follow): the first ``limit`` as records, and the cursor after the last
    of them when more do (None on the last page). The extra row is not decoded."""
    page = tuple(record(row) for row in rows[:limit])
    more = len(rows) > limit
    return page, cursor_after(page[-1]) if more and page else None


@dataclass(frozen=True, slots=True)
class CursorPage(Generic[R]):
    """A page as the ports show it: the cursor after it already encoded (opaque)."""

    items: tuple[R, ...]
    next_cursor: str | None


def encode_parts(parts: Sequence[str]) -> str:
    raw = json.dumps(list(parts), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_parts(text: str, arity: int) -> list[str]:
    """The ``arity`` strings of a cursor from :func:`encode_parts`; :class:`InvalidCursor` else."""
    if not text or len(text) > MAX_CURSOR_CHARS:
        raise InvalidCursor("cursor has an invalid length")
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if (
        not isinstance(value, list)
        or len(value) != arity
        or not all(isinstance(part, str) for part in value)
    ):
        raise InvalidCursor("cursor has an invalid shape")
    return value


def parse_time(value: str) -> datetime:
    """A cursor's timestamp: ISO 8601 with a time zone; :class:`InvalidCursor` else."""
    try:
        at = datetime.fromisoformat(value)
    except (ValueError, OverflowError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if at.tzinfo is None:
        raise InvalidCursor("cursor has no time zone")
    return at


def parse_id(value: str) -> UUID:
    """A cursor's id; :class:`InvalidCursor` if it is not a UUID."""
    try:
        return UUID(value)
    except ValueError as exc:
        raise InvalidCursor("cursor is not valid") from exc
