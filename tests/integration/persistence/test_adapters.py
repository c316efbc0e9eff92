"""A write through each adapter reads back, against the real services."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING, DESCENDING, IndexModel

from config.settings import Settings
from persistence.drivers import redis as redis_adapter
from persistence.drivers.kafka import KafkaConsumer, KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.errors import PersistenceError, ServiceUnavailable
from persistence.outbox.events import (
    ALERT_EVENTS,
    COLLECTIONS,
    GEOFENCE_EVENTS,
    LOCATION_EVENTS,
    SYSTEM_LOGS,
)
from tests.integration.persistence.helpers import commit_group_at_end, consume_until, make_event

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- MongoDB (FerretDB)


async def test_event_store_insert_reads_back_and_is_idempotent(event_store: EventStore) -> None:
    alert_id = str(uuid.uuid4())
    created = make_event(type="alert.created", subject=alert_id, partitionkey=alert_id)
    status = make_event(type="alert.status_changed", subject=alert_id, data={"status": "assigned"})
    location = make_event(type="location.updated")

    batch = [
        ("panic-alerts", created),
        ("alert-status-updates", status),
        ("location-updates", location),
    ]
    assert await event_store.insert_events(batch) == 3
    # A re-publish of the whole batch plus one new event: only the new one is written.
    extra = make_event(type="alert.offered", subject=alert_id)
    assert await event_store.insert_events([*batch, ("alert-responses", extra)]) == 1
    assert await event_store.insert_events(batch) == 0

    assert await event_store.count(ALERT_EVENTS, {"_id": created.id}) == 1
    assert await event_store.get_event(ALERT_EVENTS, created.id) == created
    assert await event_store.get_event(LOCATION_EVENTS, location.id) == location
    assert await event_store.get_event(ALERT_EVENTS, location.id) is None
    timeline = await event_store.find_events(ALERT_EVENTS, subject=alert_id)
    assert [e.id for e in timeline] == [created.id, status.id, extra.id]
    assert [
        e.type
        for e in await event_store.find_events(
            ALERT_EVENTS, subject=alert_id, event_type="alert.status_changed"
        )
    ] == ["alert.status_changed"]


async def test_event_store_refuses_unrouted_topic(event_store: EventStore) -> None:
    with pytest.raises(PersistenceError, match="no event-store collection"):
        await event_store.insert_events([("not-a-topic", make_event())])


async def test_event_store_collections_and_indexes(
    settings: Settings, event_store: EventStore
) -> None:
    await event_store.ensure_indexes()  # idempotent: a second call succeeds
    db = event_store._db
    assert set(COLLECTIONS) <= set(await db.list_collection_names())
    for name in COLLECTIONS:
        indexes = await db[name].index_information()
        # geofence_events' subject_time_id (below) serves by subject over time.
        assert ("subject_time" in indexes) == (name != GEOFENCE_EVENTS), name
        # location_events holds one type: by type over time would be its time index.
        assert ("type_time" in indexes) == (name != LOCATION_EVENTS), name
    # GET /geofencing/events: by subject, by zone, or all, each in (time, _id) order.
    indexes = await db[GEOFENCE_EVENTS].index_information()
    assert indexes["subject_time_id"]["key"] == [("subject", 1), ("time", 1), ("_id", 1)]
    assert indexes["zone_time_id"]["key"] == [("data.zone_id", 1), ("time", 1), ("_id", 1)]
    assert indexes["time_id"]["key"] == [("time", 1), ("_id", 1)]
    for name in (LOCATION_EVENTS, SYSTEM_LOGS):
        indexes = await db[name].index_information()
        if event_store.ttl_supported:
            assert indexes["time_ttl"]["expireAfterSeconds"] > 0
        else:
            assert "time" in indexes
    # FerretDB 1.24 has no TTL indexes; retention falls back to purge_expired().
    assert event_store.ttl_supported is False


async def test_event_store_drops_the_type_index_an_earlier_version_gave_location_events(
    event_store: EventStore,
) -> None:
    await event_store.ensure_indexes()
    locations = event_store._db[LOCATION_EVENTS]
    # As a deployment of an earlier version has it.
    await locations.create_indexes(
        [IndexModel([("type", ASCENDING), ("time", DESCENDING)], name="type_time")]
    )
    assert "type_time" in await locations.index_information()
    await event_store.ensure_indexes()
    indexes = await locations.index_information()
    assert "type_time" not in indexes
    assert "subject_time" in indexes  # the history's reads keep theirs


async def test_event_store_drops_the_subject_index_subject_time_id_repeats(
    event_store: EventStore,
) -> None:
    await event_store.ensure_indexes()
    fences = event_store._db[GEOFENCE_EVENTS]
    # As a deployment of an earlier version has it.
    await fences.create_indexes(
        [IndexModel([("subject", ASCENDING), ("time", DESCENDING)], name="subject_time")]
    )
    await event_store.ensure_indexes()
    indexes = await fences.index_information()
    assert "subject_time" not in indexes
    assert {"subject_time_id", "type_time", "zone_time_id", "time_id"} <= set(indexes)


async def test_event_store_retention_purges_only_expired(event_store: EventStore) -> None:
    keep_days = event_store.retention[LOCATION_EVENTS].days
    now = datetime.now(UTC)
    old = make_event(time=now - timedelta(days=keep_days + 1))
    fresh = make_event(time=now - timedelta(days=keep_days - 1))
    old_log = make_event(time=now - timedelta(days=event_store.retention[SYSTEM_LOGS].days + 1))
    kept_alert = make_event(time=now - timedelta(days=3650))  # alert_events has no retention
    await event_store.insert_events(
        [
            ("location-updates", old),
            ("location-updates", fresh),
            ("audit-logs", old_log),
            ("panic-alerts", kept_alert),
        ]
    )
    deleted = await event_store.purge_expired(now)
    assert deleted[LOCATION_EVENTS] >= 1
    assert deleted[SYSTEM_LOGS] >= 1
    assert await event_store.get_event(LOCATION_EVENTS, old.id) is None
    assert await event_store.get_event(SYSTEM_LOGS, old_log.id) is None
    assert await event_store.get_event(LOCATION_EVENTS, fresh.id) == fresh
    assert await event_store.get_event(ALERT_EVENTS, kept_alert.id) == kept_alert


async def test_event_store_unreachable_is_service_unavailable(settings: Settings) -> None:
    store = EventStore(
        settings.mongo.model_copy(update={"port": 1, "server_selection_timeout_ms": 300})
    )
    try:
        with pytest.raises(ServiceUnavailable) as info:
            await store.ping()
        assert info.value.service == "mongo"
        with pytest.raises(ServiceUnavailable):
            await store.insert_events([("panic-alerts", make_event())])
    finally:
        await store.close()


# ---------------------------------------------------------------- Redis


async def test_redis_write_reads_back(settings: Settings) -> None:
    client = redis_adapter.create_redis(settings.redis)
    try:
        await redis_adapter.ping(client)
        key = redis_adapter.location_key("user", f"test-{uuid.uuid4()}")
        assert key.startswith("location:user:test-")
        await client.hset(key, mapping={"latitude": "51.5", "longitude": "-0.12"})
        await client.expire(key, 30)
        assert await client.hgetall(key) == {"latitude": "51.5", "longitude": "-0.12"}
        assert 0 < await client.ttl(key) <= 30
        await client.delete(key)
        assert await client.exists(key) == 0
    finally:
        await client.aclose()


async def test_redis_unreachable_is_service_unavailable(settings: Settings) -> None:
    client = redis_adapter.create_redis(settings.redis.model_copy(update={"port": 1}))
    try:
        with pytest.raises(ServiceUnavailable) as info:
            await redis_adapter.ping(client)
        assert info.value.service == "redis"
    finally:
        await client.aclose()


# ---------------------------------------------------------------- Kafka


async def test_kafka_publish_is_consumed_with_key_and_cloudevent_fields(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    await publisher.ping()
    topic = "system-events"
    group = f"test-persistence-{uuid.uuid4().hex[:8]}"
    await commit_group_at_end(settings.kafka, publisher, group, topic)

    entity = str(uuid.uuid4())
    first = make_event(type="system.tested", subject=entity, data={"seq": 1})
    second = make_event(type="system.tested", subject=entity, data={"seq": 2})
    delivery = await publisher.publish(topic, first)
    assert delivery.topic == topic
    assert delivery.offset >= 0
    deliveries = await publisher.publish_many([(topic, second)])
    # Same key, same partition, in order.
    assert deliveries[0].partition == delivery.partition
    assert deliveries[0].offset > delivery.offset

    ids = {first.id, second.id}
    seen = await consume_until(
        settings.kafka, group, topic, lambda got: ids <= {c.event.id for c in got}
    )
    mine = [c for c in seen if c.event.id in ids]
    assert [c.event for c in mine] == [first, second]
    assert {c.key for c in mine} == {entity}
    assert mine[0].offset == delivery.offset
    assert mine[0].event.specversion == "1.0"
    assert mine[0].event.datacontenttype == "application/json"
    assert mine[0].event.source == "urn:panic-alert:test"

    # Offsets were committed after processing: the group resumes after them.
    third = make_event(subject=entity)
    await publisher.publish(topic, third)
    resumed = await consume_until(
        settings.kafka, group, topic, lambda got: third.id in {c.event.id for c in got}
    )
    assert ids.isdisjoint({c.event.id for c in resumed})


async def test_consumer_skips_messages_that_are_not_cloudevents(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    topic = "audit-logs"
    group = f"test-persistence-{uuid.uuid4().hex[:8]}"
    await commit_group_at_end(settings.kafka, publisher, group, topic)
    key = str(uuid.uuid4()).encode()
    producer = publisher._require()
    await (await producer.send(topic, value=b"{not json", key=key))
    good = make_event(subject=key.decode())
    await publisher.publish(topic, good)
    consumer = KafkaConsumer(settings.kafka, group_id=group, topics=[topic])
    await consumer.start()
    try:
        got: list[str] = []
        async with asyncio.timeout(30):
            async for consumed in consumer:
                got.append(consumed.event.id)
                if consumed.event.id == good.id:
                    break
        assert got == [good.id]  # the undecodable message before it was skipped
        assert consumer.skipped == 1
    finally:
        await consumer.stop()


async def test_kafka_unreachable_fails_fast(settings: Settings) -> None:
    down = settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})
    publisher = KafkaPublisher(down)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        await publisher.start()
    assert info.value.service == "kafka"
    with pytest.raises(ServiceUnavailable):
        await publisher.ping()  # not started
    consumer = KafkaConsumer(down, group_id="never", topics=["system-events"])
    with pytest.raises(ServiceUnavailable):
        await consumer.start()
    assert time.monotonic() - started < settings.kafka.request_timeout_ms / 1000 * 2
