"""Benchmark: events/s through the transactional outbox into Kafka and MongoDB.

Writers commit N events in transactions of ``--tx-size`` events while
``--relays`` relay processes run; a consumer process reads the topic back.
The clock stops when every outbox row is sent, every event was consumed from
Kafka and every event is a document in MongoDB. Commit-to-Kafka latency is
measured per event from the writer's commit returning to the consumer
reading it (both on this machine's wall clock).

Isolation: a scratch PostgreSQL database, a scratch MongoDB database and a
scratch Kafka topic, all removed at the end.

    .venv/bin/python bench/outbox.py [--events 50000] [--tx-size 10] ...

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from config.settings import Settings
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.drivers.postgres import create_pool
from persistence.migrations import apply_migrations
from persistence.outbox.events import ALERT_EVENTS
from persistence.outbox.relay import OutboxRelay
from persistence.outbox.writer import OutboxEvent
from tests.integration.persistence.helpers import write_outbox
from tests.scratch import create_database, drop_database


def progress(message: str) -> None:
    print(f"bench/outbox: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- relay processes


def relay_process(
    database: str,
    mongo_db: str,
    topic: str,
    batch_size: int,
    linger_ms: int,
    stop: MpEvent,
) -> None:
    asyncio.run(_relay_main(database, mongo_db, topic, batch_size, linger_ms, stop))


async def _relay_main(
    database: str, mongo_db: str, topic: str, batch_size: int, linger_ms: int, stop: MpEvent
) -> None:
    settings = Settings()
    pg = settings.postgres.model_copy(update={"pool_min": 2, "pool_max": 4})
    pool = await create_pool(pg, database=database)
    publisher = KafkaPublisher(settings.kafka, linger_ms=linger_ms)
    await publisher.start()
    store = EventStore(settings.mongo, database=mongo_db, routes={topic: ALERT_EVENTS})
    outbox = settings.outbox.model_copy(update={"batch_size": batch_size, "poll_interval_s": 0.2})
    relay = OutboxRelay(pool, publisher, store, outbox, pg.dsn(database))
    task = asyncio.create_task(relay.run())
    await asyncio.to_thread(stop.wait)
    await relay.stop()
    await task
    await publisher.stop()
    await store.close()
    await pool.close()


# ---------------------------------------------------------------- consumer process


def consumer_process(
    topic: str, total: int, counter: Any, out: mp.Queue[dict[str, float]], stop: MpEvent
) -> None:
    asyncio.run(_consumer_main(topic, total, counter, out, stop))


async def _consumer_main(
    topic: str, total: int, counter: Any, out: mp.Queue[dict[str, float]], stop: MpEvent
) -> None:
    settings = Settings()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=50,
        max_poll_records=2000,
    )
    await consumer.start()
    partitions = await _partitions(settings, topic)
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    received: dict[str, float] = {}
    try:
        while len(received) < total and not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batches.values():
                for record in records:
                    # The id is all we need: avoid a full JSON decode per message.
                    value: bytes = record.value
                    start = value.index(b'"id":"') + 6
                    event_id = value[start : start + 36].decode()
                    received.setdefault(event_id, now)
            counter.value = len(received)
    finally:
        await consumer.stop()
    out.put(received)


async def _partitions(settings: Settings, topic: str) -> list[int]:
    publisher = KafkaPublisher(settings.kafka)
    await publisher.start()
    try:
        return sorted(await publisher.partitions_for(topic))
    finally:
        await publisher.stop()


# ---------------------------------------------------------------- writers


async def writer(
    pool: asyncpg.Pool,
    topic: str,
    events: Sequence[OutboxEvent],
    tx_size: int,
    committed_at: dict[str, float],
    rate: float,
) -> None:
    """Commit ``events`` in transactions; ``rate`` > 0 paces this writer (events/s)."""
    next_at = time.monotonic()
    for start in range(0, len(events), tx_size):
        chunk = events[start : start + tx_size]
        if rate > 0:
            next_at += len(chunk) / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        async with pool.acquire() as conn:
            async with conn.transaction():
                await write_outbox(conn, chunk, topics={topic})
            now = time.time()
        for event in chunk:
            committed_at[str(event.event_id)] = now


def make_events(topic: str, n: int, entities: int) -> list[OutboxEvent]:
    keys = [str(uuid.uuid4()) for _ in range(entities)]
    out = []
    for i in range(n):
        key = keys[i % entities]
        out.append(
            OutboxEvent(
                event_id=uuid.uuid4(),
                topic=topic,
                key=key,
                type="location.updated",
                subject=key,
                data={
                    "latitude": -33.9 + (i % 1000) / 1e5,
                    "longitude": 18.4 + (i % 777) / 1e5,
                    "accuracy_m": 8.5,
                    "recorded_at": datetime.now(UTC).isoformat(),
                    "seq": i,
                },
                time=datetime.now(UTC),
            )
        )
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# ---------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    suffix = uuid.uuid4().hex[:8]
    database = f"pa_bench_{suffix}"
    mongo_db = f"pa_bench_{suffix}"
    topic = f"bench-outbox-{suffix}"

    await create_database(settings, database)
    admin_kafka = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin_kafka.start()
    await admin_kafka.create_topics(
        [NewTopic(topic, num_partitions=settings.kafka.partitions, replication_factor=1)]
    )
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs: list[Any] = []
    try:
        pg = settings.postgres.model_copy(
            update={"pool_min": args.writers, "pool_max": args.writers}
        )
        pool = await create_pool(pg, database=database)
        await apply_migrations(pool)
        store = EventStore(settings.mongo, database=mongo_db, routes={topic: ALERT_EVENTS})
        await store.ensure_indexes()

        counter = ctx.Value("l", 0)
        out: mp.Queue[dict[str, float]] = ctx.Queue()
        consumer = ctx.Process(
            target=consumer_process, args=(topic, args.events, counter, out, stop), daemon=True
        )
        consumer.start()
        procs.append(consumer)
        for _ in range(args.relays):
            proc = ctx.Process(
                target=relay_process,
                args=(database, mongo_db, topic, args.batch_size, args.linger_ms, stop),
                daemon=True,
            )
            proc.start()
            procs.append(proc)

        events = make_events(topic, args.events, args.entities)
        progress(
            f"{args.events} events, tx of {args.tx_size}, {args.writers} writers, "
            f"{args.relays} relay process(es), batch {args.batch_size}"
        )
        await asyncio.sleep(args.warmup_s)  # let relays and consumer connect

        committed_at: dict[str, float] = {}
        per_writer = [events[i :: args.writers] for i in range(args.writers)]
        started = time.time()
        writers = asyncio.gather(
            *(
                writer(pool, topic, chunk, args.tx_size, committed_at, args.rate / args.writers)
                for chunk in per_writer
            )
        )
        writes_done_at: float | None = None
        last_report = 0.0
        while True:
            if writes_done_at is None and writers.done():
                writers.result()
                writes_done_at = time.time()
            # Cheap checks only while timing (the partial index serves this
            # count); FerretDB's count is a scan, so MongoDB is verified after.
            unsent = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            consumed = counter.value
            now = time.time()
            if now - last_report >= 2:
                last_report = now
                progress(
                    f"t={now - started:5.1f}s committed={len(committed_at)} "
                    f"unsent={unsent} kafka={consumed}"
                )
            if writes_done_at is not None and unsent == 0 and consumed >= args.events:
                break
            if now - started > args.timeout_s:
                raise TimeoutError(f"not done after {args.timeout_s}s")
            await asyncio.sleep(0.1)
        finished = time.time()
        # A row is marked sent only after its MongoDB insert: check it anyway.
        stored = await store.count(ALERT_EVENTS)
        if stored != args.events:
            raise AssertionError(f"MongoDB holds {stored} documents, expected {args.events}")
        received = await asyncio.to_thread(out.get, True, 60)
        latencies = [
            (received[event_id] - committed) * 1000
            for event_id, committed in committed_at.items()
            if event_id in received
        ]
        elapsed = finished - started
        assert writes_done_at is not None
        await store.close()
        await pool.close()
        return {
            "bench": "outbox",
            "events": args.events,
            "tx_size": args.tx_size,
            "writers": args.writers,
            "relay_processes": args.relays,
            "relay_batch_size": args.batch_size,
            "linger_ms": args.linger_ms,
            "offered_rate": args.rate or "max",
            "elapsed_s": round(elapsed, 2),
            "events_per_s": round(args.events / elapsed),
            "commit_only_events_per_s": round(args.events / (writes_done_at - started)),
            "commit_to_kafka_ms": {
                "p50": round(percentile(latencies, 50), 1),
                "p99": round(percentile(latencies, 99), 1),
                "max": round(max(latencies), 1),
                "mean": round(statistics.fmean(latencies), 1),
            },
            "kafka_messages_consumed": len(received),
            "mongo_documents": stored,
            "cpus": os.cpu_count(),
        }
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
        with contextlib.suppress(Exception):
            await admin_kafka.delete_topics([topic])
        await admin_kafka.close()
        await drop_database(settings, database)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.uri())
        with contextlib.suppress(Exception):
            await client.drop_database(mongo_db)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--tx-size", type=int, default=10, help="events per transaction")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writer connections")
    parser.add_argument("--entities", type=int, default=2_000, help="distinct keys")
    parser.add_argument("--relays", type=int, default=1, help="relay processes")
    parser.add_argument("--batch-size", type=int, default=500, help="relay batch size")
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="offered load in events/s (0: as fast as possible)"
    )
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
