"""Read side of geofence events: the ``geofence_events`` collection of the event store.

The documents are CloudEvents stored by the outbox relay
(``CloudEvent.to_document``), one per event, ``_id`` = the event id; this
module only reads them. A geofence event document is::

    {_id, type: "geofence.enter"|"geofence.exit"|"geofence.dwell",
     subject: "<subject id>", time: <BSON date: the fix's recorded_at>,
     topic: "geofence-events",
     data: {zone_id, zone_kind, subject_id, subject_role, event, at,
            latitude, longitude, accuracy_m}}

Listings are oldest first by ``(time, _id)`` with keyset pagination after
the last ``(time, _id)`` of a page; the cursor is opaque to clients
(base64url of a small JSON array) and a malformed one raises
:class:`InvalidCursor`. Times are BSON dates, milliseconds: an item's ``at``
is its document's ``time``, and ``since``/``until`` are compared at that
precision exactly (see :func:`list_query`).

No visibility rule lives here: the caller narrows the filter to what its
reader may see (``gateway.routes.geofence_events``). A subject filter matches
both the CloudEvent ``subject`` (a top-level field, so FerretDB pushes the
comparison down to PostgreSQL) and ``data.subject_id`` (what the item shows),
so an event whose two disagree is never shown to the wrong subject.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar
from uuid import UUID

from pymongo import ASCENDING

from actors.subject import SubjectRole
from actors.zone_rules import ZoneKind
from geo.fences import FenceEvent
from persistence.drivers.mongo import Document, EventStore
from persistence.errors import EncodingError
from persistence.outbox.events import GEOFENCE_EVENTS
from persistence.stores.cursors import (
    CursorPage,
    InvalidCursor,
    decode_parts,
    encode_parts,
    page_of,
    parse_id,
    parse_time,
)

#: First element of every cursor of this listing, so no other listing's cursor passes.
_CURSOR_KIND: Final = "geofence"

_E = TypeVar("_E", bound=enum.StrEnum)

#: The listing's order, and the keyset its cursor continues after.
SORT: Final = (("time", ASCENDING), ("_id", ASCENDING))


@dataclass(frozen=True, slots=True)
class EventCursor:
    """The position after the last item of a page: its ``(time, id)``."""

    at: datetime
    id: UUID

    def encode(self) -> str:
        return encode_parts([_CURSOR_KIND, self.at.astimezone(UTC).isoformat(), str(self.id)])

    @classmethod
    def decode(cls, text: str) -> EventCursor:
        """Parse a cursor from :meth:`encode`; raises :class:`InvalidCursor`."""
        kind, at, ident = decode_parts(text, 3)
        if kind != _CURSOR_KIND:
            raise InvalidCursor("cursor has an invalid shape")
        cursor = cls(parse_time(at), parse_id(ident))
        try:
            canonical = cursor.encode()
        except OverflowError as exc:  # a time that cannot be moved to UTC
            raise InvalidCursor("cursor is not valid") from exc
        if canonical != text:
            raise InvalidCursor("cursor is not in canonical form")
        return cursor


@dataclass(frozen=True, slots=True)
class GeofenceEventFilter:
    zone_id: UUID | None = None
    subject_id: UUID | None = None
    #: ``time >= since``
    since: datetime | None = None
    #: ``time < until``
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class GeofenceEventRecord:
    """One stored geofence event, as the listing shows it."""

    id: UUID
    zone_id: UUID
    subject_id: UUID
    event: FenceEvent
    #: The document's ``time``: when the fix was recorded, UTC, milliseconds.
    at: datetime
    latitude: float
    longitude: float
    accuracy_m: float | None
    zone_kind: ZoneKind | None
    subject_role: SubjectRole | None


@dataclass(frozen=True, slots=True)
class GeofenceEventPage:
    items: tuple[GeofenceEventRecord, ...]
    next_cursor: EventCursor | None


def _ceil_ms(value: datetime) -> datetime:
    """``value`` in UTC rounded up to the millisecond.

    BSON dates hold milliseconds and PyMongo truncates a bound when encoding
    it, so ``time >= 12:00:00.0005`` would match an event at 12:00:00.000.
    For millisecond times, ``t >= s`` iff ``t >= ceil(s)`` and ``t < u`` iff
    ``t < ceil(u)``: rounding both bounds up keeps the comparisons exact.
    """
    utc = value.astimezone(UTC)
    rest = utc.microsecond % 1000
    if not rest:
        return utc
    try:
        return utc + timedelta(microseconds=1000 - rest)
    except OverflowError:
        # Past the last representable millisecond: nothing is stored there.
        return utc.replace(microsecond=utc.microsecond - rest)


def list_query(filters: GeofenceEventFilter, after: EventCursor | None) -> Document:
    """The MongoDB filter of one page (sorted by :data:`SORT`). Pure."""
    query: Document = {}
    if filters.zone_id is not None:
        query["data.zone_id"] = str(filters.zone_id)
    if filters.subject_id is not None:
        query["subject"] = str(filters.subject_id)
        query["data.subject_id"] = str(filters.subject_id)
    window: Document = {}
    if filters.since is not None:
        window["$gte"] = _ceil_ms(filters.since)
    if filters.until is not None:
        window["$lt"] = _ceil_ms(filters.until)
    if window:
        query["time"] = window
    if after is not None:
        at = after.at.astimezone(UTC)
        query["$or"] = [
            {"time": {"$gt": at}},
            {"time": at, "_id": {"$gt": str(after.id)}},
        ]
    return query


def _uuid(data: Mapping[str, Any], key: str) -> UUID:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return UUID(value)


def _event_id(doc: Mapping[str, Any]) -> UUID:
    # The cursor resumes after str(id): an id stored in another spelling of the
    # same UUID would sort elsewhere than its cursor says.
    event_id = _uuid(doc, "_id")
    if str(event_id) != doc["_id"]:
        raise ValueError("_id is not a canonical UUID string")
    return event_id


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{key} is not finite")
    return number


def _known(kind: type[_E], value: Any) -> _E | None:
    """``value`` as a member of ``kind``; None when absent or not one of its values."""
    if not isinstance(value, str):
        return None
    try:
        return kind(value)
    except ValueError:
        return None


def record_of(doc: Mapping[str, Any]) -> GeofenceEventRecord:
    """Decode one stored document; ``EncodingError`` if it is not a geofence event.

    The fields an item must show are required; ``zone_kind``,
    ``subject_role`` and ``accuracy_m`` are optional and read as None when
    absent or unknown, so a writer adding or widening them breaks no reader.
    """
    try:
        data = doc.get("data")
        if not isinstance(data, Mapping):
            raise ValueError("data is not an object")
        at = doc.get("time")
        if not isinstance(at, datetime):
            raise ValueError("time is not a date")
        event = data.get("event")
        if event is None and isinstance(doc.get("type"), str):
            event = doc["type"].removeprefix("geofence.")
        if not isinstance(event, str):
            raise ValueError("event is not a string")
        accuracy = data.get("accuracy_m")
        return GeofenceEventRecord(
            id=_event_id(doc),
            zone_id=_uuid(data, "zone_id"),
            subject_id=_uuid(data, "subject_id"),
            event=FenceEvent(event),
            at=at if at.tzinfo is not None else at.replace(tzinfo=UTC),
            latitude=_number(data, "latitude"),
            longitude=_number(data, "longitude"),
            accuracy_m=None if accuracy is None else _number(data, "accuracy_m"),
            zone_kind=_known(ZoneKind, data.get("zone_kind")),
            subject_role=_known(SubjectRole, data.get("subject_role")),
        )
    except (ValueError, TypeError) as exc:
        event_id = doc.get("_id")
        raise EncodingError(f"stored geofence event {event_id!r} is malformed: {exc}") from exc


async def list_geofence_events(
    store: EventStore,
    filters: GeofenceEventFilter,
    *,
    limit: int,
    after: EventCursor | None = None,
) -> GeofenceEventPage:
    """One page of geofence events matching ``filters``, oldest first.

    Reads ``limit + 1`` documents to know whether another page follows.
    Raises ``ServiceUnavailable("mongo")`` when the store cannot be reached
    and ``EncodingError`` for a stored document that is not a geofence event.
    Read-only, safe to retry.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    docs = await store.find_documents(
        GEOFENCE_EVENTS, list_query(filters, after), sort=SORT, limit=limit + 1
    )
    records, next_cursor = page_of(
        docs, limit, record_of, lambda last: EventCursor(last.at, last.id)
    )
    return GeofenceEventPage(records, next_cursor)


class MongoGeofenceEvents:
    """``gateway.ports.GeofenceEvents`` on the event store; cursors are :class:`EventCursor`."""

    __slots__ = ("_store",)

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def check_cursor(self, cursor: str) -> None:
        EventCursor.decode(cursor)

    async def list_events(
        self,
        *,
        zone_id: UUID | None,
        subject_id: UUID | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> CursorPage[GeofenceEventRecord]:
        after = None if cursor is None else EventCursor.decode(cursor)
        filters = GeofenceEventFilter(
            zone_id=zone_id, subject_id=subject_id, since=since, until=until
        )
        page = await list_geofence_events(self._store, filters, limit=limit, after=after)
        next_cursor = None if page.next_cursor is None else page.next_cursor.encode()
        return CursorPage(page.items, next_cursor)
