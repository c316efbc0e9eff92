"""Pure parts of persistence: migration discovery, routing, CloudEvent encoding, errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from actors.effects import Topic
from persistence import migrations
from persistence.errors import (
    Conflict,
    EncodingError,
    MigrationError,
    PersistenceError,
    PublishError,
    ServiceUnavailable,
)
from persistence.outbox.events import (
    ALERT_EVENTS,
    COLLECTIONS,
    GEOFENCE_EVENTS,
    LOCATION_EVENTS,
    MEDIA_EVENTS,
    SYSTEM_LOGS,
    TOPIC_COLLECTIONS,
    CloudEvent,
    collection_for_topic,
)
from persistence.outbox.writer import OutboxEvent, validate

# ---------------------------------------------------------------- migrations


def write(directory: Path, name: str, sql: str = "SELECT 1;") -> Path:
    path = directory / name
    path.write_text(sql, encoding="utf-8")
    return path


def test_discover_sorts_by_version_and_ignores_non_sql(tmp_path: Path) -> None:
    write(tmp_path, "0002_second.sql")
    write(tmp_path, "0001_first.sql")
    write(tmp_path, "0010_tenth_one.sql")
    write(tmp_path, "README.md", "not a migration")
    found = migrations.discover(tmp_path)
    assert [(m.version, m.name) for m in found] == [
        ("0001", "first"),
        ("0002", "second"),
        ("0010", "tenth_one"),
    ]
    assert found[2].filename == "0010_tenth_one.sql"


@pytest.mark.parametrize(
    "bad", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0001_.sql", "abcd_x.sql"]
)
def test_discover_refuses_misnamed_sql(tmp_path: Path, bad: str) -> None:
    write(tmp_path, "0001_ok.sql")
    write(tmp_path, bad)
    with pytest.raises(MigrationError, match="NNNN_lower_snake_name"):
        migrations.discover(tmp_path)


def test_discover_refuses_duplicate_versions(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql")
    write(tmp_path, "0001_b.sql")
    with pytest.raises(MigrationError, match="share version 0001"):
        migrations.discover(tmp_path)


def test_discover_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        migrations.discover(tmp_path / "nope")


def test_checksum_detects_edits_but_not_line_endings() -> None:
    base = migrations.checksum("CREATE TABLE t (id int);\nSELECT 1;\n")
    assert base == migrations.checksum("CREATE TABLE t (id int);\r\nSELECT 1;\r\n")
    assert base != migrations.checksum("CREATE TABLE t (id bigint);\nSELECT 1;\n")
    assert len(base) == 64


def test_shipped_migrations_are_discovered() -> None:
    shipped = migrations.discover()
    assert shipped[0].version == "0001"
    assert shipped[0].name == "initial"
    assert "CREATE TABLE outbox" in shipped[0].sql


def test_plan_skips_applied_and_refuses_changed(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "SELECT 1;")
    write(tmp_path, "0002_b.sql", "SELECT 2;")
    found = migrations.discover(tmp_path)
    assert migrations.plan(found, {}) == found
    assert migrations.plan(found, {"0001": found[0].checksum}) == [found[1]]
    assert migrations.plan(found, {m.version: m.checksum for m in found}) == []
    with pytest.raises(MigrationError, match=r"0001_a\.sql was changed"):
        migrations.plan(found, {"0001": "0" * 64})


def test_plan_tolerates_versions_unknown_to_this_code(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql")
    found = migrations.discover(tmp_path)
    assert migrations.plan(found, {"0001": found[0].checksum, "0002": "x" * 64}) == []


def test_lock_key_is_a_signed_bigint() -> None:
    assert -(2**63) <= migrations.LOCK_KEY < 2**63


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("topic", "collection"),
    [
        ("panic-alerts", ALERT_EVENTS),
        ("alert-responses", ALERT_EVENTS),
        ("alert-status-updates", ALERT_EVENTS),
        ("push-notifications", ALERT_EVENTS),
        ("sms-notifications", ALERT_EVENTS),
        ("email-notifications", ALERT_EVENTS),
        ("location-updates", LOCATION_EVENTS),
        ("geofence-events", GEOFENCE_EVENTS),
        ("media-uploads", MEDIA_EVENTS),
        ("media-processing", MEDIA_EVENTS),
        ("media-thumbnails", MEDIA_EVENTS),
        ("user-events", SYSTEM_LOGS),
        ("agent-events", SYSTEM_LOGS),
        ("system-events", SYSTEM_LOGS),
        ("audit-logs", SYSTEM_LOGS),
    ],
)
def test_topic_routes_to_collection(topic: str, collection: str) -> None:
    assert collection_for_topic(topic) == collection


def test_every_seed_topic_is_routed_to_a_known_collection() -> None:
    assert set(TOPIC_COLLECTIONS) == set(Topic)
    assert set(TOPIC_COLLECTIONS.values()) == set(COLLECTIONS)


def test_unknown_topic_is_refused_unless_routed_explicitly() -> None:
    with pytest.raises(KeyError, match="bench-x"):
        collection_for_topic("bench-x")
    assert collection_for_topic("bench-x", {"bench-x": ALERT_EVENTS}) == ALERT_EVENTS


# ---------------------------------------------------------------- CloudEvent


def sample_event(**overrides: object) -> CloudEvent:
    fields: dict[str, object] = {
        "id": "2f6a3c2e-8c7e-4c55-9f51-2f1f7a1f6c11",
        "source": "urn:panic-alert",
        "type": "alert.created",
        "subject": "alert-1",
        "time": datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "data": {"latitude": 1.5, "tags": ["a", "b"], "nested": {"x": None}},
    }
    fields.update(overrides)
    return CloudEvent.model_validate(fields)


def test_cloudevent_structured_json_has_the_spec_attributes() -> None:
    doc = json.loads(sample_event().to_bytes())
    assert doc == {
        "specversion": "1.0",
        "id": "2f6a3c2e-8c7e-4c55-9f51-2f1f7a1f6c11",
        "source": "urn:panic-alert",
        "type": "alert.created",
        "subject": "alert-1",
        "time": "2025-01-02T03:04:05.678000Z",
        "datacontenttype": "application/json",
        "data": {"latitude": 1.5, "tags": ["a", "b"], "nested": {"x": None}},
    }


def test_cloudevent_round_trips_through_bytes() -> None:
    event = sample_event(partitionkey="alert-9")
    assert CloudEvent.from_bytes(event.to_bytes()) == event


def test_cloudevent_time_is_normalised_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    event = sample_event(time=datetime(2025, 1, 2, 5, 0, tzinfo=plus2))
    assert event.time == datetime(2025, 1, 2, 3, 0, tzinfo=UTC)
    assert event.time.utcoffset() == timedelta(0)


def test_cloudevent_time_keeps_milliseconds_like_bson_and_kafka() -> None:
    event = sample_event(time=datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC))
    assert event.time.microsecond == 123000


def test_cloudevent_key_prefers_partitionkey_then_subject_then_id() -> None:
    assert sample_event(partitionkey="k").kafka_key == "k"
    assert sample_event().kafka_key == "alert-1"
    assert sample_event(subject=None).kafka_key == sample_event().id


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"specversion": "0.3", "id": "1", "source": "s", "type": "t",'
        b' "time": "2025-01-01T00:00:00Z"}',
        b'{"specversion": "1.0", "source": "s", "type": "t", "time": "2025-01-01T00:00:00Z"}',
        b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t",'
        b' "time": "2025-01-01T00:00:00"}',
        b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t",'
        b' "time": "2025-01-01T00:00:00Z", "datacontenttype": "text/plain"}',
    ],
)
def test_cloudevent_decode_rejects_non_events(raw: bytes) -> None:
    with pytest.raises(EncodingError):
        CloudEvent.from_bytes(raw)


def test_cloudevent_ignores_unknown_extension_attributes() -> None:
    raw = json.loads(sample_event().to_bytes())
    raw["traceparent"] = "00-abc-def-01"
    assert CloudEvent.from_bytes(json.dumps(raw).encode()) == sample_event()


def test_cloudevent_document_round_trip_with_naive_bson_time() -> None:
    event = sample_event(partitionkey="alert-1")
    doc = event.to_document("panic-alerts")
    assert doc["_id"] == event.id
    assert doc["topic"] == "panic-alerts"
    # BSON dates come back naive (UTC) from a client without tz_aware.
    doc["time"] = doc["time"].replace(tzinfo=None)
    assert CloudEvent.from_document(doc) == event


# ---------------------------------------------------------------- outbox validation


def outbox_event(**overrides: object) -> OutboxEvent:
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "topic": "panic-alerts",
        "key": "alert-1",
        "type": "alert.created",
        "subject": "alert-1",
        "data": {},
        "time": datetime.now(UTC),
    }
    fields.update(overrides)
    return OutboxEvent(**fields)  # type: ignore[arg-type]


def test_outbox_validation_accepts_a_good_event() -> None:
    validate([outbox_event()])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"topic": "no-such-topic"}, "unknown topic"),
        ({"time": datetime(2025, 1, 1)}, "timezone-aware"),
        ({"key": ""}, "empty key"),
    ],
)
def test_outbox_validation_refuses_undeliverable_events(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate([outbox_event(**overrides)])


# ---------------------------------------------------------------- errors


def test_error_hierarchy_and_retriable_flags() -> None:
    down = ServiceUnavailable("kafka", "connection refused")
    assert isinstance(down, PersistenceError)
    assert down.retriable is True
    assert down.service == "kafka"
    assert "kafka is unavailable: connection refused" in str(down)
    assert MigrationError("x").retriable is False
    assert MigrationError("busy", retriable=True).retriable is True
    assert Conflict("dup").retriable is False
    assert PublishError("x").retriable is True
    assert EncodingError("x").retriable is False
