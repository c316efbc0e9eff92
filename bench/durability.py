"""Whether every geofence event of a bench run is durable, counted in each store.

A subject entity commits each enter / exit / dwell event to the outbox of
its PostgreSQL database, with its state; the relay (in ``serve``) then sends
it to Kafka (``geofence-events``) and the event store (MongoDB
``geofence_events``). After a run, :func:`count_events` waits until the
relay has sent everything, then counts the run's events in all three:

- ``outbox``: rows of the topic in the run's scratch database (its events);
- ``kafka``: distinct event ids read from the topic after the offsets taken
  before the run (:func:`kafka_end_offsets`) that are among the outbox's
  (delivery is at-least-once; another run's events are not counted);
- ``event_store``: documents of the run's scratch MongoDB database.

Nothing was lost when the three agree and none is left unsent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

from config.settings import Settings
from persistence.outbox.events import GEOFENCE_EVENTS

TOPIC = "geofence-events"


@dataclass(frozen=True)
class EventCounts:
    outbox: int
    unsent: int
    kafka: int
    kafka_messages: int
    event_store: int
    waited_s: float

    @property
    def match(self) -> bool:
        return self.unsent == 0 and self.outbox == self.kafka == self.event_store

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "match": self.match}


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
    )


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """``consumer.stop()``; a consumer without a group that was assigned partitions
    cancels an internal task on the way out and lets its ``CancelledError`` through
    (aiokafka 0.14): that one is not ours to pass on."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def _partitions(settings: Settings) -> list[TopicPartition]:
    """The topic's partitions (a producer fetches a topic's metadata when asked; a
    consumer that subscribes to nothing does not)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        partitions = await producer.partitions_for(TOPIC)
    finally:
        await producer.stop()
    return [TopicPartition(TOPIC, p) for p in sorted(partitions)]


async def kafka_end_offsets(settings: Settings) -> dict[int, int]:
    """The topic's end offset per partition now (where the run's events will start)."""
    consumer = _consumer(settings)
    await consumer.start()
    try:
        tps = await _partitions(settings)
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await _stop(consumer)


async def count_events(
    settings: Settings, database: str, since: dict[int, int], wait_s: float = 120.0
) -> EventCounts:
    """The run's geofence events in the outbox, Kafka and the event store, once the
    relay has sent them all (or ``wait_s`` has passed: ``unsent`` says how many not)."""
    began = time.perf_counter()
    pool = await asyncpg.create_pool(settings.postgres.dsn(database), min_size=1, max_size=2)
    try:
        while True:
            unsent = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = $1 AND sent_at IS NULL", TOPIC
            )
            if unsent == 0 or time.perf_counter() - began > wait_s:
                break
            await asyncio.sleep(1.0)
        ids = {
            str(row["event_id"])
            for row in await pool.fetch("SELECT event_id FROM outbox WHERE topic = $1", TOPIC)
        }
    finally:
        await pool.close()
    waited = time.perf_counter() - began
    seen, messages = await _read_topic(settings, since, ids)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.uri())
    try:
        stored = await client[database][GEOFENCE_EVENTS].count_documents({})
    finally:
        await client.close()
    return EventCounts(len(ids), int(unsent), len(seen), messages, stored, round(waited, 1))


async def _read_topic(
    settings: Settings, since: dict[int, int], ids: set[str]
) -> tuple[set[str], int]:
    consumer = _consumer(settings)
    await consumer.start()
    seen: set[str] = set()
    messages = 0
    try:
        tps = await _partitions(settings)
        if not tps:
            return seen, 0
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, since.get(tp.partition, 0))
        left = {tp for tp in tps if ends[tp] > since.get(tp.partition, 0)}
        deadline = time.perf_counter() + 60
        while left and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if record.value is None:
                        continue
                    event_id = orjson.loads(record.value).get("id")
                    if event_id in ids:
                        seen.add(event_id)
                        messages += 1
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
    finally:
        await _stop(consumer)
    return seen, messages
