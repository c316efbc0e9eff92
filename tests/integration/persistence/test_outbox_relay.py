"""The transactional outbox and its relay, against real PostgreSQL, Kafka and FerretDB."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import pytest

from config.settings import REPO_ROOT, OutboxSettings, Settings
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.errors import ServiceUnavailable
from persistence.outbox.events import ALERT_EVENTS, GEOFENCE_EVENTS, LOCATION_EVENTS, CloudEvent
from persistence.outbox.relay import OutboxRelay
from persistence.outbox.writer import OutboxEvent
from tests.integration.persistence.helpers import (
    commit_group_at_end,
    consume_until,
    eventually,
    write_outbox,
)

pytestmark = pytest.mark.integration

SERVICES = str(REPO_ROOT / "scripts" / "services")


def outbox_event(topic: str = "panic-alerts", **overrides: object) -> OutboxEvent:
    key = str(uuid.uuid4())
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "topic": topic,
        "key": key,
        "type": "alert.created",
        "subject": key,
        "data": {"latitude": -33.9, "longitude": 18.4, "alert_type": "panic"},
        "time": datetime.now(UTC),
    }
    fields.update(overrides)
    return OutboxEvent(**fields)  # type: ignore[arg-type]


async def commit(pool: asyncpg.Pool, events: Sequence[OutboxEvent]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await write_outbox(conn, events)


async def row(pool: asyncpg.Pool, event: OutboxEvent) -> asyncpg.Record:
    record = await pool.fetchrow("SELECT * FROM outbox WHERE event_id = $1", event.event_id)
    assert record is not None
    return record


async def drain_all(relay: OutboxRelay) -> int:
    total = 0
    while sent := await relay.drain_once():
        total += sent
    return total


def relay_for(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: object,
    store: object,
    **outbox: object,
) -> OutboxRelay:
    outbox_settings = settings.outbox.model_copy(update=outbox)
    return OutboxRelay(
        pool,
        publisher,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        outbox_settings,
        settings.postgres.dsn(database),
    )


class FlakySink:
    """The real event store, failing its first ``failures`` writes as if MongoDB were down."""

    def __init__(self, store: EventStore, failures: int = 1) -> None:
        self._store = store
        self.failures_left = failures

    async def insert_events(self, events: Sequence[tuple[str, CloudEvent]]) -> int:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ServiceUnavailable("mongo", "injected failure")
        return await self._store.insert_events(events)

    async def ping(self) -> None:
        await self._store.ping()


@pytest.fixture
async def clean_outbox(pool: asyncpg.Pool) -> None:
    """Each test starts with no unsent rows (a failed test must not leak into the next)."""
    await pool.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")


async def test_an_event_on_an_unknown_topic_fails_its_own_transaction(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(ValueError, match="unknown topic"):
            await write_outbox(conn, [outbox_event(topic="nope")])


async def test_rolled_back_state_change_leaves_no_event(
    pool: asyncpg.Pool, clean_outbox: None
) -> None:
    event = outbox_event()

    async def failing_state_change() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await write_outbox(conn, [event])
            raise RuntimeError("state change failed")

    with pytest.raises(RuntimeError, match="state change failed"):
        await failing_state_change()
    count = await pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", event.event_id)
    assert count == 0


async def test_drain_delivers_to_kafka_and_mongo_then_marks_sent(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    group = f"test-outbox-{uuid.uuid4().hex[:8]}"
    await commit_group_at_end(settings.kafka, publisher, group, "panic-alerts")
    alert = outbox_event("panic-alerts")
    location = outbox_event("location-updates", type="location.updated")
    fence = outbox_event("geofence-events", type="geofence.enter", subject=None)
    await commit(pool, [alert, location, fence])

    relay = relay_for(settings, database, pool, publisher, event_store)
    assert await drain_all(relay) == 3
    for event in (alert, location, fence):
        record = await row(pool, event)
        assert record["sent_at"] is not None
        assert record["attempts"] == 1

    stored = await event_store.get_event(ALERT_EVENTS, str(alert.event_id))
    assert stored is not None
    assert stored.type == "alert.created"
    assert stored.source == settings.kafka.source
    assert stored.data == dict(alert.data)
    assert await event_store.get_event(LOCATION_EVENTS, str(location.event_id)) is not None
    fence_doc = await event_store.get_event(GEOFENCE_EVENTS, str(fence.event_id))
    assert fence_doc is not None
    assert fence_doc.subject is None

    seen = await consume_until(
        settings.kafka,
        group,
        "panic-alerts",
        lambda got: str(alert.event_id) in {c.event.id for c in got},
    )
    (message,) = [c for c in seen if c.event.id == str(alert.event_id)]
    assert message.key == alert.key
    assert message.event == stored
    assert message.event.time == alert.time.replace(
        microsecond=alert.time.microsecond // 1000 * 1000
    )


async def test_drain_twice_and_replay_keep_one_mongo_document(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    events = [outbox_event() for _ in range(5)]
    await commit(pool, events)
    relay = relay_for(settings, database, pool, publisher, event_store)
    assert await drain_all(relay) == 5
    assert await relay.drain_once() == 0
    # As if the mark-sent had been lost: the same rows are relayed again.
    await pool.execute(
        "UPDATE outbox SET sent_at = NULL, claimed_at = NULL WHERE event_id = ANY($1::uuid[])",
        [e.event_id for e in events],
    )
    assert await drain_all(relay) == 5
    ids = [str(e.event_id) for e in events]
    assert await event_store.count(ALERT_EVENTS, {"_id": {"$in": ids}}) == 5
    for event_id in ids:
        assert await event_store.count(ALERT_EVENTS, {"_id": event_id}) == 1


async def test_relay_dying_after_delivery_is_taken_over_after_claim_timeout(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    topic = "alert-status-updates"
    group = f"test-outbox-{uuid.uuid4().hex[:8]}"
    await commit_group_at_end(settings.kafka, publisher, group, topic)
    event = outbox_event(topic, type="alert.status_changed")
    await commit(pool, [event])

    doomed = relay_for(settings, database, pool, publisher, event_store, claim_timeout_s=1.0)
    claimed = await doomed.claim()
    assert [c.event.id for c in claimed] == [str(event.event_id)]
    await doomed.deliver(claimed)  # published and stored... then the relay "dies"

    survivor = relay_for(settings, database, pool, publisher, event_store, claim_timeout_s=1.0)
    assert await survivor.drain_once() == 0  # still claimed by the dead relay
    assert (await row(pool, event))["sent_at"] is None
    await asyncio.sleep(1.2)
    assert await survivor.drain_once() == 1
    record = await row(pool, event)
    assert record["sent_at"] is not None
    assert record["attempts"] == 2

    assert await event_store.count(ALERT_EVENTS, {"_id": str(event.event_id)}) == 1
    # At-least-once: Kafka got it from both relays; consumers dedupe by id.
    seen = await consume_until(
        settings.kafka,
        group,
        topic,
        lambda got: sum(c.event.id == str(event.event_id) for c in got) >= 2,
    )
    assert sum(c.event.id == str(event.event_id) for c in seen) == 2


async def test_failed_store_write_releases_the_claim_and_records_the_error(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    event = outbox_event()
    await commit(pool, [event])
    relay = relay_for(settings, database, pool, publisher, FlakySink(event_store))
    with pytest.raises(ServiceUnavailable, match="injected failure"):
        await relay.drain_once()
    record = await row(pool, event)
    assert record["sent_at"] is None
    assert record["claimed_at"] is None  # released: retried at once, not after the timeout
    assert "injected failure" in record["last_error"]
    assert await relay.drain_once() == 1
    record = await row(pool, event)
    assert record["sent_at"] is not None
    assert record["last_error"] is None
    assert record["attempts"] == 2
    assert await event_store.count(ALERT_EVENTS, {"_id": str(event.event_id)}) == 1


async def test_two_relays_split_the_work_without_overlap(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    events = [outbox_event("location-updates", type="location.updated") for _ in range(1200)]
    for start in range(0, len(events), 100):
        await commit(pool, events[start : start + 100])
    relays = [
        relay_for(settings, database, pool, publisher, event_store, batch_size=100)
        for _ in range(2)
    ]
    await asyncio.gather(*(drain_all(r) for r in relays))
    assert relays[0].sent + relays[1].sent == 1200
    assert relays[0].sent > 0
    assert relays[1].sent > 0
    ids = [e.event_id for e in events]
    unsent = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_id = ANY($1::uuid[]) AND sent_at IS NULL", ids
    )
    assert unsent == 0
    retried = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_id = ANY($1::uuid[]) AND attempts <> 1", ids
    )
    assert retried == 0
    stored = await event_store.count(LOCATION_EVENTS, {"_id": {"$in": [str(i) for i in ids]}})
    assert stored == 1200


async def test_running_relay_wakes_on_notify(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    # A poll interval far longer than the test: only the NOTIFY can wake it.
    relay = relay_for(settings, database, pool, publisher, event_store, poll_interval_s=60.0)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # first drain done, now waiting
        event = outbox_event()
        await commit(pool, [event])

        async def sent() -> bool:
            return (await row(pool, event))["sent_at"] is not None

        await eventually(sent, timeout_s=5)
    finally:
        await relay.stop()
        await asyncio.wait_for(task, timeout=15)


async def test_pipelined_relay_keeps_per_key_order(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    topic = "agent-events"
    group = f"test-outbox-{uuid.uuid4().hex[:8]}"
    await commit_group_at_end(settings.kafka, publisher, group, topic)
    keys = [str(uuid.uuid4()) for _ in range(12)]
    events = [
        outbox_event(topic, key=keys[i % len(keys)], type="agent.moved", data={"seq": i})
        for i in range(1500)
    ]
    # Many small batches and several in flight at once.
    relay = relay_for(
        settings, database, pool, publisher, event_store, batch_size=50, pipeline_depth=6
    )
    task = asyncio.create_task(relay.run())
    try:
        for start in range(0, len(events), 30):
            await commit(pool, events[start : start + 30])
        ids = {str(e.event_id) for e in events}
        seen = await consume_until(
            settings.kafka, group, topic, lambda got: ids <= {c.event.id for c in got}
        )
    finally:
        await relay.stop()
        await asyncio.wait_for(task, timeout=30)
    assert relay.sent == len(events)
    assert relay.failures == 0
    for key in keys:
        written = [e.data["seq"] for e in events if e.key == key]
        delivered = [c.event.data["seq"] for c in seen if c.key == key and c.event.id in ids]
        assert delivered == written, key


def services(*args: str) -> None:
    subprocess.run([SERVICES, *args], check=True, timeout=180, capture_output=True)


async def test_kafka_outage_loses_nothing(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    event_store: EventStore,
    clean_outbox: None,
) -> None:
    topic = "panic-alerts"
    group = f"test-outbox-{uuid.uuid4().hex[:8]}"
    outbox: OutboxSettings = settings.outbox.model_copy(
        update={"poll_interval_s": 0.5, "max_backoff_s": 1.0}
    )
    publisher = KafkaPublisher(settings.kafka)
    await publisher.start()
    await commit_group_at_end(settings.kafka, publisher, group, topic)
    relay = OutboxRelay(pool, publisher, event_store, outbox, settings.postgres.dsn(database))
    task = asyncio.create_task(relay.run())
    event = outbox_event(topic)
    try:
        await asyncio.to_thread(services, "down", "kafka")
        await commit(pool, [event])

        # The relay tries, fails (the delivery wait is bounded), backs off.
        # (The relay counts a failure, then releases the rows with their error:
        # wait for both, not only the count.)
        async def attempted() -> bool:
            return relay.failures >= 1 and (await row(pool, event))["last_error"] is not None

        await eventually(attempted, timeout_s=settings.kafka.delivery_timeout_ms / 1000 + 15)
        record = await row(pool, event)
        assert record["sent_at"] is None
        assert record["last_error"] is not None
        assert "kafka" in record["last_error"]
        assert not task.done()
    finally:
        await asyncio.to_thread(services, "up", "kafka")

    try:

        async def sent() -> bool:
            return (await row(pool, event))["sent_at"] is not None

        await eventually(sent, timeout_s=90)
        seen = await consume_until(
            settings.kafka,
            group,
            topic,
            lambda got: str(event.event_id) in {c.event.id for c in got},
            timeout_s=60,
        )
        delivered = [c for c in seen if c.event.id == str(event.event_id)]
        assert delivered
        assert all(c.key == event.key for c in delivered)
        assert await event_store.count(ALERT_EVENTS, {"_id": str(event.event_id)}) == 1
    finally:
        await relay.stop()
        await asyncio.wait_for(task, timeout=30)
        await publisher.stop()
