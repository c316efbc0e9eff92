"""Pure parts of persistence.stores.geofence_events: the cursor, the query, decoding documents."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from geo.fences import FenceEvent
from persistence.errors import EncodingError
from persistence.stores.cursors import InvalidCursor
from persistence.stores.geofence_events import (
    EventCursor,
    GeofenceEventFilter,
    list_query,
    record_of,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def b64(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def document(**overrides: Any) -> dict[str, Any]:
    subject = str(uuid.uuid4())
    data: dict[str, Any] = {
        "zone_id": str(uuid.uuid4()),
        "zone_kind": "safe",
        "subject_id": subject,
        "subject_role": "agent",
        "event": "exit",
        "at": T0.isoformat(),
        "latitude": 1.5,
        "longitude": -2,
        "accuracy_m": 10,
    }
    data.update(overrides.pop("data", {}))
    doc: dict[str, Any] = {
        "_id": str(uuid.uuid4()),
        "type": "geofence.exit",
        "subject": subject,
        "time": T0,
        "topic": "geofence-events",
        "data": data,
    }
    doc.update(overrides)
    return doc


# ---------------------------------------------------------------- cursor


def test_cursor_round_trips_and_is_url_safe() -> None:
    cursor = EventCursor(T0, uuid.uuid4())
    text = cursor.encode()
    assert text.replace("-", "").replace("_", "").isalnum()
    assert EventCursor.decode(text) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A" * 300,
        "not base64 !",
        b64(["x", "y"]),
        b64([T0.isoformat(), str(uuid.uuid4())]),  # an /alerts cursor
        b64(["alerts", T0.isoformat(), str(uuid.uuid4())]),
        b64(["geofence", "yesterday", str(uuid.uuid4())]),
        b64(["geofence", T0.isoformat(), "not-a-uuid"]),
        b64(["geofence", T0.replace(tzinfo=None).isoformat(), str(uuid.uuid4())]),
        b64(
            ["geofence", T0.astimezone(timezone(timedelta(hours=2))).isoformat(), str(uuid.uuid4())]
        ),
        b64(["geofence", "0001-01-01T00:00:00+01:00", str(uuid.uuid4())]),
        b64({"geofence": 1}),
        b64(["geofence", T0.isoformat(), str(uuid.uuid4())]) + "A",
    ],
)
def test_cursor_refuses_anything_it_did_not_issue(text: str) -> None:
    with pytest.raises(InvalidCursor):
        EventCursor.decode(text)


# ---------------------------------------------------------------- query


def test_query_filters_zone_subject_and_window() -> None:
    zone, subject = uuid.uuid4(), uuid.uuid4()
    since, until = T0, T0 + timedelta(hours=1)
    query = list_query(GeofenceEventFilter(zone, subject, since, until), None)
    assert query == {
        "data.zone_id": str(zone),
        "subject": str(subject),
        "data.subject_id": str(subject),
        "time": {"$gte": since, "$lt": until},
    }
    assert list_query(GeofenceEventFilter(), None) == {}


def test_query_rounds_bounds_up_to_the_millisecond() -> None:
    # BSON dates are milliseconds; PyMongo would truncate 12:00:00.1235 to .123.
    fine = T0 + timedelta(microseconds=500)
    query = list_query(GeofenceEventFilter(since=fine, until=fine), None)
    next_ms = T0 + timedelta(milliseconds=1)
    assert query["time"] == {"$gte": next_ms, "$lt": next_ms}
    plus_two = timezone(timedelta(hours=2))
    assert list_query(GeofenceEventFilter(since=T0.astimezone(plus_two)), None)["time"] == {
        "$gte": T0
    }
    last = datetime.max.replace(tzinfo=UTC)
    assert list_query(GeofenceEventFilter(until=last), None)["time"]["$lt"].year == 9999


def test_query_continues_after_the_cursor_by_time_then_id() -> None:
    after = EventCursor(T0, uuid.uuid4())
    assert list_query(GeofenceEventFilter(), after) == {
        "$or": [{"time": {"$gt": T0}}, {"time": T0, "_id": {"$gt": str(after.id)}}]
    }


# ---------------------------------------------------------------- documents


def test_record_of_reads_a_relay_document() -> None:
    doc = document()
    record = record_of(doc)
    assert str(record.id) == doc["_id"]
    assert str(record.zone_id) == doc["data"]["zone_id"]
    assert str(record.subject_id) == doc["data"]["subject_id"]
    assert record.event is FenceEvent.EXIT
    assert record.at == T0
    assert (record.latitude, record.longitude, record.accuracy_m) == (1.5, -2.0, 10.0)
    assert (record.zone_kind, record.subject_role) == ("safe", "agent")


def test_record_of_tolerates_missing_or_unknown_optional_fields() -> None:
    doc = document(time=T0.replace(tzinfo=None))  # BSON dates may come back naive
    doc["data"].update(zone_kind="", subject_role="robot")
    del doc["data"]["accuracy_m"], doc["data"]["event"]  # the event falls back to the type
    record = record_of(doc)
    assert record.at == T0
    assert (record.zone_kind, record.subject_role, record.accuracy_m) == (None, None, None)
    assert record.event is FenceEvent.EXIT


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("doc", "_id", "not-a-uuid"),
        ("doc", "_id", str(uuid.uuid4()).upper()),  # the cursor could not resume after it
        ("doc", "time", "2026-03-01T12:00:00Z"),
        ("doc", "data", None),
        ("data", "zone_id", None),
        ("data", "subject_id", 7),
        ("data", "event", "inside"),
        ("data", "latitude", "1.5"),
        ("data", "longitude", True),
        ("data", "accuracy_m", float("nan")),
    ],
)
def test_record_of_refuses_a_malformed_document(where: str, key: str, value: Any) -> None:
    doc = document()
    (doc if where == "doc" else doc["data"])[key] = value
    with pytest.raises(EncodingError):
        record_of(doc)
